// Unit tests of the server's text and wire-format pieces, each against an independent naive reference:
// SSE parsing, Prometheus histogram rendering, request field validation.
#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "server/errors.h"
#include "server/json_fields.h"
#include "server/metrics.h"
#include "server/sse.h"

namespace tandem::server {
namespace {

TEST(SseParser, SplitsEventsAcrossArbitraryChunks) {
  const std::string stream =
      "data: {\"a\":1}\n\n: a comment\n\ndata: first\ndata: second\n\nevent: x\r\ndata: crlf\r\n\r\ndata: [DONE]\n\n";
  const std::vector<std::string> want = {"{\"a\":1}", "first\nsecond", "crlf", "[DONE]"};
  for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
    SseParser p;
    std::vector<std::string> got;
    for (size_t i = 0; i < stream.size(); i += chunk)
      for (auto& e : p.push(std::string_view(stream).substr(i, chunk))) got.push_back(e);
    ASSERT_EQ(got, want) << "chunk " << chunk;
    EXPECT_EQ(p.pending(), 0u);
  }
}

TEST(SseEvent, IsOneDataLine) {
  const std::string e = sse_event({{"text", "two\nlines"}});
  EXPECT_EQ(e, "data: {\"text\":\"two\\nlines\"}\n\n");
  // Invalid UTF-8 (half a character) is replaced, not thrown.
  EXPECT_NO_THROW(sse_event({{"text", std::string("\xe4\xbd")}}));
}

TEST(Histogram, CumulativeBucketsMatchNaiveCount) {
  const std::vector<double> bounds = {0.1, 0.5, 1.0};
  Histogram h(bounds);
  const std::vector<double> values = {0.05, 0.1, 0.2, 0.5, 0.7, 1.0, 3.0, 0.0};
  for (double v : values) h.observe(v);
  std::string out;
  h.render(out, "x", "help");
  for (double b : bounds) {
    int n = 0;
    for (double v : values) n += v <= b;
    std::ostringstream want;
    want << "x_bucket{le=\"" << b << "\"} " << n << "\n";
    EXPECT_NE(out.find(want.str()), std::string::npos) << out;
  }
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 8\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count 8\n"), std::string::npos) << out;
  EXPECT_NE(out.find("# TYPE x histogram\n"), std::string::npos) << out;
}

TEST(Metrics, AcceptLengthIsCompletionTokensPerVerifyStep) {
  engine::EngineCounters c;
  EXPECT_EQ(mean_accept_length(c), 0.0);
  c.spec_num_drafts = 4;
  c.spec_num_accepted_tokens = 6;
  c.spec_completion_tokens = 10;  // SGLang's spec_accept_length: 10 tokens over 4 verify steps
  EXPECT_DOUBLE_EQ(mean_accept_length(c), 2.5);
  Metrics m;
  engine::EngineSnapshot s;
  s.kv_blocks_used = 3;
  s.kv_blocks_total = 12;
  s.counters = c;
  s.counters.spec_accepted_per_pos = {4, 2};
  const std::string text = m.render(s, true);
  EXPECT_NE(text.find("tandem:kv_cache_usage_perc 0.25\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tandem:spec_accept_length 2.5\n"), std::string::npos) << text;
  EXPECT_NE(text.find("tandem:spec_decode_num_accepted_tokens_per_pos_total{position=\"1\"} 2\n"), std::string::npos);
}

int status_of(const std::function<void()>& f, std::string* param = nullptr, std::string* code = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (param) *param = e.param();
    if (code) *code = e.code();
    return e.status();
  }
  return 0;
}

TEST(JsonFields, RejectsWrongTypesAndUnknownFieldsNamingThem) {
  const auto j = nlohmann::json::parse(R"({"temperature": "hot", "n": 2.5, "stream": 1, "ok": 3.0,
                                           "stop": ["a", 3], "ids": [1, -1]})");
  std::string param, code;
  EXPECT_EQ(status_of([&] { JsonFields(j, "", {"temperature"}); }, &param, &code), 400);
  EXPECT_EQ(code, "unknown_parameter");
  const JsonFields f(j, "", {"temperature", "n", "stream", "ok", "stop", "ids"});
  EXPECT_EQ(status_of([&] { (void)f.number("temperature"); }, &param, &code), 400);
  EXPECT_EQ(param, "temperature");
  EXPECT_EQ(code, "invalid_type");
  EXPECT_EQ(status_of([&] { (void)f.integer("n"); }, &param), 400);
  EXPECT_EQ(param, "n");
  EXPECT_EQ(status_of([&] { (void)f.boolean("stream"); }, &param), 400);
  EXPECT_EQ(f.integer("ok"), 3);
  EXPECT_EQ(status_of([&] { (void)f.string_or_list("stop"); }), 400);
  EXPECT_EQ(status_of([&] { (void)f.int_list("ids", 0, 10); }, &param), 400);
  EXPECT_EQ(param, "ids");
  EXPECT_EQ(f.number("absent"), std::nullopt);
  EXPECT_EQ(status_of([] { parse_body("{not json"); }, nullptr, nullptr), 400);
  const auto nested = nlohmann::json::parse(R"({"include_usage": "yes"})");
  const JsonFields so(nested, "stream_options.", {"include_usage"});
  EXPECT_EQ(status_of([&] { (void)so.boolean("include_usage"); }, &param), 400);
  EXPECT_EQ(param, "stream_options.include_usage");
}

TEST(ApiError, HasOpenAiShape) {
  const auto j = ApiError(404, "no such model", "model", "model_not_found").to_json();
  EXPECT_EQ(j["error"]["message"], "no such model");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  const auto k = ApiError(503, "loading").to_json();
  EXPECT_EQ(k["error"]["type"], "server_error");
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

}  // namespace
}  // namespace tandem::server
