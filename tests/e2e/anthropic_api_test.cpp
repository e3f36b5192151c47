// End-to-end tests of the Anthropic Messages API (/v1/messages, /v1/messages/count_tokens) through the real
// `tandem serve` binary and the bundled model, on a server that speculates with a fixed K = 3 (several tokens
// per step reach the output parsers): Anthropic's error shape and HTTP status for every kind of bad request
// (the OpenAI routes keep theirs), the exact SSE framing (named events in Anthropic's order, block indexes),
// streamed = non-streamed, and the same prompt and greedy answer as /v1/chat/completions for the equivalent
// request. The official Anthropic TypeScript SDK drives the same routes in anthropic_node_test.cpp.
#include <functional>
#include <string>
#include <vector>

#include "e2e/server_process.h"

namespace tandem::test {
namespace {

using OJson = nlohmann::ordered_json;

class AnthropicApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess({"--speculative-algorithm", "NEXTN", "--speculative-policy", "fixed",
                                 "--speculative-num-steps", "3", "--max-body-bytes", "65536"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ && server_->alive()) << "server not running";
    c_ = server_->client();
  }
  HttpResult messages(const OJson& body) { return post(*c_, "/v1/messages", body.dump()); }
  Json ok(const std::string& path, const OJson& body) {
    const HttpResult r = post(*c_, path, body.dump());
    EXPECT_EQ(r.status, 200) << path << " " << body.dump() << " -> " << r.body;
    return r.status == 200 ? r.json() : Json();
  }

  static ServerProcess* server_;
  std::unique_ptr<httplib::Client> c_;
};
ServerProcess* AnthropicApi::server_ = nullptr;

OJson body(const std::string& text = "Who are you?", int max_tokens = 12) {
  return {{"model", "tandem-tiny"},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"messages", OJson::array({{{"role", "user"}, {"content", text}}})}};
}

/// Asserts Anthropic's error body {"type": "error", "error": {"type", "message"}} and the status.
void expect_anthropic_error(const HttpResult& r, int status, const std::string& type,
                            const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  const Json j = Json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << what << ": the error body is not JSON: " << r.body;
  EXPECT_EQ(j.size(), 2u) << what << ": " << r.body;
  EXPECT_EQ(j.value("type", ""), "error") << what << ": " << r.body;
  ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << what << ": " << r.body;
  EXPECT_EQ(j["error"].size(), 2u) << what << ": " << r.body;
  EXPECT_EQ(j["error"].value("type", ""), type) << what << ": " << r.body;
  EXPECT_TRUE(j["error"].contains("message") && j["error"]["message"].is_string() &&
              !j["error"]["message"].get<std::string>().empty())
      << what << ": " << r.body;
}

TEST_F(AnthropicApi, BadRequestsAreAnthropicErrorsWithTheirStatus) {
  struct Bad {
    std::string what;
    std::string body;  // sent as is
    int status = 400;
    std::string type = "invalid_request_error";
  };
  auto with = [](const std::function<void(OJson&)>& edit) {
    OJson b = body();
    edit(b);
    return b.dump();
  };
  const OJson tool = {{"name", "get_weather"}, {"input_schema", {{"type", "object"}}}};
  const std::vector<Bad> cases = {
      {"malformed JSON", R"({"model": "tandem-tiny", "max_tokens": )"},
      {"a body that is not an object", R"([1, 2])"},
      {"max_tokens missing", with([](OJson& b) { b.erase("max_tokens"); })},
      {"max_tokens 0", with([](OJson& b) { b["max_tokens"] = 0; })},
      {"max_tokens a string", with([](OJson& b) { b["max_tokens"] = "12"; })},
      {"max_tokens beyond the context", with([](OJson& b) { b["max_tokens"] = 100000000; })},
      {"an unknown field", with([](OJson& b) { b["frequency_penalty"] = 1; })},
      {"temperature above 1", with([](OJson& b) { b["temperature"] = 1.5; })},
      {"stop_sequences a string", with([](OJson& b) { b["stop_sequences"] = "\n"; })},
      {"messages missing", with([](OJson& b) { b.erase("messages"); })},
      {"an image block", with([](OJson& b) {
         b["messages"][0]["content"] = OJson::array({{{"type", "image"}, {"source", {}}}});
       })},
      {"a block without type", with([](OJson& b) {
         b["messages"][0]["content"] = OJson::array({{{"text", "x"}}});
       })},
      {"a tool_result without a matching tool_use", with([](OJson& b) {
         b["messages"][0]["content"] =
             OJson::array({{{"type", "tool_result"}, {"tool_use_id", "toolu_1"}, {"content", "x"}}});
       })},
      {"tool_choice any", with([&](OJson& b) {
         b["tools"] = OJson::array({tool});
         b["tool_choice"] = {{"type", "any"}};
       })},
      {"tool_choice tool", with([&](OJson& b) {
         b["tools"] = OJson::array({tool});
         b["tool_choice"] = {{"type", "tool"}, {"name", "get_weather"}};
       })},
      {"an unknown tool_choice", with([&](OJson& b) {
         b["tools"] = OJson::array({tool});
         b["tool_choice"] = {{"type", "required"}};
       })},
      {"a malformed tool", with([](OJson& b) {
         b["tools"] = OJson::array({{{"name", "f"}}});
       })},
      {"thinking enabled without budget", with([](OJson& b) {
         b["thinking"] = {{"type", "enabled"}};
       })},
      {"a bad request that asked to stream", with([](OJson& b) {
         b["stream"] = true;
         b["temperature"] = -1;
       })},
      {"an unknown model", with([](OJson& b) { b["model"] = "claude-sonnet-4-5"; }), 404, "not_found_error"},
  };
  for (const Bad& b : cases) {
    const HttpResult r = post(*c_, "/v1/messages", b.body);
    expect_anthropic_error(r, b.status, b.type, b.what);
  }
  // count_tokens answers in the same shape.
  expect_anthropic_error(post(*c_, "/v1/messages/count_tokens", std::string(R"({"model": "tandem-tiny"})")),
                         400, "invalid_request_error", "count_tokens without messages");
  expect_anthropic_error(
      post(*c_, "/v1/messages/count_tokens", std::string(R"({"model": "x", "messages": []})")), 404,
      "not_found_error", "count_tokens for an unknown model");
  expect_anthropic_error(post(*c_, "/v1/messages/count_tokens", with([](OJson&) {})), 400,
                         "invalid_request_error", "count_tokens with max_tokens (not one of its fields)");
  // Statuses the transport produces, on the Anthropic paths.
  expect_anthropic_error(get(*c_, "/v1/messages"), 405, "invalid_request_error", "GET /v1/messages");
  expect_anthropic_error(post(*c_, "/v1/messages/batches", std::string("{}")), 404, "not_found_error",
                         "an unknown path");
  // The OpenAI routes keep OpenAI's shape.
  const HttpResult openai =
      post(*c_, "/v1/chat/completions", std::string(R"({"messages": [], "max_tokens": 2})"));
  const Json e = expect_error(openai, 400, "OpenAI route");
  EXPECT_FALSE(openai.json().contains("type")) << openai.body;
  EXPECT_EQ(e.value("param", ""), "messages");
  expect_error(post(*c_, "/v1/chat/completions/x", std::string("{}")), 404, "OpenAI path");
  // Last: the server may close the connection after refusing a body.
  expect_anthropic_error(post(*c_, "/v1/messages", std::string(70000, ' ')), 413, "request_too_large",
                         "a body over --max-body-bytes");
}

struct SseEvent {
  std::string name;
  Json data;
};

/// Every event of an Anthropic stream, checking the framing: `event: <name>` then `data: <json>`, the name
/// repeating data.type.
std::vector<SseEvent> anthropic_events(const std::string& raw) {
  std::vector<SseEvent> events;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t end = raw.find("\n\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "an unterminated event: " << raw.substr(pos);
      break;
    }
    const std::string block = raw.substr(pos, end - pos);
    pos = end + 2;
    const size_t nl = block.find('\n');
    EXPECT_TRUE(block.rfind("event: ", 0) == 0 && nl != std::string::npos)
        << "an event without a name: " << block;
    if (nl == std::string::npos) continue;
    SseEvent e{.name = block.substr(7, nl - 7)};
    const std::string data = block.substr(nl + 1);
    EXPECT_EQ(data.rfind("data: ", 0), 0u) << block;
    e.data = Json::parse(data.substr(6), nullptr, false);
    EXPECT_TRUE(e.data.is_object()) << block;
    EXPECT_EQ(e.data.value("type", ""), e.name) << block;
    events.push_back(std::move(e));
  }
  return events;
}

/// The message a client builds from the events, checking Anthropic's order: message_start, then per block
/// content_block_start / deltas / content_block_stop at indexes 0, 1, ..., then message_delta and
/// message_stop.
Json accumulate(const std::vector<SseEvent>& events) {
  EXPECT_GE(events.size(), 3u);
  if (events.size() < 3) return Json();
  EXPECT_EQ(events.front().name, "message_start");
  Json m = events.front().data.at("message");
  EXPECT_EQ(m.at("content"), Json::array());
  EXPECT_TRUE(m.at("stop_reason").is_null());
  EXPECT_EQ(m.at("usage").at("output_tokens"), 0);
  std::vector<std::string> partial;
  bool open = false;
  size_t i = 1;
  for (; i < events.size() && events[i].name.rfind("content_block", 0) == 0; ++i) {
    const Json& d = events[i].data;
    const size_t index = d.at("index");
    if (events[i].name == "content_block_start") {
      EXPECT_FALSE(open) << d;
      EXPECT_EQ(index, m["content"].size()) << d;
      m["content"].push_back(d.at("content_block"));
      partial.emplace_back();
      open = true;
      continue;
    }
    EXPECT_TRUE(open && index + 1 == m["content"].size()) << d;
    if (!open || index + 1 != m["content"].size()) break;
    Json& block = m["content"].back();
    if (events[i].name == "content_block_stop") {
      open = false;
      if (block["type"] == "tool_use" && !partial.back().empty())
        block["input"] = Json::parse(partial.back());
      continue;
    }
    const Json& delta = d.at("delta");
    if (delta["type"] == "text_delta")
      block["text"] = block["text"].get<std::string>() + delta["text"].get<std::string>();
    if (delta["type"] == "thinking_delta")
      block["thinking"] = block["thinking"].get<std::string>() + delta["thinking"].get<std::string>();
    if (delta["type"] == "input_json_delta") partial.back() += delta["partial_json"].get<std::string>();
  }
  EXPECT_FALSE(open);
  EXPECT_EQ(events.size(), i + 2) << "after the blocks: message_delta and message_stop only";
  if (events.size() != i + 2) return m;
  EXPECT_EQ(events[i].name, "message_delta");
  EXPECT_EQ(events[i + 1].name, "message_stop");
  const Json& md = events[i].data;
  m["stop_reason"] = md.at("delta").at("stop_reason");
  m["stop_sequence"] = md.at("delta").at("stop_sequence");
  for (const auto& [k, v] : md.at("usage").items()) m["usage"][k] = v;
  return m;
}

/// A message without what differs between two requests of the same conversation: the id, and the usage (the
/// second request reads the first's prompt from the prefix cache; drafts may differ).
Json without_id(Json m) {
  m.erase("id");
  m.erase("usage");
  return m;
}

TEST_F(AnthropicApi, StreamedMessageIsTheNonStreamedMessage) {
  for (const std::string& prompt : {std::string("Who are you?"), std::string("Tell me about the beginning."),
                                    std::string("And God said")}) {
    SCOPED_TRACE(prompt);
    OJson b = body(prompt, 24);
    // The system prompt starts differently for each prompt: a fixed-K server takes a cached block only with
    // the draft KV of the token that followed it (docs/architecture.md, "Prefix caching").
    b["system"] = prompt.substr(0, 8) + ": you are tandem-tiny.";
    const Json whole = ok("/v1/messages", b);
    ASSERT_TRUE(whole.is_object());
    EXPECT_TRUE(whole.at("id").get<std::string>().rfind("msg_", 0) == 0) << whole;
    EXPECT_EQ(whole.at("type"), "message");
    EXPECT_EQ(whole.at("role"), "assistant");
    EXPECT_EQ(whole.at("model"), "tandem-tiny");
    EXPECT_TRUE(whole.at("stop_sequence").is_null());
    const Json& u = whole.at("usage");
    // max_tokens exactly when the limit was reached, else the model ended its turn.
    EXPECT_EQ(whole.at("stop_reason"), u.at("output_tokens") == 24 ? "max_tokens" : "end_turn") << whole;
    EXPECT_GT(u.at("output_tokens").get<int>(), 0);
    EXPECT_EQ(u.at("cache_creation_input_tokens"), 0);
    EXPECT_EQ(u.at("spec").at("draft_tokens").get<int>() > 0, true) << "the server speculates: " << u;
    b["stream"] = true;
    const StreamResult s = post_stream_text(*c_, "/v1/messages", b.dump());
    ASSERT_EQ(s.status, 200) << s.raw;
    EXPECT_EQ(s.raw.find("[DONE]"), std::string::npos);
    const Json streamed = accumulate(anthropic_events(s.raw));
    EXPECT_EQ(without_id(streamed), without_id(whole)) << s.raw;
    EXPECT_EQ(streamed.at("usage").at("output_tokens"), u.at("output_tokens"));
    // The prompt counts as count_tokens counts it, prefix-cache hits included: input_tokens are the tokens
    // not read from the cache. The blocks of a finished request enter the cache as the engine retires it,
    // which may be just after its response: a later request of the same prompt hits them.
    OJson count = b;
    for (const char* k : {"max_tokens", "temperature", "stream"}) count.erase(k);
    const int64_t n = ok("/v1/messages/count_tokens", count).at("input_tokens");
    auto prompt_tokens = [](const Json& usage) {
      return usage.at("input_tokens").get<int64_t>() + usage.at("cache_read_input_tokens").get<int64_t>();
    };
    EXPECT_EQ(prompt_tokens(whole.at("usage")), n);
    EXPECT_EQ(prompt_tokens(streamed.at("usage")), n);
    b.erase("stream");
    int64_t hit = 0;
    for (int attempt = 0; attempt < 20 && hit == 0; ++attempt) {
      if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const Json again = ok("/v1/messages", b);
      EXPECT_EQ(prompt_tokens(again.at("usage")), n);
      hit = again.at("usage").at("cache_read_input_tokens");
    }
    EXPECT_GT(hit, 0) << "the prompt's blocks never came from the prefix cache";
    EXPECT_EQ(hit % 16, 0) << "whole blocks of 16 tokens";
  }
}

TEST_F(AnthropicApi, StopSequencesAndTheirStopReason) {
  const Json free_run = ok("/v1/messages", body("Who are you?", 24));
  const std::string text = free_run.at("content").at(0).at("text");
  ASSERT_GT(text.size(), 12u) << free_run;
  const std::string stop = text.substr(8, 3);
  const std::string expected = text.substr(0, text.find(stop));
  OJson b = body("Who are you?", 24);
  b["stop_sequences"] = OJson::array({"never appears", stop});
  const Json whole = ok("/v1/messages", b);
  EXPECT_EQ(whole.at("stop_reason"), "stop_sequence") << whole;
  EXPECT_EQ(whole.at("stop_sequence"), stop) << whole;
  EXPECT_EQ(whole.at("content").at(0).at("text"), expected) << whole;
  b["stream"] = true;
  const Json streamed = accumulate(anthropic_events(post_stream_text(*c_, "/v1/messages", b.dump()).raw));
  EXPECT_EQ(without_id(streamed), without_id(whole));
}

TEST_F(AnthropicApi, SameAnswerAsTheChatRouteForTheEquivalentRequest) {
  // A tool round trip with thinking on, as both APIs spell it. The model was not trained to call tools: what
  // it says is compared, whatever it is.
  const OJson anthropic = OJson::parse(R"({"model": "tandem-tiny", "max_tokens": 20, "temperature": 0,
    "system": "You are a weather bot.",
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "tools": [{"name": "get_weather", "description": "Current weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}],
    "messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": [{"type": "thinking", "thinking": "Call the tool.", "signature": ""},
                                        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"days": 1, "city": "Paris"}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny, 21 C"},
                                   {"type": "text", "text": "And in Oslo?"}]}]})");
  const OJson openai = OJson::parse(R"({"model": "tandem-tiny", "max_tokens": 20, "temperature": 0,
    "chat_template_kwargs": {"enable_thinking": true},
    "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Current weather",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}}],
    "messages": [
      {"role": "system", "content": "You are a weather bot."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "reasoning_content": "Call the tool.",
       "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"days\": 1, \"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny, 21 C"},
      {"role": "user", "content": "And in Oslo?"}]})");
  // The same prompt: count_tokens against /tokenize of the chat messages (the chat route's rendering).
  OJson count = anthropic, tokenize = openai;
  for (const char* k : {"max_tokens", "temperature"}) {
    count.erase(k);
    tokenize.erase(k);
  }
  const Json n = ok("/v1/messages/count_tokens", count);
  const Json t = ok("/tokenize", tokenize);
  EXPECT_EQ(n.at("input_tokens"), t.at("count"));
  // The thinking switch reaches the template (GLM-4.5's adds /nothink when it is off).
  count["thinking"] = {{"type", "disabled"}};
  EXPECT_NE(ok("/v1/messages/count_tokens", count).at("input_tokens"), n.at("input_tokens"));

  const Json a = ok("/v1/messages", anthropic);
  const Json o = ok("/v1/chat/completions", openai);
  ASSERT_TRUE(a.is_object() && o.is_object());
  const Json& om = o.at("choices").at(0).at("message");
  std::string text, thinking;
  Json calls = Json::array();
  for (const Json& blk : a.at("content")) {
    if (blk["type"] == "text") text += blk["text"].get<std::string>();
    if (blk["type"] == "thinking") thinking += blk["thinking"].get<std::string>();
    if (blk["type"] == "tool_use") calls.push_back({{"name", blk["name"]}, {"input", blk["input"]}});
  }
  EXPECT_EQ(text, om["content"].is_null() ? "" : om["content"].get<std::string>()) << a << "\n" << o;
  EXPECT_EQ(thinking, om.value("reasoning_content", "")) << a << "\n" << o;
  Json ocalls = Json::array();
  for (const Json& c : om.value("tool_calls", Json::array()))
    ocalls.push_back({{"name", c["function"]["name"]},
                      {"input", Json::parse(c["function"]["arguments"].get<std::string>())}});
  EXPECT_EQ(calls, ocalls);
  EXPECT_EQ(a.at("usage").at("output_tokens"), o.at("usage").at("completion_tokens"));
  const std::string finish = o.at("choices").at(0).at("finish_reason");
  EXPECT_EQ(a.at("stop_reason"), finish == "length"       ? "max_tokens"
                                 : finish == "tool_calls" ? "tool_use"
                                                          : "end_turn");

  // tool_choice none: the tools leave the prompt, as with no tools on the chat route.
  OJson none = count;
  none.erase("thinking");
  none["tool_choice"] = {{"type", "none"}};
  OJson chat_none = tokenize;
  chat_none.erase("chat_template_kwargs");
  chat_none.erase("tools");
  EXPECT_EQ(ok("/v1/messages/count_tokens", none).at("input_tokens"), ok("/tokenize", chat_none).at("count"));
}

}  // namespace
}  // namespace tandem::test
