// Attribute and item access with the sandboxed jinja2 Environment's rules: `x.name` tries the Python
// attribute first (str/dict/list methods, namespace and loop attributes) and then x['name']; `x[key]` tries
// the item first and then, for string keys, the attribute. Misses yield an Undefined that names what was
// missing; mutating list/dict methods yield an "unsafe" Undefined that raises SecurityError when called.
#pragma once

#include <optional>
#include <string>

#include "template/value.h"

namespace tandem::tmpl {

Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);

/// obj[start:stop:step]; each bound may be None/Undefined-free Value or Value(None{}) when omitted.
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

/// jinja2.utils.object_type_repr: "dict object", "None", "jinja2.utils.Namespace object".
std::string object_type_repr(const Value& v);

/// The Python attribute (never the item) `obj.name`: methods, namespace and loop attributes; nullopt when
/// there is none (the `attr` filter).
std::optional<Value> python_attribute(const Value& obj, const std::string& name);

/// Attribute of a loop object (index, first, cycle, ...); nullopt when it has no such attribute.
std::optional<Value> loop_attr(const Value& loop, const std::string& name);

}  // namespace tandem::tmpl
