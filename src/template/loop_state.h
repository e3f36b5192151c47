// State behind the `loop` variable of a {% for %} (jinja2.runtime.LoopContext).
#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "template/value.h"

namespace tandem::tmpl {

struct LoopState {
  /// The items being iterated, after the loop's `if` filter.
  std::vector<Value> items;
  size_t index0 = 0;
  /// Nesting depth of a recursive loop (0 for the outermost call).
  int depth0 = 0;
  /// Arguments of the last loop.changed(...) call; empty before the first call.
  std::optional<std::vector<Value>> last_changed;
  /// Renders the loop body again over another iterable (`loop(children)`); empty unless the loop is marked
  /// `recursive`.
  std::function<Value(Renderer&, const Value& iterable, int depth0)> recurse;
};

}  // namespace tandem::tmpl
