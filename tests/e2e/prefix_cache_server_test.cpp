// Prefix caching through the HTTP API: usage.prompt_tokens_details.cached_tokens (OpenAI), meta_info.cached_tokens
// (/generate), the tandem:prefix_cache_* metrics, SGLang's /flush_cache, and --disable-prefix-caching. Outputs of
// a repeated greedy request are compared with the first (uncached) run of the same request.
#include "e2e/server_process.h"

namespace tandem::test {
namespace {

// Long enough for several 16-token blocks of the bundled model's tokenizer.
const char* kPrompt =
    "The history of the lighthouse keeper's family goes back four generations. Each of them kept a diary of the "
    "ships that passed, the storms that came in from the west, and the lamps they trimmed every evening. Then";

Json completion(httplib::Client& c, const std::string& prompt) {
  const HttpResult r = post(c, "/v1/completions",
                            Json{{"prompt", prompt}, {"max_tokens", 8}, {"temperature", 0}, {"ignore_eos", true}});
  EXPECT_EQ(r.status, 200) << r.body;
  return r.status == 200 ? r.json() : Json();
}

int64_t cached(const Json& completion_reply) {
  return completion_reply["usage"]["prompt_tokens_details"]["cached_tokens"].get<int64_t>();
}

TEST(PrefixCacheServer, RepeatsHitTheCacheWithIdenticalOutputAndFlushForgetsIt) {
  ServerProcess s;
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  EXPECT_EQ(get(*c, "/get_server_info").json()["enable_prefix_caching"], true);
  const double hits_before = metric(get(*c, "/metrics").body, "tandem:prefix_cache_hits_total");
  const Json first = completion(*c, kPrompt);
  EXPECT_EQ(cached(first), 0);
  const Json again = completion(*c, kPrompt);
  const int64_t prompt_tokens = again["usage"]["prompt_tokens"].get<int64_t>();
  EXPECT_EQ(again["choices"][0]["text"], first["choices"][0]["text"]);
  EXPECT_EQ(cached(again), (prompt_tokens - 1) / 16 * 16) << "every full block but the one of the last token";
  EXPECT_GT(cached(again), 0);
  const std::string m = get(*c, "/metrics").body;
  EXPECT_GE(metric(m, "tandem:prefix_cache_hits_total") - hits_before, static_cast<double>(cached(again)));
  EXPECT_GE(metric(m, "tandem:prefix_cache_queries_total"), static_cast<double>(2 * prompt_tokens));

  // Streaming usage carries it too, and /generate's meta_info.
  const StreamResult st = post_stream(*c, "/v1/completions",
                                      Json{{"prompt", kPrompt}, {"max_tokens", 8}, {"temperature", 0},
                                           {"ignore_eos", true}, {"stream", true},
                                           {"stream_options", {{"include_usage", true}}}});
  ASSERT_GE(st.events.size(), 2u);
  const Json usage_event = Json::parse(st.events[st.events.size() - 2]);
  EXPECT_EQ(usage_event["usage"]["prompt_tokens_details"]["cached_tokens"], cached(again));
  const HttpResult g = post(*c, "/generate",
                            Json{{"text", kPrompt}, {"sampling_params", {{"max_new_tokens", 4}, {"temperature", 0}}}});
  ASSERT_EQ(g.status, 200) << g.body;
  EXPECT_GT(g.json()["meta_info"]["cached_tokens"].get<int64_t>(), 0);

  // /flush_cache: POST only; afterwards the same request computes everything again, with the same output.
  EXPECT_EQ(get(*c, "/flush_cache").status, 405);
  const HttpResult f = post(*c, "/flush_cache", std::string());
  EXPECT_EQ(f.status, 200) << f.body;
  const Json after = completion(*c, kPrompt);
  EXPECT_EQ(cached(after), 0);
  EXPECT_EQ(after["choices"][0]["text"], first["choices"][0]["text"]);
  EXPECT_NE(s.log().find("prefix cache on"), std::string::npos);
}

TEST(PrefixCacheServer, DisabledCachesNothingAndRefusesToFlush) {
  ServerProcess s({"--disable-prefix-caching"});
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  EXPECT_EQ(get(*c, "/get_server_info").json()["enable_prefix_caching"], false);
  completion(*c, kPrompt);
  EXPECT_EQ(cached(completion(*c, kPrompt)), 0);
  EXPECT_EQ(metric(get(*c, "/metrics").body, "tandem:prefix_cache_hits_total"), 0.0);
  expect_error(post(*c, "/flush_cache", std::string()), 400, "/flush_cache with the cache off");
  EXPECT_NE(s.log().find("prefix cache off"), std::string::npos);
}

}  // namespace
}  // namespace tandem::test
