// Jinja's built-in tests (jinja2.tests.TESTS), used as `value is name(args)`.
#pragma once

#include <string_view>

#include "template/value.h"

namespace tandem::tmpl {

using TestFn = bool (*)(Renderer& renderer, const Value& operand, const CallArgs& args);

/// nullptr when there is no such test.
TestFn find_test(std::string_view name);
bool has_test(std::string_view name);

}  // namespace tandem::tmpl
