// The request side of the Anthropic Messages API without a model (server/anthropic_request.h): a Messages
// body becomes the chat-completions body a client would send for the same conversation, so the chat template
// renders the same prompt as the OpenAI route for the equivalent OpenAI request (checked on the bundled
// model's GLM-4.5 template and on GLM-4.7 and Qwen3 templates, which render tool calls and reasoning
// differently); every bad body is a 400 naming the field.
#include "server/anthropic_request.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "common/temp_dir.h"
#include "server/errors.h"
#include "server/json_fields.h"
#include "server/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace tandem::server {
namespace {

namespace fs = std::filesystem;
using OJson = nlohmann::ordered_json;

struct Failure {
  int status = 0;  // 0: no error
  std::string param;
  std::string code;
  std::string message;
};

Failure failure_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return {e.status(), e.param(), e.code(), e.what()};
  }
  return {};
}

/// A tool round trip in Anthropic's terms: system blocks, thinking + text + two tool_use blocks whose inputs'
/// keys are not sorted, both results (a string and text blocks) and a question in one user message.
OJson anthropic_body() {
  return parse_body_ordered(R"({
    "model": "tandem-tiny", "max_tokens": 64,
    "system": [{"type": "text", "text": "You are a weather bot. "}, {"type": "text", "text": "Be brief.",
                "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "get_weather", "description": "Current weather — any city",
               "input_schema": {"type": "object", "properties": {"zz_city": {"type": "string"}, "days": {"type": "integer"},
                                                                 "aa_unit": {"type": "string", "enum": ["c", "f"]}},
                                "required": ["zz_city"]}},
              {"name": "list_files", "input_schema": {"type": "object", "properties": {}}, "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "messages": [
      {"role": "user", "content": "Weather in Paris and Oslo?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Two cities: two calls.", "signature": "sig"},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"zz_city": "Paris", "days": 2, "aa_unit": "c"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"zz_city": "Oslo", "nested": {"y": 1, "b": [2]}}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny, 21"},
        {"type": "tool_result", "tool_use_id": "toolu_b", "is_error": true,
         "content": [{"type": "text", "text": "rain, "}, {"type": "text", "text": "9"}]},
        {"type": "text", "text": "Thanks. "}, {"type": "text", "text": "And tomorrow?"}]}]})");
}

/// The same conversation as an OpenAI client sends it to /v1/chat/completions (arguments as JSON text).
OJson openai_body() {
  return parse_body_ordered(R"({
    "model": "tandem-tiny", "max_tokens": 64,
    "messages": [
      {"role": "system", "content": "You are a weather bot. Be brief."},
      {"role": "user", "content": "Weather in Paris and Oslo?"},
      {"role": "assistant", "content": "Checking both.", "reasoning_content": "Two cities: two calls.", "tool_calls": [
        {"id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"zz_city\": \"Paris\", \"days\": 2, \"aa_unit\": \"c\"}"}},
        {"id": "toolu_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"zz_city\": \"Oslo\", \"nested\": {\"y\": 1, \"b\": [2]}}"}}]},
      {"role": "tool", "tool_call_id": "toolu_a", "content": "sunny, 21"},
      {"role": "tool", "tool_call_id": "toolu_b", "content": "rain, 9"},
      {"role": "user", "content": [{"type": "text", "text": "Thanks. "}, {"type": "text", "text": "And tomorrow?"}]}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather — any city",
               "parameters": {"type": "object", "properties": {"zz_city": {"type": "string"}, "days": {"type": "integer"},
                                                               "aa_unit": {"type": "string", "enum": ["c", "f"]}},
                              "required": ["zz_city"]}}},
              {"type": "function", "function": {"name": "list_files", "parameters": {"type": "object", "properties": {}}}}],
    "tool_choice": "auto",
    "chat_template_kwargs": {"enable_thinking": true}})");
}

const tokenizer::Tokenizer& tiny() {
  static const auto tok = tokenizer::Tokenizer::from_dir(fs::path(TANDEM_SOURCE_DIR) / "models/tandem-tiny");
  return *tok;
}

/// The bundled model's tokenizer with another checkpoint's chat template.
std::unique_ptr<tokenizer::Tokenizer> with_template(const std::string& jinja) {
  const fs::path src = fs::path(TANDEM_SOURCE_DIR);
  std::ifstream in(src / "tests/fixtures/parsers/templates" / jinja);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << jinja;
  test::TempDir dir;
  fs::copy_file(src / "models/tandem-tiny/tokenizer.json", dir.path() / "tokenizer.json");
  std::ofstream(dir.path() / "tokenizer_config.json") << nlohmann::json({{"chat_template", ss.str()}}).dump();
  return tokenizer::Tokenizer::from_dir(dir.path());
}

std::string render(const tokenizer::Tokenizer& tok, const OJson& chat_body) {
  return render_chat_prompt(tok, chat_body, /*add_generation_prompt=*/true).text;
}

TEST(AnthropicRequest, BecomesTheEquivalentChatBody) {
  const OJson chat = anthropic_chat_body(anthropic_body());
  // What the template sees: the OpenAI body's messages with arguments as objects in the client's key order.
  OJson expected = openai_body();
  expected.erase("model");
  expected.erase("max_tokens");
  for (OJson& call : expected["messages"][2]["tool_calls"])
    call["function"]["arguments"] = OJson::parse(call["function"]["arguments"].get<std::string>());
  expected["messages"][5]["content"] = "Thanks. And tomorrow?";
  EXPECT_EQ(chat.dump(), expected.dump());
  // The tool's schema keeps its order (zz_city before aa_unit), as the template will print it.
  const std::string schema = chat["tools"][0]["function"]["parameters"]["properties"].dump();
  EXPECT_LT(schema.find("zz_city"), schema.find("aa_unit")) << schema;
}

TEST(AnthropicRequest, RendersTheOpenAiRoutesPromptForTheEquivalentRequest) {
  struct Template {
    std::string name;
    std::unique_ptr<tokenizer::Tokenizer> owned;
    const tokenizer::Tokenizer* tok;
    std::vector<std::string> must_contain;  // the conversation's pieces in this template's syntax
  };
  std::vector<Template> templates;
  templates.push_back(
      {"tandem-tiny (GLM-4.5)",
       nullptr,
       &tiny(),
       {"<|system|>\nYou are a weather bot. Be brief.", "<tool_call>get_weather",
        "<arg_key>zz_city</arg_key>\n<arg_value>Paris</arg_value>\n<arg_key>days</arg_key>",
        "<tool_response>\nsunny, 21\n</tool_response>", "<tool_response>\nrain, 9\n</tool_response>",
        "<|user|>\nThanks. And tomorrow?", "{\"name\": \"get_weather\", \"description\""}});
  for (const char* jinja : {"llama.cpp-modified-GLM-4.7-Flash.jinja", "Qwen-Qwen3-8B.jinja"}) {
    auto tok = with_template(jinja);
    const tokenizer::Tokenizer* p = tok.get();
    templates.push_back(
        {jinja, std::move(tok), p, {"You are a weather bot. Be brief.", "sunny, 21", "rain, 9", "Oslo"}});
  }
  for (const Template& t : templates) {
    SCOPED_TRACE(t.name);
    const std::string anthropic = render(*t.tok, anthropic_chat_body(anthropic_body()));
    const std::string openai = render(*t.tok, openai_body());
    EXPECT_EQ(anthropic, openai);
    for (const std::string& piece : t.must_contain)
      EXPECT_NE(anthropic.find(piece), std::string::npos) << piece << "\n" << anthropic;
    // The first call's arguments in the client's order, whatever the template does with them.
    EXPECT_LT(anthropic.find("Paris"), anthropic.find("Oslo")) << anthropic;

    // thinking disabled is enable_thinking false; tool_choice none hides the tools (as "none" and as no tools
    // at all on the OpenAI route).
    OJson a = anthropic_body(), o = openai_body();
    a["thinking"] = {{"type", "disabled"}};
    a["tool_choice"] = {{"type", "none"}};
    o["chat_template_kwargs"]["enable_thinking"] = false;
    o["tool_choice"] = "none";
    const std::string off = render(*t.tok, anthropic_chat_body(a));
    EXPECT_EQ(off, render(*t.tok, o));
    o.erase("tool_choice");
    o.erase("tools");
    EXPECT_EQ(off, render(*t.tok, o));
    EXPECT_NE(off, anthropic);
    EXPECT_EQ(off.find("list_files"), std::string::npos) << off;

    // No thinking field: the template's default, as an OpenAI request without chat_template_kwargs.
    a.erase("thinking");
    o.erase("chat_template_kwargs");
    EXPECT_EQ(render(*t.tok, anthropic_chat_body(a)), render(*t.tok, o));
  }
}

TEST(AnthropicRequest, ShortFormsAndToolOnlyAssistantMessages) {
  // A string system and string contents; an assistant turn with only a tool_use has content "" (not null,
  // which GLM's template prints as "None"); results of a user turn without text add no user message.
  const OJson chat = anthropic_chat_body(parse_body_ordered(R"({"system": "Sys.", "messages": [
      {"role": "user", "content": "List."},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "list_files", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
      {"role": "assistant", "content": "Empty."},
      {"role": "user", "content": "Ok"}]})"));
  EXPECT_EQ(chat.dump(), parse_body_ordered(R"({"messages": [
      {"role": "system", "content": "Sys."},
      {"role": "user", "content": "List."},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "type": "function",
                                                           "function": {"name": "list_files", "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "t1", "content": ""},
      {"role": "assistant", "content": "Empty."},
      {"role": "user", "content": "Ok"}]})")
                             .dump());
  const std::string prompt = render(tiny(), chat);
  EXPECT_EQ(prompt.find("None"), std::string::npos) << prompt;
  // An empty system prompt is no system message.
  EXPECT_EQ(anthropic_chat_body(
                parse_body_ordered(R"({"system": [], "messages": [{"role": "user", "content": "x"}]})")),
            parse_body_ordered(R"({"messages": [{"role": "user", "content": "x"}]})"));
}

TEST(AnthropicRequest, BadBodiesAre400sNamingTheField) {
  struct Bad {
    std::string what;
    std::string body;
    std::string param;
    std::string code = "invalid_value";
  };
  const std::string tool = R"({"name": "f", "input_schema": {"type": "object"}})";
  const std::string call =
      R"({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]})";
  const std::vector<Bad> cases = {
      {"messages missing", R"({})", "messages", "missing_required_parameter"},
      {"messages not a list", R"({"messages": {}})", "messages", "invalid_type"},
      {"messages empty", R"({"messages": []})", "messages"},
      {"message not an object", R"({"messages": ["hi"]})", "messages[0]", "invalid_type"},
      {"role missing", R"({"messages": [{"content": "hi"}]})", "messages[0].role",
       "missing_required_parameter"},
      {"role system", R"({"messages": [{"role": "system", "content": "hi"}]})", "messages[0].role"},
      {"role tool", R"({"messages": [{"role": "tool", "content": "hi"}]})", "messages[0].role"},
      {"content missing", R"({"messages": [{"role": "user"}]})", "messages[0].content",
       "missing_required_parameter"},
      {"content a number", R"({"messages": [{"role": "user", "content": 3}]})", "messages[0].content",
       "invalid_type"},
      {"content empty", R"({"messages": [{"role": "user", "content": []}]})", "messages[0].content"},
      {"block not an object", R"({"messages": [{"role": "user", "content": ["hi"]}]})",
       "messages[0].content[0]", "invalid_type"},
      {"block without type", R"({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})",
       "messages[0].content[0].type", "missing_required_parameter"},
      {"text not a string", R"({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]})",
       "messages[0].content[0].text", "invalid_type"},
      {"image block", R"({"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]})",
       "messages[0].content[0].type", "unsupported"},
      {"unknown block", R"({"messages": [{"role": "user", "content": [{"type": "bogus"}]}]})",
       "messages[0].content[0].type", "unsupported"},
      {"tool_use from the user",
       R"({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]})",
       "messages[0].content[0].type", "unsupported"},
      {"tool_result from the assistant",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}, {"role": "user", "content": "y"}]})",
       "messages[1].content[0].type", "unsupported"},
      {"tool_result answering nothing",
       R"({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]})",
       "messages[0].content[0].tool_use_id"},
      {"tool_result answering another id",
       R"({"messages": [{"role": "user", "content": "x"}, )" + call +
           R"(, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2"}]}]})",
       "messages[2].content[0].tool_use_id"},
      {"tool_result before its call",
       R"({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]}, )" +
           call + R"(, {"role": "user", "content": "x"}]})",
       "messages[0].content[0].tool_use_id"},
      {"tool_result without id", R"({"messages": [{"role": "user", "content": [{"type": "tool_result"}]}]})",
       "messages[0].content[0].tool_use_id", "missing_required_parameter"},
      {"tool_result content an image",
       R"({"messages": [{"role": "user", "content": "x"}, )" + call +
           R"(, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "image"}]}]}]})",
       "messages[2].content[0].content[0].type", "unsupported"},
      {"tool_result content a number",
       R"({"messages": [{"role": "user", "content": "x"}, )" + call +
           R"(, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": 5}]}]})",
       "messages[2].content[0].content", "invalid_type"},
      {"is_error not a boolean",
       R"({"messages": [{"role": "user", "content": "x"}, )" + call +
           R"(, {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "is_error": "yes"}]}]})",
       "messages[2].content[0].is_error", "invalid_type"},
      {"tool_use without input",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f"}]}, {"role": "user", "content": "y"}]})",
       "messages[1].content[0].input", "missing_required_parameter"},
      {"tool_use input not an object",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "{}"}]}, {"role": "user", "content": "y"}]})",
       "messages[1].content[0].input", "invalid_type"},
      {"tool_use with an empty id",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "", "name": "f", "input": {}}]}, {"role": "user", "content": "y"}]})",
       "messages[1].content[0].id", "invalid_type"},
      {"thinking block without thinking",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": [{"type": "thinking", "signature": "s"}]}, {"role": "user", "content": "y"}]})",
       "messages[1].content[0].thinking", "missing_required_parameter"},
      {"prefill",
       R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "The answer is"}]})",
       "messages[1]"},
      {"system a number", R"({"system": 1, "messages": [{"role": "user", "content": "x"}]})", "system",
       "invalid_type"},
      {"system with an image",
       R"({"system": [{"type": "image"}], "messages": [{"role": "user", "content": "x"}]})", "system[0].type",
       "unsupported"},
      {"tools not a list", R"({"tools": {}, "messages": [{"role": "user", "content": "x"}]})", "tools",
       "invalid_type"},
      {"tool without name",
       R"({"tools": [{"input_schema": {}}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].name", "missing_required_parameter"},
      {"tool name with a space",
       R"({"tools": [{"name": "get weather", "input_schema": {}}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].name"},
      {"two tools of one name",
       R"({"tools": [)" + tool + "," + tool + R"(], "messages": [{"role": "user", "content": "x"}]})",
       "tools[1].name"},
      {"tool without input_schema",
       R"({"tools": [{"name": "f"}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].input_schema", "missing_required_parameter"},
      {"input_schema not an object",
       R"({"tools": [{"name": "f", "input_schema": "{}"}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].input_schema", "invalid_type"},
      {"input_schema of an array",
       R"({"tools": [{"name": "f", "input_schema": {"type": "array"}}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].input_schema.type"},
      {"description not a string",
       R"({"tools": [{"name": "f", "description": 1, "input_schema": {}}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].description", "invalid_type"},
      {"server tool",
       R"({"tools": [{"type": "bash_20250124", "name": "bash"}], "messages": [{"role": "user", "content": "x"}]})",
       "tools[0].type", "unsupported"},
      {"tool_choice a string", R"({"tool_choice": "auto", "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice", "invalid_type"},
      {"tool_choice of unknown type",
       R"({"tools": [)" + tool +
           R"(], "tool_choice": {"type": "required"}, "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice.type"},
      {"tool_choice any",
       R"({"tools": [)" + tool +
           R"(], "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice", "unsupported"},
      {"tool_choice tool",
       R"({"tools": [)" + tool +
           R"(], "tool_choice": {"type": "tool", "name": "f"}, "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice", "unsupported"},
      {"tool_choice tool not in tools",
       R"({"tools": [)" + tool +
           R"(], "tool_choice": {"type": "tool", "name": "g"}, "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice.name"},
      {"disable_parallel_tool_use not a boolean",
       R"({"tool_choice": {"type": "auto", "disable_parallel_tool_use": 1}, "messages": [{"role": "user", "content": "x"}]})",
       "tool_choice.disable_parallel_tool_use", "invalid_type"},
      {"thinking of unknown type",
       R"({"thinking": {"type": "on"}, "messages": [{"role": "user", "content": "x"}]})", "thinking.type"},
      {"thinking enabled without budget",
       R"({"thinking": {"type": "enabled"}, "messages": [{"role": "user", "content": "x"}]})",
       "thinking.budget_tokens", "missing_required_parameter"},
      {"thinking budget 0",
       R"({"thinking": {"type": "enabled", "budget_tokens": 0}, "messages": [{"role": "user", "content": "x"}]})",
       "thinking.budget_tokens"},
      {"thinking budget a string",
       R"({"thinking": {"type": "enabled", "budget_tokens": "1024"}, "messages": [{"role": "user", "content": "x"}]})",
       "thinking.budget_tokens"},
  };
  for (const Bad& b : cases) {
    const Failure f = failure_of([&] { (void)anthropic_chat_body(parse_body_ordered(b.body)); });
    EXPECT_EQ(f.status, 400) << b.what;
    EXPECT_EQ(f.param, b.param) << b.what << ": " << f.message;
    EXPECT_EQ(f.code, b.code) << b.what << ": " << f.message;
    EXPECT_FALSE(f.message.empty()) << b.what;
  }
  // Refusals say why.
  const Failure any = failure_of([&] {
    (void)anthropic_chat_body(parse_body_ordered(
        R"({"tools": [)" + tool +
        R"(], "tool_choice": {"type": "any"}, "messages": [{"role": "user", "content": "x"}]})"));
  });
  EXPECT_NE(any.message.find("constrained"), std::string::npos) << any.message;
}

TEST(AnthropicRequest, AcceptsWhatClientsSendBack) {
  // A response's blocks sent back as history (a thinking block with its empty signature, ids toolu_...), keys
  // this server ignores (cache_control, citations, caller), redacted thinking, is_error, and tool_choice none
  // without tools.
  const OJson body = parse_body_ordered(R"({"tool_choice": {"type": "none"}, "messages": [
      {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}, "citations": null}]},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "Hm.", "signature": ""},
                                        {"type": "redacted_thinking", "data": "opaque"},
                                        {"type": "tool_use", "id": "toolu_x", "name": "f", "input": {"b": 1, "a": 2},
                                         "caller": {"type": "direct"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "is_error": false,
                                    "content": [{"type": "text", "text": "ok"}]}]}]})");
  const OJson chat = anthropic_chat_body(body);
  EXPECT_EQ(chat.dump(), parse_body_ordered(R"({"messages": [
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "", "reasoning_content": "Hm.", "tool_calls": [
        {"id": "toolu_x", "type": "function", "function": {"name": "f", "arguments": {"b": 1, "a": 2}}}]},
      {"role": "tool", "tool_call_id": "toolu_x", "content": "ok"}], "tool_choice": "none"})")
                             .dump());
  EXPECT_FALSE(render(tiny(), chat).empty());
}

TEST(AnthropicErrors, ShapeAndTypeFollowTheStatus) {
  const ApiError bad(400, "'max_tokens' is required", "max_tokens", "missing_required_parameter");
  EXPECT_EQ(
      error_body(bad, ErrorShape::kAnthropic).dump(),
      R"({"type":"error","error":{"type":"invalid_request_error","message":"'max_tokens' is required"}})");
  // The OpenAI routes' shape is unchanged.
  EXPECT_EQ(error_body(bad, ErrorShape::kOpenAi).dump(), nlohmann::ordered_json(bad.to_json()).dump());
  EXPECT_TRUE(error_body(bad, ErrorShape::kOpenAi).contains("error"));
  EXPECT_FALSE(error_body(bad, ErrorShape::kOpenAi).contains("type"));
  const std::vector<std::pair<int, std::string>> types = {
      {400, "invalid_request_error"}, {405, "invalid_request_error"},
      {401, "authentication_error"},  {403, "permission_error"},
      {404, "not_found_error"},       {413, "request_too_large"},
      {429, "rate_limit_error"},      {500, "api_error"},
      {503, "overloaded_error"},      {529, "overloaded_error"}};
  for (const auto& [status, type] : types) {
    EXPECT_EQ(anthropic_error_type(status), type) << status;
    EXPECT_EQ(error_body(ApiError(status, "m"), ErrorShape::kAnthropic)["error"]["type"], type) << status;
  }
}

}  // namespace
}  // namespace tandem::server
