// Runaway chat templates (issue 18, "Templates"): a template from a checkpoint can loop, allocate or recurse
// without bound, and Jinja itself stops none of it. Each pattern here must end with a TemplateError naming
// the TemplateLimits field it ran into — never a hang, an out-of-memory kill or a stack overflow — while real
// templates render well inside the default limits.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "template/chat_template.h"

namespace tandem::tmpl {
namespace {

using nlohmann::ordered_json;

// Renders `source` under `limits` and returns the TemplateError (a test failure if it renders, or throws
// anything else, e.g. std::bad_alloc).
TemplateError render_error(const std::string& source, const TemplateLimits& limits = {},
                           const ordered_json& context = ordered_json::object()) {
  try {
    const std::string out = ChatTemplate::parse(source, limits).render(context);
    ADD_FAILURE() << "rendered " << out.size() << " bytes: " << source.substr(0, 200);
  } catch (const TemplateError& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a TemplateError: " << e.what() << " for " << source.substr(0, 200);
  }
  return TemplateError("none", "none", 0, 0);
}

// The error names a limit and is of the limit kind.
void expect_limit(const std::string& source, const std::string& field, const TemplateLimits& limits = {}) {
  const auto start = std::chrono::steady_clock::now();
  const TemplateError e = render_error(source, limits);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(e.kind(), "RenderLimitError") << source.substr(0, 200) << ": " << e.what();
  EXPECT_NE(e.message().find("TemplateLimits::" + field), std::string::npos)
      << source.substr(0, 200) << ": " << e.what();
  EXPECT_LT(seconds, 20.0) << "stopping took too long: " << source.substr(0, 200);
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(TemplateLimits, NestedRangesStopAtTheStepLimit) {
  const std::string nested =
      "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
  expect_limit(nested, "max_steps");  // the default limit: ~10^7 steps, about a second
  expect_limit(nested, "max_steps", TemplateLimits{.max_steps = 1000});
  expect_limit("{% for a in range(100000) %}{% for b in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
               "max_steps", TemplateLimits{.max_steps = 5000});
  // Building a range is work too, even when nothing iterates it; and a huge span is refused, not overflowed.
  expect_limit("{% for a in range(100000) %}{% set r = range(100000) %}{% endfor %}", "max_steps");
  EXPECT_EQ(render_error("{{ range(-9223372036854775807, 9223372036854775807)|length }}").message(),
            "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  EXPECT_EQ(ChatTemplate::parse("{{ range(9223372036854775802, 9223372036854775807, 3)|list }}")
                .render(ordered_json::object()),
            "[9223372036854775802, 9223372036854775805]");
  // A loop that fits the limit renders.
  EXPECT_EQ(
      ChatTemplate::parse("{% for a in range(10) %}{{ a }}{% endfor %}", TemplateLimits{.max_steps = 200})
          .render(ordered_json::object()),
      "0123456789");
}

TEST(TemplateLimits, RepetitionIsRefusedBeforeAllocating) {
  expect_limit("{{ ' ' * 10**12 }}", "max_output_bytes");
  expect_limit("{{ ' ' * 2**40 }}", "max_output_bytes");
  expect_limit("{{ 10**12 * 'ab' }}", "max_output_bytes");
  expect_limit("{{ (['x'] * 10**12)|length }}", "max_output_bytes");
  expect_limit("{{ (['x' * 1000000] * 100)|length }}", "max_output_bytes");  // 100 copies of 1 MB
  expect_limit("{{ ' ' * 101 }}", "max_output_bytes", TemplateLimits{.max_output_bytes = 100});
  EXPECT_EQ(ChatTemplate::parse("{{ 'ab' * 50 }}", TemplateLimits{.max_output_bytes = 100})
                .render(ordered_json::object())
                .size(),
            100u);
}

TEST(TemplateLimits, PaddingWidthsAreRefusedBeforeAllocating) {
  expect_limit("{{ 'x'.center(2**62) }}", "max_output_bytes");
  expect_limit("{{ 'x'.ljust(10**12) }}", "max_output_bytes");
  expect_limit("{{ 'x'.rjust(10**12, '*') }}", "max_output_bytes");
  expect_limit("{{ '7'.zfill(10**12) }}", "max_output_bytes");
  expect_limit("{{ 'x'|center(10**12) }}", "max_output_bytes");
  expect_limit("{{ 'a\nb'|indent(10**12) }}", "max_output_bytes");
  expect_limit("{{ ('a\n' * 100000)|indent(1000) }}", "max_output_bytes");
  EXPECT_EQ(ChatTemplate::parse("{{ 'x'.center(5, '-') }}").render(ordered_json::object()), "--x--");
}

TEST(TemplateLimits, FormatWidthsAndPrecisionsAreRefusedBeforeAllocating) {
  expect_limit("{{ '%2000000000d' % 1 }}", "max_output_bytes");
  expect_limit("{{ '%.2000000000f' % 1.5 }}", "max_output_bytes");
  expect_limit("{{ '%*d' % (10**12, 1) }}", "max_output_bytes");
  expect_limit("{{ '%99999999999999999999999999d' % 1 }}", "max_output_bytes");  // saturates, no overflow
  expect_limit("{{ '%1000000000000s'|format('x') }}", "max_output_bytes");
  expect_limit("{{ '{:>10000000000}'.format(1) }}", "max_output_bytes");
  expect_limit("{{ '{:.3000000000f}'.format(1.5) }}", "max_output_bytes");
  expect_limit("{{ '{:*^99999999999999999999999}'.format('x') }}", "max_output_bytes");
  EXPECT_EQ(ChatTemplate::parse("{{ '%5d|{:>4}'.format(7) % 3 }}").render(ordered_json::object()),
            "    3|   7");
}

TEST(TemplateLimits, GrowingStringsAndListsStopAtTheSizeLimit) {
  // A string doubled in a loop: 2^100 bytes.
  expect_limit(
      "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
      "max_output_bytes");
  expect_limit(
      "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
      "max_output_bytes");
  // A list grown by concatenation, 1 KB strings copied in each time: 100 MB in the end, but the copying is
  // quadratic, so the step limit (which charges what is copied) stops it first.
  expect_limit(
      "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + ['x' * 1000] %}{% "
      "endfor %}",
      "max_steps");
  // Same for a string grown a little each time (16 MB in the end, ~800 GB copied on the way), and for an
  // O(n) test of a big list inside a loop.
  expect_limit(
      "{% set ns = namespace(s='') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ 'x' * 160 %}"
      "{% endfor %}",
      "max_steps");
  expect_limit(
      "{% set big = range(100000)|list %}{% for i in range(100000) %}{% if -1 in big %}{% endif %}"
      "{% endfor %}",
      "max_steps");
  // Output written piece by piece, and macro output.
  expect_limit("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "max_output_bytes");
  expect_limit(
      "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m() }}",
      "max_output_bytes");
  expect_limit("{% set s %}{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}{% endset %}",
               "max_output_bytes");
}

TEST(TemplateLimits, FiltersThatMultiplyTheirInputAreBounded) {
  expect_limit("{{ ('x' * 100000)|replace('x', 'y' * 100000) }}", "max_output_bytes");
  expect_limit("{{ ('x' * 100000).replace('', 'y' * 1000) }}", "max_output_bytes");
  expect_limit("{{ range(100000)|map('string')|join('x' * 1000) }}", "max_output_bytes");
  expect_limit("{{ ('x' * 1000).join(range(100000)|map('string')) }}", "max_output_bytes");
  expect_limit("{{ range(100000)|map('center', 1000)|list|length }}", "max_output_bytes");
  expect_limit("{{ [[[1]]]|tojson(indent=10**12) }}", "max_output_bytes");
  expect_limit("{{ range(100000)|list|tojson(indent=1000) }}", "max_output_bytes");
  expect_limit("{{ [1]|batch(10**12, 'x')|list|length }}", "max_output_bytes");
  expect_limit("{{ [1]|slice(10**12)|list|length }}", "max_output_bytes");
}

TEST(TemplateLimits, DeepSyntaxIsASyntaxErrorNotAStackOverflow) {
  const int n = 100000;
  const std::string sources[] = {
      "{{ " + std::string(n, '(') + "1" + std::string(n, ')') + " }}",
      "{{ " + std::string(n, '[') + std::string(n, ']') + " }}",
      "{{ " + repeat("not ", n) + "1 }}",
      "{{ " + repeat("- ", n) + "1 }}",
      "{{ " + repeat("1 if x else ", n) + "1 }}",
      repeat("{% if true %}", n) + repeat("{% endif %}", n),
      repeat("{% for x in [1] %}", n) + repeat("{% endfor %}", n),
  };
  for (const std::string& source : sources) {
    try {
      ChatTemplate::parse(source);
      ADD_FAILURE() << "parsed: " << source.substr(0, 40);
    } catch (const TemplateError& e) {
      EXPECT_EQ(e.kind(), "TemplateSyntaxError") << source.substr(0, 40);
      EXPECT_NE(e.message().find("TemplateLimits::max_nesting"), std::string::npos) << e.what();
    }
  }
  // Nesting within the limit parses and renders.
  EXPECT_EQ(ChatTemplate::parse("{{ " + std::string(60, '(') + "1" + std::string(60, ')') + " }}")
                .render(ordered_json::object()),
            "1");
}

TEST(TemplateLimits, DeepValuesAndContextsAreRefused) {
  // A list wrapped in itself 10^5 times: printing, comparing or freeing it would recurse 10^5 deep.
  expect_limit(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
      "{{ ns.x|length }}",
      "max_nesting");
  expect_limit(
      "{% set ns = namespace(x=none) %}{% for i in range(100000) %}{% set ns.x = namespace(p=ns.x) %}"
      "{% endfor %}{{ 1 }}",
      "max_nesting");
  expect_limit(
      "{% set ns = namespace(x={}) %}{% for i in range(100000) %}{% set ns.x = {'k': ns.x} %}{% endfor %}",
      "max_nesting");
  expect_limit(
      "{% set ns = namespace(x=[]) %}{% for i in range(100000) %}{% set ns.x = [ns.x][0:1] %}{% endfor %}",
      "max_nesting");
  // A context nested 10^5 deep (ordered_json and json), built by moves: a copy would recurse 10^5 deep
  // itself.
  auto deep_context = [](auto empty) {
    using Json = decltype(empty);
    Json deep = Json::array();
    for (int i = 0; i < 100000; ++i) {
      Json outer = Json::array();
      outer.push_back(std::move(deep));
      deep = std::move(outer);
    }
    Json context = Json::object();
    context["messages"] = std::move(deep);
    return context;
  };
  for (int which = 0; which < 2; ++which) {
    try {
      const ChatTemplate t = ChatTemplate::parse("{{ messages|length }}");
      if (which == 0) {
        t.render(deep_context(ordered_json()));
      } else {
        t.render(deep_context(nlohmann::json()));
      }
      ADD_FAILURE() << "rendered a context nested 10^5 deep";
    } catch (const TemplateError& e) {
      EXPECT_EQ(e.kind(), "RenderLimitError");
      EXPECT_NE(e.message().find("TemplateLimits::max_nesting"), std::string::npos) << e.what();
    }
  }
}

TEST(TemplateLimits, RecursionStopsAtTheCallAndRenderDepthLimits) {
  const TemplateError direct = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
  EXPECT_EQ(direct.kind(), "RecursionError");
  EXPECT_NE(direct.message().find("TemplateLimits::max_call_depth = 300"), std::string::npos)
      << direct.what();
  const TemplateError small = render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                                           TemplateLimits{.max_call_depth = 10});
  EXPECT_NE(small.message().find("max_call_depth = 10"), std::string::npos) << small.what();
  // Recursion from inside deep expressions: the evaluation depth summed over the call chain is what the stack
  // holds, and it is bounded on its own.
  const std::string nested_recursion = "{% macro f(n) %}{{ " + std::string(100, '[') + "f(n + 1)" +
                                       std::string(100, ']') + " }}{% endmacro %}{{ f(0) }}";
  const TemplateError deep = render_error(nested_recursion);
  EXPECT_EQ(deep.kind(), "RenderLimitError") << deep.what();
  EXPECT_NE(deep.message().find("TemplateLimits::max_render_depth"), std::string::npos) << deep.what();
  // Recursive loops and caller() chains count as calls.
  EXPECT_EQ(render_error("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}").kind(), "RecursionError");
  EXPECT_EQ(
      render_error("{% macro m() %}{% call m() %}{{ caller() }}{% endcall %}{% endmacro %}{{ m() }}").kind(),
      "RecursionError");
}

// The limits are a per-template option, and the defaults leave real templates plenty of room: every bundled
// template renders a 2000-message conversation with tools, which a limit of 1000 steps stops.
TEST(TemplateLimits, RealTemplatesRenderLongConversationsWithinTheDefaults) {
  ordered_json messages = ordered_json::array();
  for (int i = 0; i < 2000; ++i)
    messages.push_back({{"role", i % 2 ? "assistant" : "user"}, {"content", std::string(500, 'a' + i % 26)}});
  ordered_json tools = ordered_json::array();
  for (int i = 0; i < 20; ++i)
    tools.push_back(
        {{"type", "function"},
         {"function",
          {{"name", "tool_" + std::to_string(i)},
           {"description", "does thing " + std::to_string(i)},
           {"parameters",
            {{"type", "object"}, {"properties", {{"q", {{"type", "string"}}}}}, {"required", {"q"}}}}}}});
  const ordered_json context = {{"messages", messages}, {"tools", tools}, {"add_generation_prompt", true}};
  const auto dir = std::filesystem::path(TANDEM_SOURCE_DIR) / "tests/fixtures/chat/templates";
  int rendered = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jinja") continue;
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const ChatTemplate t = ChatTemplate::parse(ss.str());
    EXPECT_EQ(t.limits().max_steps, TemplateLimits{}.max_steps);
    std::string out;
    ASSERT_NO_THROW(out = t.render(context)) << entry.path();
    EXPECT_GT(out.size(), 1000000u) << entry.path();
    const TemplateError e = [&] {
      try {
        ChatTemplate::parse(ss.str(), TemplateLimits{.max_steps = 1000}).render(context);
      } catch (const TemplateError& err) {
        return err;
      }
      return TemplateError("none", "none", 0, 0);
    }();
    EXPECT_EQ(e.kind(), "RenderLimitError") << entry.path();
    ++rendered;
  }
  EXPECT_GE(rendered, 5);
}

}  // namespace
}  // namespace tandem::tmpl
