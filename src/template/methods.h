// Python methods callable on template values: str methods (startswith, split, strip, replace, ...), dict
// methods (items, keys, values, get) and list/tuple methods (count, index). Under the immutable sandbox the
// mutating list/dict methods exist but are "unsafe": they resolve to an Undefined raising SecurityError.
#pragma once

#include <optional>
#include <string>

#include "template/value.h"

namespace tandem::tmpl {

/// The bound method `obj.name` for str, list/tuple and dict values, or nullopt when the type has no such
/// method.
std::optional<Value> bound_method(const Value& obj, const std::string& name);

}  // namespace tandem::tmpl
