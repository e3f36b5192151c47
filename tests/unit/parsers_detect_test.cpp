// Parser auto-detection on every real chat template in tests/fixtures/parsers/templates/ (see its README for
// provenance), and the templates against the parsers: each template's generation prompt tells whether the
// output starts inside <think>, and the parser detected for a template reads back the assistant turn (reasoning,
// content, tool calls with typed arguments) exactly as that template writes it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "parsers/detect.h"
#include "parsers/message_parser.h"
#include "template/chat_template.h"

namespace tandem::parsers {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

fs::path fixtures() { return fs::path(TANDEM_SOURCE_DIR) / "tests" / "fixtures" / "parsers"; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TokenLookup tokens_from(const std::string& added_tokens_file) {
  auto set = std::make_shared<std::set<std::string, std::less<>>>();
  for (const auto& t : json::parse(read_file(fixtures() / "templates" / added_tokens_file))) set->insert(t.get<std::string>());
  return [set](std::string_view s) { return set->find(s) != set->end(); };
}

struct TemplateCase {
  std::string file;
  std::string tool_parser;
  std::string reasoning_parser;
  std::string added_tokens;  // file of the tokenizer's added tokens, or ""
};

const std::vector<TemplateCase> kTemplates = {
    {"zai-org-GLM-4.5.jinja", "glm45", "glm45", ""},
    {"llama.cpp-modified-GLM-4.6.jinja", "glm45", "glm45", ""},
    {"llama.cpp-modified-GLM-4.7-Flash.jinja", "glm47", "glm45", ""},
    {"Qwen-Qwen3-0.6B.jinja", "hermes", "qwen3", "Qwen-Qwen3.added_tokens.json"},
    {"Qwen-Qwen3-8B.jinja", "hermes", "qwen3", "Qwen-Qwen3.added_tokens.json"},
    {"Qwen-Qwen3-4B-Instruct-2507.jinja", "hermes", "", "Qwen-Qwen3.added_tokens.json"},
    {"Qwen-Qwen3-Next-80B-A3B-Instruct.jinja", "hermes", "", "Qwen-Qwen3.added_tokens.json"},
    {"Qwen-Qwen3.5-4B.jinja", "qwen3_coder", "qwen3", ""},
    {"Qwen-Qwen3.5-0.8B.jinja", "qwen3_coder", "qwen3", ""},
    {"deepseek-ai-DeepSeek-V3.jinja", "deepseekv3", "", "deepseek-ai-DeepSeek-V3.added_tokens.json"},
};

TEST(DetectParsers, EveryRealTemplate) {
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(fixtures() / "templates")) {
    if (entry.path().extension() == ".jinja") seen.insert(entry.path().filename().string());
  }
  ASSERT_EQ(seen.size(), kTemplates.size()) << "every template fixture has an expectation";
  for (const TemplateCase& t : kTemplates) {
    SCOPED_TRACE(t.file);
    EXPECT_TRUE(seen.contains(t.file));
    const TokenLookup tokens = t.added_tokens.empty() ? TokenLookup() : tokens_from(t.added_tokens);
    const ParserChoice c = detect_parsers(read_file(fixtures() / "templates" / t.file), tokens);
    EXPECT_EQ(c.tool_parser, t.tool_parser) << c.reason;
    EXPECT_EQ(c.reasoning_parser, t.reasoning_parser) << c.reason;
    EXPECT_NE(c.reason.find("tool parser " + t.tool_parser), std::string::npos) << c.reason;
    EXPECT_EQ(c.reason.find("not a single token"), std::string::npos) << c.reason;  // tags match the vocabulary
  }
}

TEST(DetectParsers, ReasonExplainsTheChoice) {
  const ParserChoice glm47 = detect_parsers(read_file(fixtures() / "templates" / "llama.cpp-modified-GLM-4.7-Flash.jinja"));
  EXPECT_EQ(glm47.reason,
            "tool parser glm47: template has GLM's <arg_key> with the name directly followed by it (GLM-4.7); "
            "reasoning parser glm45: template has <think> and GLM's <|assistant|>");
  const ParserChoice instruct = detect_parsers(read_file(fixtures() / "templates" / "Qwen-Qwen3-4B-Instruct-2507.jinja"));
  EXPECT_NE(instruct.reason.find("no reasoning parser (template has no <think>)"), std::string::npos) << instruct.reason;
}

TEST(DetectParsers, MismatchedVocabularyIsNoted) {
  const ParserChoice c = detect_parsers(read_file(fixtures() / "templates" / "Qwen-Qwen3-8B.jinja"),
                                        tokens_from("deepseek-ai-DeepSeek-V3.added_tokens.json"));
  EXPECT_EQ(c.tool_parser, "hermes");
  EXPECT_NE(c.reason.find("note: <tool_call> is not a single token"), std::string::npos) << c.reason;
}

TEST(DetectParsers, WithoutTemplateTheTokensDecide) {
  const ParserChoice ds = detect_parsers("", tokens_from("deepseek-ai-DeepSeek-V3.added_tokens.json"));
  EXPECT_EQ(ds.tool_parser, "deepseekv3");
  EXPECT_EQ(ds.reasoning_parser, "");
  EXPECT_NE(ds.reason.find("tokens"), std::string::npos) << ds.reason;
  const ParserChoice qwen = detect_parsers("", tokens_from("Qwen-Qwen3.added_tokens.json"));
  EXPECT_EQ(qwen.tool_parser, "hermes");
  EXPECT_EQ(qwen.reasoning_parser, "qwen3");
  const ParserChoice none = detect_parsers("");
  EXPECT_EQ(none.tool_parser, "");
  EXPECT_EQ(none.reasoning_parser, "");
  EXPECT_EQ(detect_parsers("{{ messages[0].content }}").tool_parser, "");
}

// ---------------------------------------------------------------- the templates' own output

ordered_json context(const ordered_json& messages, const ordered_json& tools, bool add_generation_prompt,
                     std::optional<bool> enable_thinking) {
  ordered_json c = {{"messages", messages}, {"tools", tools}, {"add_generation_prompt", add_generation_prompt},
                    {"bos_token", "<｜begin▁of▁sentence｜>"}, {"eos_token", "<｜end▁of▁sentence｜>"}};
  if (enable_thinking) c["enable_thinking"] = *enable_thinking;
  return c;
}

const ordered_json kUser = {{"role", "user"}, {"content", "Weather in Beijing, and a search?"}};

std::string generation_prompt(const std::string& file, std::optional<bool> enable_thinking) {
  const auto tmpl = tmpl::ChatTemplate::parse(read_file(fixtures() / "templates" / file));
  return tmpl.render(context(ordered_json::array({kUser}), ordered_json::array(), true, enable_thinking));
}

// Whether the output starts inside <think>, per template and enable_thinking: GLM-4.7 and Qwen3.5 open the
// block in the prompt when thinking is on; Qwen3 and GLM-4.5 leave it to the model.
TEST(TemplatePrompts, OpenReasoningOnlyWhenThinkingIsInThePrompt) {
  struct Expect {
    std::string file;
    bool by_default, thinking_on, thinking_off;
  };
  const std::vector<Expect> expectations = {
      {"zai-org-GLM-4.5.jinja", false, false, false},
      {"llama.cpp-modified-GLM-4.6.jinja", false, false, false},
      {"llama.cpp-modified-GLM-4.7-Flash.jinja", true, true, false},
      {"Qwen-Qwen3-0.6B.jinja", false, false, false},
      {"Qwen-Qwen3-8B.jinja", false, false, false},
      {"Qwen-Qwen3-4B-Instruct-2507.jinja", false, false, false},
      {"Qwen-Qwen3.5-4B.jinja", true, true, false},
      {"Qwen-Qwen3.5-0.8B.jinja", false, true, false},
      {"deepseek-ai-DeepSeek-V3.jinja", false, false, false},
  };
  for (const Expect& e : expectations) {
    SCOPED_TRACE(e.file);
    EXPECT_EQ(prompt_opens_reasoning(generation_prompt(e.file, std::nullopt)), e.by_default);
    EXPECT_EQ(prompt_opens_reasoning(generation_prompt(e.file, true)), e.thinking_on);
    EXPECT_EQ(prompt_opens_reasoning(generation_prompt(e.file, false)), e.thinking_off);
  }
}

// Renders an assistant turn with reasoning, content and three tool calls through each template, takes what
// follows the generation prompt (what the model would have generated) and parses it with the detected parsers.
TEST(TemplateRoundTrip, DetectedParsersReadBackWhatTheTemplateWrites) {
  const json tools = json::parse(read_file(fixtures() / "glm45.json")).at("tools");
  const json calls = json::parse(R"([
    {"name": "get_weather", "arguments": {"location": "北京 😀", "days": 3}},
    {"name": "search", "arguments": {"query": "a \"q\" <b> 5", "filters": {"lang": "zh", "n": [1, 2.5]},
                                      "exact": true, "threshold": 0.5, "cursor": null}},
    {"name": "list_files", "arguments": {}}])");
  for (const TemplateCase& t : kTemplates) {
    SCOPED_TRACE(t.file);
    const std::string source = read_file(fixtures() / "templates" / t.file);
    const bool deepseek = t.tool_parser == "deepseekv3";
    // DeepSeek-V3's template wants content null with tool calls and arguments as JSON text; it also closes the
    // block after every call but the first, so it is given two.
    ordered_json tool_calls = ordered_json::array();
    for (size_t i = 0; i < (deepseek ? 2 : calls.size()); ++i) {
      const ordered_json args = ordered_json::parse(calls[i]["arguments"].dump());
      tool_calls.push_back({{"type", "function"},
                            {"function", {{"name", calls[i]["name"]}, {"arguments", deepseek ? ordered_json(args.dump()) : args}}}});
    }
    ordered_json assistant = {{"role", "assistant"},
                              {"content", deepseek ? ordered_json(nullptr) : ordered_json("Let me check.")},
                              {"reasoning_content", "Need two tools."},
                              {"tool_calls", tool_calls}};
    const auto tmpl = tmpl::ChatTemplate::parse(source);
    const ordered_json otools = ordered_json::parse(tools.dump());
    const std::string prompt = tmpl.render(context(ordered_json::array({kUser}), otools, true, true));
    std::string full = tmpl.render(context(ordered_json::array({kUser, assistant}), otools, false, true));
    ASSERT_TRUE(full.starts_with(prompt)) << "prompt:\n" << prompt << "\nfull:\n" << full;
    std::string output = full.substr(prompt.size());
    for (std::string_view eot : {"<|im_end|>\n", "<｜end▁of▁sentence｜>"}) {
      if (output.ends_with(eot)) output.resize(output.size() - eot.size());
    }

    const ParserChoice choice = detect_parsers(source);
    const ParsedMessage m = parse_message(output, {.tool_parser = choice.tool_parser,
                                                   .reasoning_parser = choice.reasoning_parser,
                                                   .starts_in_reasoning = prompt_opens_reasoning(prompt),
                                                   .schemas = ToolSchemas::from_openai_tools(tools),
                                                   .call_id_seed = "x"});
    const bool renders_reasoning = source.find("reasoning_content") != std::string::npos;
    EXPECT_EQ(m.reasoning_content, renders_reasoning ? "Need two tools." : "") << output;
    EXPECT_EQ(m.content, deepseek ? "" : "Let me check.") << output;
    ASSERT_EQ(m.tool_calls.size(), tool_calls.size()) << output;
    for (size_t i = 0; i < m.tool_calls.size(); ++i) {
      EXPECT_EQ(m.tool_calls[i].name, calls[i]["name"]) << output;
      EXPECT_EQ(json::parse(m.tool_calls[i].arguments), calls[i]["arguments"]) << output;
    }
  }
}

}  // namespace
}  // namespace tandem::parsers
