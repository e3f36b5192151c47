// Python-style binding of call arguments to a parameter list, for filters, tests, globals and methods.
#pragma once

#include <initializer_list>
#include <string_view>
#include <vector>

#include "template/value.h"

namespace tandem::tmpl {

struct Param {
  const char* name;
  Value default_value = Value(None{});  // used when the argument is absent
  bool required = false;
};

inline Param required(const char* name) {
  return Param{name, Value(), true};
}

/// Returns one value per parameter, in parameter order. Throws TypeError like CPython for unknown keywords,
/// too many positionals, duplicates and missing required arguments. `func` names the callee in messages.
std::vector<Value> bind_args(std::string_view func, const CallArgs& args,
                             std::initializer_list<Param> params);

/// Throws TypeError unless the call has no arguments at all.
void expect_no_args(std::string_view func, const CallArgs& args);

}  // namespace tandem::tmpl
