// Python semantics of the operators Jinja compiles to: arithmetic with int/float promotion and floor
// division, str/list concatenation and repetition, rich comparisons, `in`, len(), iteration. Errors carry
// CPython's exception kind and message ("can only concatenate str (not \"int\") to str").
#pragma once

#include <vector>

#include "template/ast.h"
#include "template/limits.h"
#include "template/value.h"

namespace tandem::tmpl {

/// `limits` bound what the operator builds: repetition (`s * n`, `[x] * n`), concatenation and `%` formatting
/// are refused (RenderLimitError) before building anything beyond limits.max_output_bytes.
Value binary_op(BinaryOp op, const Value& a, const Value& b, const TemplateLimits& limits);
Value unary_op(UnaryOp op, const Value& v);
bool compare(CompareOp op, const Value& a, const Value& b);

/// Python `item in container`.
bool contains(const Value& container, const Value& item);

/// Python a < b, raising TypeError for unorderable operands (used by comparisons and sorting).
bool less_than(const Value& a, const Value& b);

/// Python len(); TypeError "object of type 'int' has no len()".
int64_t py_len(const Value& v);

/// The items a `for` loop sees: list/tuple items, dict keys, string characters; nothing for Undefined.
/// TypeError "'int' object is not iterable" otherwise.
std::vector<Value> iterate(const Value& v);

/// HTML-escapes like markupsafe.escape (& < > " ' to entities).
std::string html_escape(std::string_view s);

/// Checked int64 arithmetic; OverflowError where Python would switch to a big integer.
int64_t checked_add(int64_t a, int64_t b);
int64_t checked_mul(int64_t a, int64_t b);

}  // namespace tandem::tmpl
