// The request side of chat tool calling without a model: the body keeps the client's key order
// (parse_body_ordered), `tools` / `tool_choice` are validated (chat_tools.h) and `messages` with tool calls
// and tool results become what the chat template expects (chat_messages.h). Every bad input is a 400 ApiError
// naming the field.
#include <gtest/gtest.h>

#include <functional>

#include "server/chat_messages.h"
#include "server/chat_tools.h"
#include "server/errors.h"
#include "server/json_fields.h"

namespace tandem::server {
namespace {

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

std::vector<std::string> keys(const OJson& object) {
  std::vector<std::string> out;
  for (const auto& [k, v] : object.items()) out.push_back(k);
  return out;
}

TEST(ChatRequestBody, KeepsTheClientsKeyOrder) {
  const OJson body = parse_body_ordered(
      R"({"zeta": 1, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object",
          "properties": {"zz": {"type": "string"}, "aa": {"type": "integer"}, "mm": {}}, "required": ["zz"]}}}],
          "alpha": 2})");
  EXPECT_EQ(keys(body), (std::vector<std::string>{"zeta", "tools", "alpha"}));
  const OJson& params = body["tools"][0]["function"]["parameters"];
  EXPECT_EQ(keys(params), (std::vector<std::string>{"type", "properties", "required"}));
  EXPECT_EQ(keys(params["properties"]), (std::vector<std::string>{"zz", "aa", "mm"}));
  // ... and the tools the template gets are that list, untouched.
  const ChatTools t = read_chat_tools(ordered_member(body, "tools"), nullptr);
  EXPECT_EQ(t.tools.dump(), body["tools"].dump());
  EXPECT_TRUE(t.parse_calls);
  EXPECT_EQ(t.schemas.types("f", "aa"), parsers::kArgInteger);
}

TEST(ChatRequestBody, OrderedParseRefusesWhatWouldBeSlowOrDeep) {
  std::string wide = "{";
  for (int i = 0; i < 5000; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  wide += "}";
  Failure f = failure_of([&] { (void)parse_body_ordered(wide); });
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(f.code, "invalid_json");
  f = failure_of([&] { (void)parse_body_ordered(std::string(100, '[') + std::string(100, ']')); });
  EXPECT_EQ(f.status, 400);
  f = failure_of([&] { (void)parse_body_ordered("{\"a\": "); });
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(f.code, "invalid_json");
  EXPECT_EQ(ordered_member(parse_body_ordered(R"({"a": null})"), "a"), nullptr);
}

TEST(ChatTools, BadToolsAndToolChoiceAre400sNamingTheField) {
  const OJson ok = OJson::parse(R"([{"type": "function", "function": {"name": "get_weather",
                                    "parameters": {"type": "object", "properties": {}}}}])");
  struct Bad {
    std::string what;
    OJson tools;        // null: absent
    OJson tool_choice;  // null: absent
    std::string param;
    std::string code;
  };
  const std::vector<Bad> cases = {
      {"tools not a list", OJson::parse(R"({"type": "function"})"), nullptr, "tools", "invalid_type"},
      {"entry not an object", OJson::parse(R"(["get_weather"])"), nullptr, "tools[0]", "invalid_type"},
      {"type missing", OJson::parse(R"([{"function": {"name": "f"}}])"), nullptr, "tools[0].type",
       "missing_required_parameter"},
      {"type not function", OJson::parse(R"([{"type": "code_interpreter", "function": {"name": "f"}}])"),
       nullptr, "tools[0].type", "invalid_value"},
      {"function missing", OJson::parse(R"([{"type": "function"}])"), nullptr, "tools[0].function",
       "missing_required_parameter"},
      {"function.name missing", OJson::parse(R"([{"type": "function", "function": {"description": "x"}}])"),
       nullptr, "tools[0].function.name", "missing_required_parameter"},
      {"function.name not a string", OJson::parse(R"([{"type": "function", "function": {"name": 7}}])"),
       nullptr, "tools[0].function.name", "invalid_type"},
      {"function.name empty", OJson::parse(R"([{"type": "function", "function": {"name": ""}}])"), nullptr,
       "tools[0].function.name", "invalid_value"},
      {"function.name unparseable",
       OJson::parse(R"([{"type": "function", "function": {"name": "get weather"}}])"), nullptr,
       "tools[0].function.name", "invalid_value"},
      {"parameters not an object",
       OJson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": "{}"}}])"), nullptr,
       "tools[0].function.parameters", "invalid_type"},
      {"properties not an object",
       OJson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": {"properties": []}}}])"),
       nullptr, "tools[0].function.parameters.properties", "invalid_type"},
      {"duplicate names",
       OJson::parse(
           R"([{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}])"),
       nullptr, "tools[1].function.name", "invalid_value"},
      {"unknown tool_choice", ok, "any", "tool_choice", "invalid_value"},
      {"tool_choice wrong type", ok, 3, "tool_choice", "invalid_type"},
      {"named tool_choice malformed", ok, OJson::parse(R"({"type": "function", "name": "get_weather"})"),
       "tool_choice", "invalid_value"},
      {"named tool_choice unknown function", ok,
       OJson::parse(R"({"type": "function", "function": {"name": "nope"}})"), "tool_choice.function.name",
       "invalid_value"},
      {"required without tools", nullptr, "required", "tool_choice", "invalid_value"},
      {"required", ok, "required", "tool_choice", "unsupported"},
      {"named function", ok, OJson::parse(R"({"type": "function", "function": {"name": "get_weather"}})"),
       "tool_choice", "unsupported"},
  };
  for (const Bad& b : cases) {
    const Failure f = failure_of([&] {
      (void)read_chat_tools(b.tools.is_null() ? nullptr : &b.tools,
                            b.tool_choice.is_null() ? nullptr : &b.tool_choice);
    });
    EXPECT_EQ(f.status, 400) << b.what;
    EXPECT_EQ(f.param, b.param) << b.what << ": " << f.message;
    EXPECT_EQ(f.code, b.code) << b.what << ": " << f.message;
  }
  // "required" is refused as unsupported with a reason, not as a malformed value.
  const OJson required = "required";
  EXPECT_NE(failure_of([&] { (void)read_chat_tools(&ok, &required); }).message.find("constrained"),
            std::string::npos);
}

TEST(ChatTools, ToolChoiceDecidesWhatTheTemplateSeesAndWhatIsParsed) {
  const OJson tools = OJson::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  const OJson none = "none", automatic = "auto";
  ChatTools t = read_chat_tools(&tools, nullptr);
  EXPECT_TRUE(t.parse_calls);
  EXPECT_EQ(t.tools, tools);
  t = read_chat_tools(&tools, &automatic);
  EXPECT_TRUE(t.parse_calls);
  t = read_chat_tools(&tools, &none);  // plain text out, and no tools in the prompt
  EXPECT_FALSE(t.parse_calls);
  EXPECT_TRUE(t.tools.is_null());
  t = read_chat_tools(nullptr, &automatic);  // "auto" without tools: nothing to call
  EXPECT_FALSE(t.parse_calls);
  EXPECT_TRUE(t.tools.is_null());
  const OJson empty = OJson::array();
  EXPECT_FALSE(read_chat_tools(&empty, nullptr).parse_calls);
}

TEST(ChatMessages, ToolCallArgumentsBecomeObjectsInTheirOwnKeyOrder) {
  const OJson messages = OJson::parse(R"([
      {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]},
      {"role": "assistant", "content": null, "reasoning_content": "Call the tool.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": "{\"zz\": 1, \"aa\": {\"y\": 2, \"b\": 3}}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": {"tz": "CET", "a": 1}}}]},
      {"role": "tool", "tool_call_id": "call_2", "content": "12:00"},
      {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]}])");
  const OJson out = template_messages(messages);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["content"], "Weather in Paris?");
  const OJson& a = out[1];
  EXPECT_EQ(keys(a), (std::vector<std::string>{"role", "content", "reasoning_content", "tool_calls"}));
  EXPECT_EQ(a["reasoning_content"], "Call the tool.");
  const OJson& args = a["tool_calls"][0]["function"]["arguments"];
  ASSERT_TRUE(args.is_object());
  EXPECT_EQ(args.dump(), R"({"zz":1,"aa":{"y":2,"b":3}})");
  EXPECT_EQ(a["tool_calls"][1]["function"]["arguments"].dump(), R"({"tz":"CET","a":1})");
  EXPECT_EQ(keys(a["tool_calls"][0]), (std::vector<std::string>{"id", "type", "function"}));
  EXPECT_EQ(out[3]["content"], "sunny");
  EXPECT_EQ(out[3]["tool_call_id"], "call_1");
}

TEST(ChatMessages, BadToolCallsAndToolMessagesAre400s) {
  const std::string user = R"({"role": "user", "content": "hi"})";
  const std::string call = R"({"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                               "function": {"name": "f", "arguments": "{}"}}]})";
  struct Bad {
    std::string what;
    std::string messages;
    std::string param;
    std::string code;
  };
  const std::vector<Bad> cases = {
      {"tool message answering no call",
       "[" + user + R"(, {"role": "tool", "tool_call_id": "call_9", "content": "x"}])",
       "messages[1].tool_call_id", "invalid_value"},
      {"tool message answering a later call",
       "[" + user + R"(, {"role": "tool", "tool_call_id": "call_1", "content": "x"}, )" + call + "]",
       "messages[1].tool_call_id", "invalid_value"},
      {"tool message with another id",
       "[" + user + ", " + call + R"(, {"role": "tool", "tool_call_id": "call_2", "content": "x"}])",
       "messages[2].tool_call_id", "invalid_value"},
      {"tool message without tool_call_id",
       "[" + user + ", " + call + R"(, {"role": "tool", "content": "x"}])", "messages[2].tool_call_id",
       "missing_required_parameter"},
      {"tool message without content",
       "[" + user + ", " + call + R"(, {"role": "tool", "tool_call_id": "call_1"}])", "messages[2].content",
       "missing_required_parameter"},
      {"tool_calls not a list", R"([{"role": "assistant", "tool_calls": {"id": "c"}}])",
       "messages[0].tool_calls", "invalid_type"},
      {"tool call without id",
       R"([{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}])",
       "messages[0].tool_calls[0].id", "missing_required_parameter"},
      {"tool call without function",
       R"([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}])",
       "messages[0].tool_calls[0].function", "missing_required_parameter"},
      {"tool call without name",
       R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}])",
       "messages[0].tool_calls[0].function.name", "missing_required_parameter"},
      {"arguments not JSON",
       R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{\"a\":"}}]}])",
       "messages[0].tool_calls[0].function.arguments", "invalid_json"},
      {"arguments not an object",
       R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}])",
       "messages[0].tool_calls[0].function.arguments", "invalid_value"},
      {"arguments a number",
       R"([{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": 5}}]}])",
       "messages[0].tool_calls[0].function.arguments", "invalid_type"},
      {"reasoning_content not a string",
       R"([{"role": "assistant", "content": "x", "reasoning_content": ["a"]}])",
       "messages[0].reasoning_content", "invalid_type"},
  };
  for (const Bad& b : cases) {
    const OJson messages = OJson::parse(b.messages);
    const Failure f = failure_of([&] { (void)template_messages(messages); });
    EXPECT_EQ(f.status, 400) << b.what;
    EXPECT_EQ(f.param, b.param) << b.what << ": " << f.message;
    EXPECT_EQ(f.code, b.code) << b.what << ": " << f.message;
  }
  // The same conversation with the tool message after its call is fine.
  EXPECT_EQ(
      failure_of([&] {
        (void)template_messages(OJson::parse(
            "[" + user + ", " + call + R"(, {"role": "tool", "tool_call_id": "call_1", "content": "x"}])"));
      }).status,
      0);
}

}  // namespace
}  // namespace tandem::server
