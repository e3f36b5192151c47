// End-to-end tests of tool calling and reasoning in /v1/chat/completions through the real `tandem serve`
// binary and the bundled model (a GLM-4.5 chat template): the output parsers chosen at start-up (detected, or
// by flag), request validation of tools / tool_choice / tool messages with OpenAI's error shape, the prompt
// the template renders for tools and tool calls compared with Python Jinja2 (the template oracle) in the
// request's key order, and parsed responses that are the same streamed and not, with speculation delivering
// several tokens per step and without it. The model was not trained to call tools: the exact tool-call shapes
// are covered by tests/unit/server_chat_output_test.cpp; here every expectation comes from an independent
// request (raw /v1/completions text, /tokenize + /detokenize, the oracle), never from the code path under
// test alone.
#include <filesystem>
#include <map>

#include "common/run_cli.h"
#include "e2e/server_process.h"
#include "unit/template_oracle.h"

namespace tandem::test {
namespace {

using OJson = nlohmann::ordered_json;

// Speculation with a fixed K = 3: the detokenizer hands the parsers several tokens per step.
class ServerApiTools : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({"--speculative-algorithm", "NEXTN", "--speculative-policy", "fixed",
                                 "--speculative-num-steps", "3"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ && server_->alive()) << "server not running";
    c_ = server_->client();
  }
  Json ok_post(const std::string& path, const std::string& body) {
    const HttpResult r = post(*c_, path, body);
    EXPECT_EQ(r.status, 200) << path << " " << body << " -> " << r.body;
    return r.status == 200 ? r.json() : Json();
  }

  static ServerProcess* server_;
  std::unique_ptr<httplib::Client> c_;
};
ServerProcess* ServerApiTools::server_ = nullptr;

/// Tools whose keys are not in sorted order anywhere: a server that re-sorts them renders another prompt.
OJson weather_tools() {
  return OJson::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather — any city",
      "parameters": {"type": "object", "properties": {"zz_city": {"type": "string", "description": "City"},
                                                      "days": {"type": "integer"},
                                                      "aa_unit": {"type": "string", "enum": ["c", "f"]}},
                     "required": ["zz_city"]}}},
    {"type": "function", "function": {"name": "list_files", "parameters": {"type": "object", "properties": {}}}}])");
}

/// A conversation with a tool round trip, as the template must see it: tool-call arguments as objects,
/// content parts flattened.
OJson conversation_for_template() {
  return OJson::parse(R"([
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": "Weather in Paris and Oslo?"},
    {"role": "assistant", "content": "", "reasoning_content": "Two cities: two calls.", "tool_calls": [
      {"id": "call_a", "type": "function", "function": {"name": "get_weather",
                                                        "arguments": {"zz_city": "Paris", "days": 2, "aa_unit": "c"}}},
      {"id": "call_b", "type": "function", "function": {"name": "get_weather",
                                                        "arguments": {"zz_city": "Oslo", "nested": {"y": 1, "b": [2]}}}}]},
    {"role": "tool", "tool_call_id": "call_a", "content": "sunny, 21"},
    {"role": "tool", "tool_call_id": "call_b", "content": "rain, 9"},
    {"role": "user", "content": "Thanks. And tomorrow?"}])");
}

/// The same conversation as a client sends it: the first call's arguments as JSON text (OpenAI's shape), the
/// last user message in content parts.
OJson conversation_as_sent() {
  OJson m = conversation_for_template();
  OJson& args = m[2]["tool_calls"][0]["function"]["arguments"];
  args = args.dump();
  m[5]["content"] =
      OJson::parse(R"([{"type": "text", "text": "Thanks. "}, {"type": "text", "text": "And tomorrow?"}])");
  return m;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The test model's chat template and special-token strings, as tandem's tokenizer loads them.
struct TemplateFiles {
  std::string source;
  OJson globals = OJson::object();  // bos_token / eos_token
};
TemplateFiles template_files() {
  const std::filesystem::path dir = test_model_dir();
  TemplateFiles t;
  const OJson config = OJson::parse(read_text(dir / "tokenizer_config.json"));
  if (config.contains("chat_template") && config["chat_template"].is_string())
    t.source = config["chat_template"];
  if (std::filesystem::exists(dir / "chat_template.jinja")) t.source = read_text(dir / "chat_template.jinja");
  for (const char* k : {"bos_token", "eos_token"})
    if (config.contains(k) && config[k].is_string()) t.globals[k] = config[k];
  return t;
}

std::string oracle_render(const TemplateFiles& t, const OJson& messages, const OJson& tools) {
  OJson ctx = t.globals;
  ctx["messages"] = messages;
  ctx["tools"] = tools;
  ctx["add_generation_prompt"] = true;
  const OJson out =
      tmpl::testing::run_python_oracle(OJson{{"template", t.source}, {"cases", OJson::array({ctx})}});
  EXPECT_TRUE(out.is_array() && out.size() == 1 && out[0].is_string()) << out.dump();
  return out.is_array() && !out.empty() && out[0].is_string() ? out[0].get<std::string>() : "";
}

/// `j` with every object's keys sorted (what a key-sorting server would hand the template).
OJson sorted_keys(const OJson& j) {
  return OJson::parse(Json::parse(j.dump()).dump());
}

/// The message an OpenAI SDK accumulates from a choice's stream deltas, checking their shapes; ids are
/// replaced by their position (they are seeded by the response id, so two responses have different ids).
struct Accumulated {
  std::string content;
  std::string reasoning;
  Json calls = Json::array();  // [{"name", "arguments"}]
  std::string finish_reason;
  int finishes = 0;
};

void accumulate(Accumulated& a, const Json& choice) {
  const Json& d = choice.at("delta");
  if (d.contains("content") && d["content"].is_string()) a.content += d["content"].get<std::string>();
  if (d.contains("reasoning_content")) a.reasoning += d["reasoning_content"].get<std::string>();
  if (d.contains("tool_calls")) {
    for (const Json& tc : d["tool_calls"]) {
      const size_t index = tc.at("index").get<size_t>();
      if (index == a.calls.size()) {
        EXPECT_TRUE(tc.at("id").get<std::string>().rfind("call_", 0) == 0) << tc;
        EXPECT_EQ(tc.at("type"), "function") << tc;
        a.calls.push_back({{"name", tc.at("function").at("name")}, {"arguments", ""}});
      } else {
        EXPECT_EQ(index + 1, a.calls.size()) << tc;
        EXPECT_FALSE(tc.contains("id") || tc.at("function").contains("name"))
            << "a call's id and name come once: " << tc;
      }
      if (index < a.calls.size() && tc.at("function").contains("arguments"))
        a.calls[index]["arguments"] =
            a.calls[index]["arguments"].get<std::string>() + tc["function"]["arguments"].get<std::string>();
    }
  }
  if (!choice.at("finish_reason").is_null()) {
    a.finish_reason = choice["finish_reason"];
    ++a.finishes;
  }
}

Accumulated from_message(const Json& choice) {
  Accumulated a;
  const Json& m = choice.at("message");
  EXPECT_EQ(m.at("role"), "assistant");
  if (m.at("content").is_string()) a.content = m["content"];
  if (m.contains("reasoning_content")) a.reasoning = m["reasoning_content"];
  if (m.contains("tool_calls"))
    for (const Json& tc : m["tool_calls"]) {
      EXPECT_TRUE(tc.at("id").get<std::string>().rfind("call_", 0) == 0) << tc;
      a.calls.push_back(
          {{"name", tc.at("function").at("name")}, {"arguments", tc["function"].at("arguments")}});
    }
  a.finish_reason = choice.at("finish_reason");
  a.finishes = 1;
  return a;
}

void expect_same(const Accumulated& streamed, const Accumulated& whole, const std::string& what) {
  EXPECT_EQ(streamed.content, whole.content) << what;
  EXPECT_EQ(streamed.reasoning, whole.reasoning) << what;
  EXPECT_EQ(streamed.calls, whole.calls) << what;
  EXPECT_EQ(streamed.finish_reason, whole.finish_reason) << what;
  EXPECT_EQ(streamed.finishes, 1) << what;
  for (const Json& c : whole.calls) {
    const Json args = Json::parse(c["arguments"].get<std::string>(), nullptr, false);
    EXPECT_TRUE(args.is_object()) << what << ": arguments are not a JSON object: " << c;
  }
}

std::map<int, Accumulated> stream_choices(httplib::Client& c, const OJson& body, Json* usage = nullptr) {
  OJson sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  const StreamResult s = post_stream_text(c, "/v1/chat/completions", sbody.dump());  // in its key order
  EXPECT_EQ(s.status, 200) << s.raw.substr(0, 500);
  std::map<int, Accumulated> out;
  for (const std::string& e : s.events) {
    if (e == "[DONE]") continue;
    const Json j = Json::parse(e);
    EXPECT_FALSE(j.contains("error")) << e;
    for (const Json& ch : j.at("choices")) accumulate(out[ch.at("index").get<int>()], ch);
    if (usage && j.contains("usage") && !j["usage"].is_null()) *usage = j["usage"];
  }
  return out;
}

std::string trim(std::string s) {
  const char* ws = " \t\n\r";
  s.erase(0, s.find_first_not_of(ws) == std::string::npos ? s.size() : s.find_first_not_of(ws));
  s.erase(s.find_last_not_of(ws) + 1);
  return s;
}

// ---------------------------------------------------------------------------------------------------------

TEST_F(ServerApiTools, DetectedParsersAreLoggedAndInServerInfo) {
  const Json info = get(*c_, "/get_server_info").json();
  // The bundled model's chat template is GLM-4.5's: <arg_key> on a new line after the name, <think>.
  EXPECT_EQ(info["tool_call_parser"], "glm45") << info.dump();
  EXPECT_EQ(info["reasoning_parser"], "glm45") << info.dump();
  EXPECT_NE(info["output_parsers"].get<std::string>().find("detected"), std::string::npos) << info.dump();
  EXPECT_NE(server_->log().find("parsers     tool calls glm45 (detected), reasoning glm45 (detected)"),
            std::string::npos)
      << server_->log_tail();
}

TEST_F(ServerApiTools, BadToolRequestsGetOpenAiErrors) {
  const OJson user = {{"role", "user"}, {"content", "hi"}};
  auto body = [&](OJson extra) {
    OJson b = {{"messages", OJson::array({user})}, {"max_tokens", 2}};
    for (auto& [k, v] : extra.items()) b[k] = v;
    return b.dump();
  };
  const OJson tools = weather_tools();
  const OJson call_msg = OJson::parse(
      R"({"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})");
  struct Case {
    std::string what, path, body, param, code;
  };
  const std::vector<Case> cases = {
      {"tools not a list", "/v1/chat/completions", body({{"tools", {{"type", "function"}}}}), "tools",
       "invalid_type"},
      {"tool without function.name", "/v1/chat/completions",
       body({{"tools", OJson::parse(R"([{"type": "function", "function": {"parameters": {}}}])")}}),
       "tools[0].function.name", "missing_required_parameter"},
      {"parameters not an object", "/v1/chat/completions",
       body({{"tools",
              OJson::parse(R"([{"type": "function", "function": {"name": "f", "parameters": [1]}}])")}}),
       "tools[0].function.parameters", "invalid_type"},
      {"unknown tool_choice", "/v1/chat/completions", body({{"tools", tools}, {"tool_choice", "sometimes"}}),
       "tool_choice", "invalid_value"},
      {"tool_choice required (refused)", "/v1/chat/completions",
       body({{"tools", tools}, {"tool_choice", "required"}}), "tool_choice", "unsupported"},
      {"named tool_choice (refused)", "/v1/chat/completions",
       body({{"tools", tools},
             {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}}}),
       "tool_choice", "unsupported"},
      {"named tool_choice of no tool", "/v1/chat/completions",
       body({{"tools", tools}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}}),
       "tool_choice.function.name", "invalid_value"},
      {"tool message answering no call", "/v1/chat/completions",
       OJson{{"messages", {user, {{"role", "tool"}, {"tool_call_id", "call_x"}, {"content", "r"}}}}}.dump(),
       "messages[1].tool_call_id", "invalid_value"},
      {"tool message with another call's id", "/v1/chat/completions",
       OJson{{"messages", {user, call_msg, {{"role", "tool"}, {"tool_call_id", "call_2"}, {"content", "r"}}}}}
           .dump(),
       "messages[2].tool_call_id", "invalid_value"},
      {"tool-call arguments not JSON", "/v1/chat/completions",
       OJson{{"messages",
              {user, OJson::parse(R"({"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
             "function": {"name": "f", "arguments": "{\"a\": "}}]})")}}}
           .dump(),
       "messages[1].tool_calls[0].function.arguments", "invalid_json"},
      {"parallel_tool_calls wrong type", "/v1/chat/completions", body({{"parallel_tool_calls", "yes"}}),
       "parallel_tool_calls", "invalid_type"},
      {"/tokenize: malformed tools", "/tokenize",
       OJson{{"messages", {user}}, {"tools", OJson::parse(R"([{"type": "function", "function": {}}])")}}
           .dump(),
       "tools[0].function.name", "missing_required_parameter"},
      {"/tokenize: tool message answering no call", "/tokenize",
       OJson{{"messages", {user, {{"role", "tool"}, {"tool_call_id", "c"}, {"content", "r"}}}}}.dump(),
       "messages[1].tool_call_id", "invalid_value"},
  };
  for (const Case& k : cases) {
    const Json e = expect_error(post(*c_, k.path, k.body), 400, k.what);
    if (!e.is_object()) continue;
    EXPECT_EQ(e.value("param", Json()), k.param) << k.what;
    EXPECT_EQ(e.value("code", Json()), k.code) << k.what;
  }
  // Streaming requests are validated before the stream starts: a 400, not an error event.
  const HttpResult r = post(*c_, "/v1/chat/completions",
                            body({{"tools", tools}, {"tool_choice", "required"}, {"stream", true}}));
  expect_error(r, 400, "tool_choice required, streaming");
  // The server is still healthy, and the valid forms of the same requests are accepted.
  EXPECT_EQ(get(*c_, "/health").status, 200);
  EXPECT_EQ(post(*c_, "/v1/chat/completions",
                 body({{"tools", tools}, {"tool_choice", "auto"}, {"parallel_tool_calls", false}}))
                .status,
            200);
  EXPECT_EQ(post(*c_, "/v1/chat/completions",
                 OJson{{"messages",
                        {user, call_msg, {{"role", "tool"}, {"tool_call_id", "call_1"}, {"content", "r"}}}},
                       {"max_tokens", 2}}
                     .dump())
                .status,
            200);
}

TEST_F(ServerApiTools, ToolsReachTheTemplateInRequestKeyOrder) {
  const TemplateFiles t = template_files();
  ASSERT_FALSE(t.source.empty()) << "the test model has no chat template";
  const OJson tools = weather_tools();
  std::string expected;
  try {
    expected = oracle_render(t, conversation_for_template(), tools);
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  ASSERT_FALSE(expected.empty());
  // The test can tell the orders apart: sorted keys render another prompt.
  ASSERT_NE(oracle_render(t, sorted_keys(conversation_for_template()), sorted_keys(tools)), expected);
  ASSERT_NE(expected.find("\"zz_city\": {\"type\": \"string\", \"description\": \"City\"}, \"days\""),
            std::string::npos)
      << expected;

  // What the server renders (via /tokenize, which renders as /v1/chat/completions does) is the oracle's text.
  const OJson request = {{"messages", conversation_as_sent()}, {"tools", tools}};
  const Json tok = ok_post("/tokenize", request.dump());
  ASSERT_TRUE(tok.contains("tokens"));
  const Json detok = ok_post("/detokenize", Json{{"tokens", tok["tokens"]}}.dump());
  EXPECT_TRUE(tmpl::testing::same_outcome(OJson(expected), OJson(detok.value("prompt", ""))));

  // ... and the chat completion's prompt is those tokens: its usage counts them, and its first tokens'
  // logprobs are those of a plain completion of the same token ids (any difference in the prompt would move
  // them).
  OJson chat = request;
  chat.update(OJson{{"max_tokens", 4}, {"temperature", 0}, {"ignore_eos", true}, {"logprobs", true}});
  const Json cr = ok_post("/v1/chat/completions", chat.dump());
  const Json pr = ok_post("/v1/completions", Json{{"prompt", tok["tokens"]},
                                                  {"max_tokens", 4},
                                                  {"temperature", 0},
                                                  {"ignore_eos", true},
                                                  {"logprobs", 0}}
                                                 .dump());
  ASSERT_TRUE(cr.is_object() && pr.is_object());
  EXPECT_EQ(cr["usage"]["prompt_tokens"], tok["count"]);
  const Json& chat_lp = cr["choices"][0]["logprobs"]["content"];
  const Json& plain_lp = pr["choices"][0]["logprobs"]["token_logprobs"];
  ASSERT_EQ(chat_lp.size(), 4u);
  ASSERT_EQ(plain_lp.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(chat_lp[i]["logprob"], plain_lp[i]) << "token " << i;
}

TEST_F(ServerApiTools, ReasoningIsSplitFromTheRawText) {
  // Without tools only the reasoning parser runs: the raw completion of the same prompt, split at </think>.
  const OJson messages = OJson::parse(R"([{"role": "user", "content": "Who are you?"}])");
  const Json tok = ok_post("/tokenize", OJson{{"messages", messages}}.dump());
  const Json raw = ok_post(
      "/v1/completions",
      Json{{"prompt", tok["tokens"]}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}}.dump());
  const Json chat = ok_post(
      "/v1/chat/completions",
      OJson{{"messages", messages}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}}.dump());
  ASSERT_TRUE(raw.is_object() && chat.is_object());
  const std::string text = raw["choices"][0]["text"];
  const Json& m = chat["choices"][0]["message"];
  // The bundled model opens every answer with an (empty) think block, as it was trained on GLM's template.
  const size_t open = text.find("<think>"), close = text.find("</think>");
  ASSERT_TRUE(open != std::string::npos && close != std::string::npos && trim(text.substr(0, open)).empty())
      << "the model no longer starts with <think>: " << text;
  const std::string reasoning = trim(text.substr(open + 7, close - open - 7));
  std::string content = text.substr(close + 8);
  content.erase(0, content.find_first_not_of(" \t\r\n") == std::string::npos
                       ? content.size()
                       : content.find_first_not_of(" \t\r\n"));
  EXPECT_EQ(m["content"], content) << text;
  EXPECT_EQ(m.value("reasoning_content", ""), reasoning) << text;
}

TEST_F(ServerApiTools, ChatWithToolsStreamsWhatItReturns) {
  // n = 2 greedy choices with tools, each through its own parser: streamed with K = 3 speculation,
  // non-streamed, and non-streamed without speculation all give the same messages.
  for (const OJson& messages :
       {OJson::parse(R"([{"role": "user", "content": "What is the weather in Paris?"}])"),
        conversation_as_sent()}) {
    OJson body = {
        {"messages", messages}, {"tools", weather_tools()}, {"max_tokens", 40}, {"temperature", 0}, {"n", 2}};
    const Json whole = ok_post("/v1/chat/completions", body.dump());
    OJson plain = body;
    plain["speculative"] = false;
    const Json unspec = ok_post("/v1/chat/completions", plain.dump());
    Json usage;
    const std::map<int, Accumulated> streamed = stream_choices(*c_, body, &usage);
    ASSERT_TRUE(whole.is_object() && unspec.is_object());
    ASSERT_EQ(streamed.size(), 2u);
    EXPECT_GT(usage.value("spec", Json::object()).value("accepted_tokens", 0), 0)
        << "speculation delivered no multi-token steps: " << usage.dump();
    for (int i = 0; i < 2; ++i) {
      const Accumulated w = from_message(whole["choices"][i]);
      expect_same(streamed.at(i), w, "streamed choice " + std::to_string(i));
      expect_same(from_message(unspec["choices"][i]), w, "without speculation, choice " + std::to_string(i));
      EXPECT_EQ(w.content.find("<think>"), std::string::npos)
          << "reasoning left in the content: " << w.content;
      if (w.calls.empty()) {
        EXPECT_NE(w.finish_reason, "tool_calls");
      } else {
        EXPECT_TRUE(w.finish_reason == "tool_calls" || w.finish_reason == "length") << w.finish_reason;
      }
    }
    // Greedy choices agree; the ids of their calls (if any) do not.
    expect_same(from_message(whole["choices"][1]), from_message(whole["choices"][0]), "choice 1 vs 0");
    if (whole["choices"][0]["message"].contains("tool_calls")) {
      EXPECT_NE(whole["choices"][0]["message"]["tool_calls"][0]["id"],
                whole["choices"][1]["message"]["tool_calls"][0]["id"]);
    }

    // The raw completion of the same prompt, when it has no tool-call syntax, is reasoning + content (the
    // tool parser drops the whitespace at the content's ends).
    const Json tok = ok_post("/tokenize", OJson{{"messages", messages}, {"tools", weather_tools()}}.dump());
    const Json raw = ok_post("/v1/completions",
                             Json{{"prompt", tok["tokens"]}, {"max_tokens", 40}, {"temperature", 0}}.dump());
    const std::string text = raw["choices"][0]["text"];
    if (text.find("<tool_call>") == std::string::npos && text.find("</think>") != std::string::npos) {
      EXPECT_EQ(whole["choices"][0]["message"]["content"], trim(text.substr(text.find("</think>") + 8)))
          << text;
    }
  }
}

TEST_F(ServerApiTools, ToolChoiceNoneLeavesTheOutputUnparsedForTools) {
  // tool_choice "none": the template sees no tools (the prompt equals the one without tools) and the output
  // is not searched for calls.
  const OJson messages = OJson::parse(R"([{"role": "user", "content": "List the files."}])");
  const Json with_none = ok_post("/tokenize", OJson{{"messages", messages}}.dump());
  const Json chat = ok_post("/v1/chat/completions", OJson{{"messages", messages},
                                                          {"tools", weather_tools()},
                                                          {"tool_choice", "none"},
                                                          {"max_tokens", 12},
                                                          {"temperature", 0},
                                                          {"ignore_eos", true}}
                                                        .dump());
  const Json no_tools = ok_post(
      "/v1/chat/completions",
      OJson{{"messages", messages}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}}.dump());
  ASSERT_TRUE(chat.is_object() && no_tools.is_object());
  EXPECT_EQ(chat["usage"]["prompt_tokens"], with_none["count"]);
  EXPECT_EQ(chat["choices"][0]["message"], no_tools["choices"][0]["message"]);
  EXPECT_FALSE(chat["choices"][0]["message"].contains("tool_calls"));
}

TEST(ServerToolParserFlags, FlagsOverrideDetectionAndNoneTurnsParsingOff) {
  ServerProcess s({"--tool-call-parser", "hermes", "--reasoning-parser", "none"});
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  const Json info = get(*c, "/get_server_info").json();
  EXPECT_EQ(info["tool_call_parser"], "hermes");
  EXPECT_TRUE(info["reasoning_parser"].is_null()) << info.dump();
  EXPECT_NE(s.log().find("parsers     tool calls hermes (by flag), reasoning none (off by flag)"),
            std::string::npos)
      << s.log_tail();
  // No reasoning parser: the think block stays in the content, which is the raw completion text.
  const OJson messages = OJson::parse(R"([{"role": "user", "content": "Who are you?"}])");
  const Json tok = post(*c, "/tokenize", OJson{{"messages", messages}}.dump()).json();
  const Json raw =
      post(*c, "/v1/completions",
           Json{{"prompt", tok["tokens"]}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}})
          .json();
  const Json chat =
      post(*c, "/v1/chat/completions",
           OJson{{"messages", messages}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}}.dump())
          .json();
  EXPECT_EQ(chat["choices"][0]["message"]["content"], raw["choices"][0]["text"]);
  EXPECT_FALSE(chat["choices"][0]["message"].contains("reasoning_content"));

  const CliResult bad =
      run_tandem("serve --model " + test_model_dir() + " --tool-call-parser glm99 --port 0");
  EXPECT_NE(bad.code, 0) << bad.out;
  EXPECT_NE(bad.out.find("--tool-call-parser"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("glm99"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace tandem::test
