// Python string formatting: printf-style `fmt % args` (also the `format` filter) and str.format().
#pragma once

#include <string>

#include "template/limits.h"
#include "template/value.h"

namespace tandem::tmpl {

// Every function here refuses (RenderLimitError) a width or precision that would build more than
// limits.max_output_bytes, and the result growing past it, before allocating.

/// `fmt % args`: a tuple supplies positional values, a dict supplies %(name)s values, anything else is the
/// single value. Supports flags "#0- +", width/precision (including '*') and conversions
/// d i u o x X e E f F g G c r s a %. `escape_args` HTML-escapes non-Markup %s/%r values, as
/// markupsafe.Markup.__mod__ does when the format string is Markup.
std::string percent_format(const std::string& fmt, const Value& args, const TemplateLimits& limits,
                           bool escape_args = false);

/// str.format(*args, **kwargs) with auto/explicit field numbering, keyword fields, `.attr` / `[key]`
/// lookups (through the sandboxed getattr/getitem), !s/!r/!a conversions and the standard format spec
/// ([[fill]align][sign][#][0][width][,|_][.precision][type]). Nested replacement fields inside a format
/// spec are rejected with a clear error.
std::string str_format(const std::string& fmt, const CallArgs& args, const TemplateLimits& limits);

/// format(value, spec) for one value (the standard format-spec mini-language).
std::string format_value(const Value& v, const std::string& spec, const TemplateLimits& limits);

}  // namespace tandem::tmpl
