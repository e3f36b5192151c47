// Batch invariance over HTTP: 32 concurrent requests (mixed prompt lengths, completions / chat / native,
// some streaming, some with stop strings) at temperature 0 each return exactly what the same request returns alone — on a plain
// server whose small KV cache forces queueing and preemption, and on a speculative (NEXTN) server, whose
// output at temperature 0 must equal the plain one token for token.
#include <iostream>
#include <random>
#include <thread>

#include "common/prerequisite.h"
#include "e2e/server_process.h"

namespace tandem::test {
namespace {

struct Request {
  std::string path;
  Json body;
  bool stream = false;
};

/// What a request produced, normalized across endpoints: text, token count / ids, finish reason.
struct Outcome {
  int status = 0;
  std::string text;
  Json ids;  // output ids where the endpoint gives them (/generate), else null
  int64_t completion_tokens = -1;
  std::string finish;
  bool operator==(const Outcome& o) const {
    return status == o.status && text == o.text && ids == o.ids && completion_tokens == o.completion_tokens &&
           finish == o.finish;
  }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << "{status " << o.status << ", tokens " << o.completion_tokens << ", finish " << o.finish << ", ids "
            << o.ids.dump() << ", text " << Json(o.text).dump() << "}";
}

Outcome run(httplib::Client& c, const Request& r) {
  Outcome o;
  if (!r.stream) {
    const HttpResult h = post(c, r.path, r.body);
    o.status = h.status;
    if (h.status != 200) {
      o.text = h.body;
      return o;
    }
    const Json j = h.json();
    if (r.path == "/generate") {
      o.text = j["text"];
      o.ids = j["output_ids"];
      o.completion_tokens = j["meta_info"]["completion_tokens"];
      o.finish = j["meta_info"]["finish_reason"]["type"];
    } else {
      const Json& ch = j["choices"][0];
      o.text = r.path == "/v1/completions" ? ch["text"].get<std::string>()
                                           : ch["message"]["content"].get<std::string>();
      o.completion_tokens = j["usage"]["completion_tokens"];
      o.finish = ch["finish_reason"];
    }
    return o;
  }
  Json body = r.body;
  body["stream"] = true;
  if (r.path != "/generate") body["stream_options"] = {{"include_usage", true}};
  const StreamResult s = post_stream(c, r.path, body);
  o.status = s.status;
  for (const auto& e : s.events) {
    if (e == "[DONE]") continue;
    const Json j = Json::parse(e);
    if (j.contains("error")) {  // an error event inside the stream
      o.status = -1;
      o.text = j.dump();
      return o;
    }
    if (r.path == "/generate") {
      o.text = j["text"];
      o.ids = j["output_ids"];
      o.completion_tokens = j["meta_info"]["completion_tokens"];
      if (!j["meta_info"]["finish_reason"].is_null()) o.finish = j["meta_info"]["finish_reason"]["type"];
      continue;
    }
    if (j["choices"].empty()) {
      o.completion_tokens = j["usage"]["completion_tokens"];
      continue;
    }
    const Json& ch = j["choices"][0];
    if (r.path == "/v1/completions") o.text += ch["text"].get<std::string>();
    else if (ch["delta"].contains("content")) o.text += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) o.finish = ch["finish_reason"];
  }
  return o;
}

std::vector<Request> make_requests(int64_t vocab, int64_t max_model_len) {
  std::mt19937 rng(2024);
  const char* words[] = {"the", "fox", "river", "quietly", "jumps", "over", "a", "lazy", "dog", "and", "then",
                         "sleeps", "under", "stars", "while", "wind", "moves", "through", "old", "trees"};
  auto text = [&](int n_words) {
    std::string s;
    for (int i = 0; i < n_words; ++i) s += (i ? " " : "") + std::string(words[rng() % 20]);
    return s;
  };
  const int64_t max_prompt = std::min<int64_t>(600, max_model_len / 2);  // fits the tight server's 700 too
  std::vector<Request> reqs;
  for (int i = 0; i < 32; ++i) {
    const int max_tokens = 4 + static_cast<int>(rng() % 40);
    const bool ignore_eos = i % 2 == 0;
    Request r;
    r.stream = i % 3 == 1;
    switch (i % 4) {
      case 0: {  // random token ids, lengths from 1 to max_prompt (long ones take several prefill chunks)
        const int64_t len = i < 4 ? max_prompt - 8 * i : 1 + static_cast<int64_t>(rng() % 80);
        std::vector<int> ids;
        for (int64_t k = 0; k < len; ++k) ids.push_back(static_cast<int>(rng() % vocab));
        r.path = "/v1/completions";
        r.body = {{"prompt", ids}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", ignore_eos}};
        break;
      }
      case 1:
        r.path = "/v1/completions";
        r.body = {{"prompt", text(1 + static_cast<int>(rng() % 60))}, {"max_tokens", max_tokens}, {"temperature", 0},
                  {"ignore_eos", ignore_eos}};
        break;
      case 2:
        r.path = "/v1/chat/completions";
        r.body = {{"messages", Json::array({{{"role", "user"}, {"content", text(2 + static_cast<int>(rng() % 30))}}})},
                  {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", ignore_eos}};
        break;
      default:
        r.path = "/generate";
        r.body = {{"text", text(1 + static_cast<int>(rng() % 40))},
                  {"sampling_params", {{"max_new_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", ignore_eos}}}};
        break;
    }
    // Stop strings on some requests: with speculation a stop can complete in the middle of a verify step,
    // and the tokens after it must be dropped exactly as the plain server never generates them.
    if (i % 5 == 0) {
      const Json stop = Json::array({" the", " of", "LORD", ", and", "."});
      if (r.path == "/generate") r.body["sampling_params"]["stop"] = stop;
      else r.body["stop"] = stop;
    }
    reqs.push_back(std::move(r));
  }
  return reqs;
}

std::vector<Outcome> run_concurrently(const ServerProcess& s, const std::vector<Request>& reqs) {
  std::vector<Outcome> out(reqs.size());
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (size_t i = 0; i < reqs.size(); ++i)
    threads.emplace_back([&, i] {
      auto c = s.client();
      ++ready;
      while (ready < static_cast<int>(reqs.size())) std::this_thread::yield();  // release all at once
      out[i] = run(*c, reqs[i]);
    });
  for (auto& t : threads) t.join();
  return out;
}

bool model_has_mtp() {
  std::ifstream f(test_model_dir() + "/config.json");
  const Json cfg = Json::parse(f);
  return cfg.value("num_nextn_predict_layers", 0) > 0;
}

TEST(BatchInvariance, ConcurrentEqualsAloneWithAndWithoutSpeculation) {
  std::vector<Request> reqs;
  std::vector<Outcome> alone;
  {
    // 16 running slots for 32 requests: half of them queue.
    ServerProcess plain({"--max-running-requests", "16"});
    ASSERT_TRUE(plain.alive());
    auto c = plain.client();
    const Json info = get(*c, "/get_model_info").json();
    reqs = make_requests(info["vocab_size"], info["max_model_len"]);
    for (const auto& r : reqs) {
      alone.push_back(run(*c, r));
      ASSERT_EQ(alone.back().status, 200) << r.body.dump() << " " << alone.back().text;
      ASSERT_GT(alone.back().completion_tokens, 0);
    }
    int stopped_by_string = 0;
    // Requests 0, 10, 20, 30 ignore eos, so "stop" there means a stop string matched.
    for (size_t i = 0; i < reqs.size(); i += 10) stopped_by_string += alone[i].finish == "stop";
    EXPECT_GE(stopped_by_string, 2) << "the stop strings never matched: the test would not cover them";
    const std::vector<Outcome> together = run_concurrently(plain, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(together[i], alone[i]) << "request " << i << " " << reqs[i].path << " " << reqs[i].body.dump();
  }
  {
    // A KV cache of about one 700-token context for 16 running requests: decode outgrows it, so requests are
    // preempted and recomputed, which must not change any output.
    ServerProcess tight({"--max-running-requests", "16", "--max-model-len", "700", "--kv-cache-tokens", "720"});
    ASSERT_TRUE(tight.alive());
    const std::vector<Outcome> together = run_concurrently(tight, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(together[i], alone[i]) << "tight KV, request " << i << " " << reqs[i].body.dump();
    const std::string metrics = get(*tight.client(), "/metrics").body;
    // Whether requests overlap enough to preempt depends on timing here; Preemption.RecomputeUnderKvPressure
    // (tests/spec/spec_decode_test.cpp) forces preemption deterministically at the engine level.
    std::cout << "tight KV cache: " << metric(metrics, "tandem:num_preemptions_total") << " preemptions\n";
  }
  TANDEM_REQUIRE_OR_SKIP(model_has_mtp(), test_model_dir()
                                              << " has no MTP layer, which the speculative half needs "
                                                 "(unset TANDEM_TEST_MODEL to use models/tandem-tiny)");
  {
    // A fixed K, so every request verifies drafts (the adaptive policy may rightly pause on a CPU; the engine-level
    // tests force K schedules, and the soak test runs the adaptive default).
    ServerProcess spec({"--max-running-requests", "16", "--speculative-algorithm", "NEXTN", "--speculative-policy", "fixed"});
    ASSERT_TRUE(spec.alive());
    const std::vector<Outcome> together = run_concurrently(spec, reqs);
    for (size_t i = 0; i < reqs.size(); ++i)
      EXPECT_EQ(together[i], alone[i]) << "speculative, request " << i << " " << reqs[i].body.dump();
    const std::string metrics = get(*spec.client(), "/metrics").body;
    EXPECT_GT(metric(metrics, "tandem:spec_decode_num_drafts_total"), 0) << "speculation never ran";

    // A request may opt out ("speculative": false, also under sampling_params in /generate): no verify steps,
    // the same greedy text.
    const Json body = {{"prompt", "And God said"}, {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
    Json off = body;
    off["speculative"] = false;
    const Json with = post(*spec.client(), "/v1/completions", body).json();
    const Json without = post(*spec.client(), "/v1/completions", off).json();
    EXPECT_GT(with["usage"]["spec"]["verify_steps"].get<int64_t>(), 0) << with;
    // usage.spec.drafts_per_step: the K of every decode step; 24 tokens at K = 3 (the default) end with capped K,
    // and a step capped to K = 0 (the last token) is a plain step, counted under "0" and not a verify step.
    int64_t counted = 0;
    for (const auto& [k, n] : with["usage"]["spec"]["drafts_per_step"].items()) {
      EXPECT_GE(std::stoi(k), 0) << with;
      EXPECT_LE(std::stoi(k), 3) << with;
      if (k == "0") EXPECT_LE(n.get<int64_t>(), 1) << with;
      else counted += n.get<int64_t>();
    }
    EXPECT_EQ(counted, with["usage"]["spec"]["verify_steps"].get<int64_t>()) << with;
    EXPECT_EQ(without["usage"]["spec"]["verify_steps"].get<int64_t>(), 0) << without;
    EXPECT_EQ(without["choices"][0]["text"], with["choices"][0]["text"]);
    const Json gen = post(*spec.client(), "/generate",
                          Json{{"text", "And God said"},
                               {"sampling_params", {{"max_new_tokens", 24}, {"temperature", 0}, {"ignore_eos", true},
                                                    {"speculative", false}}}})
                         .json();
    EXPECT_EQ(gen["text"], with["choices"][0]["text"]) << gen;
    EXPECT_EQ(gen["meta_info"]["spec_verify_ct"].get<int64_t>(), 0) << gen;
  }
}

}  // namespace
}  // namespace tandem::test
