// Soak: a few hundred requests from 8 client threads with random valid and invalid parameters and random
// client disconnects mid-stream, against a speculative server when the model has an MTP layer. The server
// must answer every request (valid -> 200 with a well-formed body, invalid -> 4xx with the OpenAI error
// shape, never 5xx), stay healthy, return KV usage to 0, and not grow its RSS without bound.
#include <random>
#include <thread>

#include "e2e/server_process.h"

namespace tandem::test {
namespace {

bool model_has_mtp() {
  std::ifstream f(test_model_dir() + "/config.json");
  return Json::parse(f).value("num_nextn_predict_layers", 0) > 0;
}

struct Stats {
  std::atomic<int> ok{0}, rejected{0}, disconnected{0};
};

class Client {
 public:
  Client(const ServerProcess& s, uint32_t seed, int64_t vocab, Stats& stats)
      : s_(s), c_(s.client()), rng_(seed), vocab_(vocab), stats_(stats) {}

  void one() {
    const int kind = static_cast<int>(rng_() % 100);
    if (kind < 35) completion(false);
    else if (kind < 50) chat(rng_() % 2 == 0);
    else if (kind < 60) completion(true);
    else if (kind < 72) disconnect();
    else if (kind < 92) invalid();
    else other();
  }

 private:
  double uni(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int pick(int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng_); }

  std::string words(int n) {
    static const char* w[] = {"alpha", "beta", "gamma", " ", "delta", "é", "中文", "the", "of", "\n", "stop", "🙂"};
    std::string s;
    for (int i = 0; i < n; ++i) s += w[rng_() % 12];
    return s;
  }

  Json sampling() {
    Json b = {{"max_tokens", pick(1, 24)}};
    if (rng_() % 2) b["temperature"] = rng_() % 3 == 0 ? 0.0 : uni(0.1, 1.5);
    if (rng_() % 3 == 0) b["top_p"] = uni(0.05, 1.0);
    if (rng_() % 3 == 0) b["top_k"] = pick(1, 50);
    if (rng_() % 4 == 0) b["min_p"] = uni(0.0, 0.3);
    if (rng_() % 4 == 0) b["seed"] = pick(0, 1000);
    if (rng_() % 4 == 0) b["stop"] = Json::array({words(1), words(2)});
    if (rng_() % 5 == 0) b["presence_penalty"] = uni(-1, 1);
    if (rng_() % 5 == 0) b["frequency_penalty"] = uni(-1, 1);
    if (rng_() % 5 == 0) b["repetition_penalty"] = uni(0.8, 1.3);
    if (rng_() % 2) b["ignore_eos"] = true;
    if (rng_() % 3 == 0) b["n"] = pick(1, 3);
    return b;
  }

  Json prompt() {
    if (rng_() % 2) return words(pick(1, 40));
    std::vector<int> ids;
    for (int i = pick(1, 100); i > 0; --i) ids.push_back(static_cast<int>(rng_() % vocab_));
    return ids;
  }

  void expect_ok(const HttpResult& r, const Json& body) {
    ASSERT_EQ(r.status, 200) << body.dump() << " -> " << r.body;
    const Json j = r.json();
    ASSERT_TRUE(j.contains("choices") && !j["choices"].empty()) << r.body;
    ++stats_.ok;
  }

  void completion(bool stream) {
    Json b = sampling();
    b["prompt"] = prompt();
    if (rng_() % 3 == 0) b["logprobs"] = pick(0, 5);
    if (!stream) return expect_ok(post(*c_, "/v1/completions", b), b);
    b["stream"] = true;
    if (rng_() % 2) b["stream_options"] = {{"include_usage", true}};
    const StreamResult s = post_stream(*c_, "/v1/completions", b);
    ASSERT_EQ(s.status, 200) << b.dump() << " -> " << s.raw.substr(0, 500);
    ASSERT_FALSE(s.events.empty());
    ASSERT_EQ(s.events.back(), "[DONE]") << b.dump();
    for (size_t i = 0; i + 1 < s.events.size(); ++i) ASSERT_FALSE(Json::parse(s.events[i]).contains("error"));
    ++stats_.ok;
  }

  void chat(bool stream) {
    Json b = sampling();
    b["messages"] = Json::array({{{"role", "user"}, {"content", words(pick(1, 20))}}});
    if (rng_() % 3 == 0) {
      b["logprobs"] = true;
      b["top_logprobs"] = pick(0, 5);
    }
    if (!stream) return expect_ok(post(*c_, "/v1/chat/completions", b), b);
    b["stream"] = true;
    const StreamResult s = post_stream(*c_, "/v1/chat/completions", b);
    ASSERT_EQ(s.status, 200) << b.dump() << " -> " << s.raw.substr(0, 500);
    ASSERT_EQ(s.events.back(), "[DONE]");
    ++stats_.ok;
  }

  void disconnect() {
    Json b = sampling();
    b["prompt"] = prompt();
    b["max_tokens"] = pick(40, 200);
    b["ignore_eos"] = true;
    b["stream"] = true;
    const std::string path = rng_() % 3 == 0 ? "/generate" : "/v1/completions";
    if (path == "/generate") {
      b = {{"text", words(pick(1, 20))}, {"stream", true},
           {"sampling_params", {{"max_new_tokens", pick(40, 200)}, {"ignore_eos", true}}}};
    }
    const StreamResult s = post_stream(*c_, path, b, /*stop_after=*/pick(1, 5));
    ASSERT_EQ(s.status, 200) << s.raw.substr(0, 300);
    c_ = s_.client();  // the old connection is gone
    ++stats_.disconnected;
  }

  void invalid() {
    static const std::vector<std::pair<std::string, std::string>> bad = {
        {"/v1/completions", "{\"prompt\": "},
        {"/v1/completions", "\x01\x02\xff garbage"},
        {"/v1/completions", "{\"prompt\": \"\xff\xfe\"}"},
        {"/v1/completions", "{\"prompt\": \"\\udc00\"}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 1e300}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": -9223372036854775808}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"max_tokens\": 18446744073709551615}"},
        {"/v1/completions", "{\"prompt\": [[[1]]]}"},
        {"/v1/completions", "{\"prompt\": [1, \"a\"]}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"temperature\": null, \"top_p\": -1}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"n\": 1000000}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"stop\": {\"a\": 1}}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"seed\": \"x\"}"},
        {"/v1/completions", "{\"prompt\": \"hi\", \"logit_bias\": {\"1\": 5}}"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 12}]}"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tool_choice\": \"required\"}"},
        {"/v1/chat/completions", "{\"messages\": null}"},
        {"/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": -1}"},
        {"/generate", "{\"text\": \"hi\", \"sampling_params\": {\"temperature\": -1}}"},
        {"/generate", "{\"input_ids\": [[1], \"x\"]}"},
        {"/generate", "{\"text\": [\"a\", \"b\"], \"stream\": true}"},
        {"/tokenize", "{\"prompt\": 5}"},
        {"/detokenize", "{\"tokens\": [-5]}"},
    };
    const auto& [path, body] = bad[rng_() % bad.size()];
    const HttpResult r = post(*c_, path, body);
    ASSERT_GE(r.status, 400) << path << " " << body << " -> " << r.body;
    ASSERT_LT(r.status, 500) << path << " " << body << " -> " << r.body;
    expect_error(r, r.status, path + " " + body);
    ++stats_.rejected;
  }

  void other() {
    switch (rng_() % 4) {
      case 0: ASSERT_EQ(get(*c_, "/metrics").status, 200); break;
      case 1: ASSERT_EQ(get(*c_, "/health").status, 200); break;
      case 2: {
        const HttpResult t = post(*c_, "/tokenize", Json{{"prompt", words(pick(1, 10))}});
        ASSERT_EQ(t.status, 200);
        ASSERT_EQ(post(*c_, "/detokenize", Json{{"tokens", t.json()["tokens"]}}).status, 200);
        break;
      }
      default: {
        const Json b = {{"text", words(pick(1, 10))}, {"sampling_params", {{"max_new_tokens", pick(1, 16)}}}};
        ASSERT_EQ(post(*c_, "/generate", b).status, 200) << b.dump();
      }
    }
    ++stats_.ok;
  }

  const ServerProcess& s_;
  std::unique_ptr<httplib::Client> c_;
  std::mt19937 rng_;
  int64_t vocab_;
  Stats& stats_;
};

TEST(Soak, RandomTrafficWithDisconnectsLeavesServerHealthy) {
  std::vector<std::string> args = {"--max-running-requests", "8"};
  if (model_has_mtp()) {
    args.push_back("--speculative-algorithm");
    args.push_back("NEXTN");
  }
  ServerProcess s(args);
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  const int64_t vocab = get(*c, "/get_model_info").json()["vocab_size"];
  Stats stats;
  constexpr int kThreads = 8, kWarmup = 8, kRequests = 40;  // per thread: 8 x (8 + 40) = 384 requests
  auto phase = [&](int n, uint32_t seed_base) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        Client cl(s, seed_base + t, vocab, stats);
        for (int i = 0; i < n && !::testing::Test::HasFatalFailure(); ++i) cl.one();
      });
    for (auto& th : threads) th.join();
  };
  auto wait_idle = [&] {
    for (int i = 0; i < 500; ++i) {
      const std::string m = get(*c, "/metrics").body;
      if (metric(m, "tandem:num_requests_running") == 0 && metric(m, "tandem:num_requests_waiting") == 0 &&
          metric(m, "tandem:kv_cache_usage_perc") == 0)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  };
  phase(kWarmup, 100);
  ASSERT_TRUE(wait_idle());
  const long rss_warm = s.rss_kb();
  phase(kRequests, 200);
  ASSERT_TRUE(s.alive()) << s.log_tail();
  EXPECT_TRUE(wait_idle()) << "KV usage did not return to 0";
  EXPECT_EQ(get(*c, "/health").status, 200);
  const long rss_end = s.rss_kb();
  EXPECT_LT(rss_end, rss_warm * 3 / 2) << "RSS grew from " << rss_warm << " KiB to " << rss_end << " KiB";
  EXPECT_GT(stats.ok.load(), 150);
  EXPECT_GT(stats.rejected.load(), 30);
  EXPECT_GT(stats.disconnected.load(), 15);
  std::cerr << "soak: ok " << stats.ok << ", rejected " << stats.rejected << ", disconnected " << stats.disconnected
            << ", RSS " << rss_warm << " -> " << rss_end << " KiB\n";
  // Nothing a client did reached the 500 path.
  EXPECT_EQ(s.log().find("internal error"), std::string::npos) << s.log_tail();
}

}  // namespace
}  // namespace tandem::test
