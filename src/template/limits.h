// Bounds on parsing and rendering one chat template. A template comes with the checkpoint (untrusted), and
// Jinja itself bounds nothing a template can ask for: `{% for a in range(100000) %}{% for b in range(100000)
// %}`,
// `' ' * 10**12`, `'x'.center(2**62)`, `'%9999999999d' % 1`, a string doubled in a loop, or parentheses
// nested 10^5 deep would loop for hours, allocate until the process is killed, or overflow the stack. Every
// bound here stops such a template with a TemplateError of kind "RenderLimitError" (syntax nesting:
// "TemplateSyntaxError") that names the limit; real chat templates stay orders of magnitude below each of
// them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "template/render_error.h"

namespace tandem::tmpl {

struct TemplateLimits {
  /// Nesting of the template's syntax (blocks in blocks, parentheses, unary operators, `else` chains): the
  /// parser and the renderer recurse once per level. Also the nesting of lists / dicts a render may build
  /// (`{% set ns.x = [ns.x] %}` in a loop) and of the context it is given.
  int max_nesting = 256;
  /// Statements executed + expressions evaluated + loop iterations in one render. The bundled templates take
  /// a few thousand for a long conversation with tools.
  int64_t max_steps = 10'000'000;
  /// Bytes of the rendered text, and of any one string the render builds on the way (a macro's output, a
  /// `{% set %}` block, `s * n`, `center(n)`, format widths and precisions, `indent(n)`, `replace`, `join`,
  /// `tojson(indent=n)`); where a size argument decides the result it is checked before allocating. Also
  /// bounds the items of a list built by repetition or concatenation (max_output_bytes / 16).
  size_t max_output_bytes = size_t{32} << 20;
  /// Nested macro calls and recursive loop() calls. CPython's recursion limit stops Jinja at roughly 190.
  int max_call_depth = 300;
  /// Evaluation nesting summed over the macro call chain (an expression nested inside a macro called from
  /// inside an expression...): what the render's stack actually holds.
  int max_render_depth = 2000;
};

/// Throws RenderError("RenderLimitError", "<what> exceeds TemplateLimits::<field> (<limit>)").
[[noreturn]] inline void throw_limit(std::string_view what, std::string_view field, uint64_t limit) {
  throw_error("RenderLimitError", "{} exceeds the template limit TemplateLimits::{} ({})", what, field,
              limit);
}

/// Fails when a string of `count` repetitions of `unit_bytes` bytes would exceed max_output_bytes; count may
/// be negative (nothing is built) or absurd (2**62): no product is formed that could overflow.
inline void check_built_size(int64_t count, size_t unit_bytes, const TemplateLimits& limits,
                             std::string_view what) {
  if (count <= 0 || unit_bytes == 0) return;
  if (static_cast<uint64_t>(count) > limits.max_output_bytes / unit_bytes)
    throw_limit(what, "max_output_bytes", limits.max_output_bytes);
}

}  // namespace tandem::tmpl
