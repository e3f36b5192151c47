// Variable scopes of a render. Jinja's compiled frames behave like nested scopes that read through to their
// parents and write locally: each for-loop iteration, macro call, with-block and set-block body gets a
// fresh child scope (so `{% set %}` inside a loop does not survive the iteration), while if-branches share
// their enclosing scope. Macros read their defining scope at call time; the Renderer keeps such scopes alive
// for the whole render (closures hold plain pointers, so macro <-> scope references form no cycles).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "template/value.h"

namespace tandem::tmpl {

class Scope;
using ScopePtr = std::shared_ptr<Scope>;

class Scope : public std::enable_shared_from_this<Scope> {
 public:
  explicit Scope(ScopePtr parent = nullptr) : parent_(std::move(parent)) {}

  /// The innermost binding of `name`, or nullptr.
  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
      auto it = s->vars_.find(name);
      if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
  }

  void set(const std::string& name, Value value) { vars_[name] = std::move(value); }

  static ScopePtr child_of(const ScopePtr& parent) { return std::make_shared<Scope>(parent); }

 private:
  ScopePtr parent_;
  std::unordered_map<std::string, Value> vars_;
};

}  // namespace tandem::tmpl
