#include "bench_multi_turn.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "bench_http.h"
#include "core/error.h"
#include "core/log.h"

namespace tandem::app {
namespace {

using Clock = std::chrono::steady_clock;

struct TurnResult {
  bool ok = false;
  std::string error;
  double ttft = 0, e2e = 0;
  int64_t prompt_tokens = 0, cached_tokens = 0;
  std::vector<int32_t> output;
};

/// One streaming /generate request over token ids.
TurnResult run_turn(const MultiTurnOptions& o, const std::vector<int32_t>& ids) {
  TurnResult res;
  res.prompt_tokens = static_cast<int64_t>(ids.size());
  const nlohmann::json body = {{"input_ids", ids},
                               {"stream", true},
                               {"sampling_params",
                                {{"max_new_tokens", o.output_len}, {"temperature", o.temperature}, {"ignore_eos", true}}}};
  bool first = true;
  const auto start = Clock::now();
  const StreamPost r = post_events(o.base, "/generate", body.dump(), o.timeout_s, [&](const std::string& ev) {
    if (ev == "[DONE]") return true;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ev);
    } catch (const std::exception&) {
      res.error = "invalid JSON event: " + ev.substr(0, 200);
      return false;
    }
    if (j.contains("error")) {
      res.error = j["error"].is_object() ? j["error"].value("message", "error event") : j["error"].dump();
      return false;
    }
    if (j.contains("output_ids")) res.output = j["output_ids"].get<std::vector<int32_t>>();
    if (j.contains("meta_info")) res.cached_tokens = j["meta_info"].value("cached_tokens", int64_t{0});
    if (first && !res.output.empty()) {
      res.ttft = std::chrono::duration<double>(Clock::now() - start).count();
      first = false;
    }
    return true;
  });
  res.e2e = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.status == 0 && res.error.empty()) res.error = r.error;
  else if (r.status != 200 && r.status != 0) res.error = fmt::format("HTTP {}: {}", r.status, r.body);
  else if (res.error.empty() && first) res.error = "no output received";
  res.ok = res.error.empty();
  return res;
}

}  // namespace

int run_multi_turn(const MultiTurnOptions& o) {
  if (o.turns < 1) fail("--multi-turn must be >= 1, got {}", o.turns);
  if (o.shared_prefix_len < 0) fail("--shared-prefix-len must be >= 0, got {}", o.shared_prefix_len);
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int64_t> dist(0, o.vocab - 1);
  auto random_ids = [&](int n) {
    std::vector<int32_t> ids;
    while (static_cast<int>(ids.size()) < n) {
      const auto t = static_cast<int32_t>(dist(rng));
      if (std::find(o.eos.begin(), o.eos.end(), t) == o.eos.end()) ids.push_back(t);
    }
    return ids;
  };
  const std::vector<int32_t> shared = random_ids(o.shared_prefix_len);
  std::vector<std::vector<std::vector<int32_t>>> user(o.conversations);  // [conversation][turn]
  for (auto& c : user)
    for (int t = 0; t < o.turns; ++t) c.push_back(random_ids(o.input_len));

  {  // warm-up on tokens no conversation shares, so it seeds no cache
    MultiTurnOptions w = o;
    w.output_len = 2;
    const TurnResult r = run_turn(w, random_ids(o.input_len));
    if (!r.ok) fail("the warm-up request failed: {}", r.error);
  }

  httplib::Client cli(o.base);
  cli.set_read_timeout(60);
  const auto before = metric_samples(cli, "tandem:prefix_cache_");
  std::vector<std::vector<TurnResult>> results(o.conversations, std::vector<TurnResult>(o.turns));
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < std::min(o.concurrency, o.conversations); ++w)
    workers.emplace_back([&] {
      for (int c = next++; c < o.conversations; c = next++) {
        std::vector<int32_t> history = shared;
        for (int t = 0; t < o.turns; ++t) {
          history.insert(history.end(), user[c][t].begin(), user[c][t].end());
          results[c][t] = run_turn(o, history);
          if (!results[c][t].ok) break;  // the conversation cannot go on without its answer
          history.insert(history.end(), results[c][t].output.begin(), results[c][t].output.end());
        }
      }
    });
  for (auto& t : workers) t.join();
  const double duration = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto after = metric_samples(cli, "tandem:prefix_cache_");
  auto delta = [&](const std::string& k) {
    const auto a = after.find(k), b = before.find(k);
    return (a == after.end() ? 0.0 : a->second) - (b == before.end() ? 0.0 : b->second);
  };

  int ok = 0, failed = 0;
  int64_t in_tokens = 0, out_tokens = 0;
  std::map<std::string, int> errors;
  nlohmann::ordered_json per_turn = nlohmann::ordered_json::array();
  for (int t = 0; t < o.turns; ++t) {
    std::vector<double> ttft;
    double prompt = 0, cached = 0;
    for (int c = 0; c < o.conversations; ++c) {
      const TurnResult& r = results[c][t];
      if (!r.ok) {
        if (!r.error.empty()) ++failed, errors[r.error.substr(0, 160)]++;
        continue;
      }
      ++ok;
      ttft.push_back(r.ttft * 1e3);
      prompt += static_cast<double>(r.prompt_tokens);
      cached += static_cast<double>(r.cached_tokens);
      in_tokens += r.prompt_tokens;
      out_tokens += static_cast<int64_t>(r.output.size());
    }
    const double n = std::max<double>(1.0, static_cast<double>(ttft.size()));
    per_turn.push_back({{"turn", t + 1},
                        {"requests", ttft.size()},
                        {"mean_prompt_tokens", prompt / n},
                        {"mean_cached_tokens", cached / n},
                        {"mean_ttft_ms", mean(ttft)},
                        {"median_ttft_ms", percentile(ttft, 50)}});
  }
  const int total = o.conversations * o.turns;
  const double queries = delta("queries_total"), hits = delta("hits_total");

  nlohmann::ordered_json j;
  j["url"] = o.base;
  j["conversations"] = o.conversations;
  j["turns"] = o.turns;
  j["shared_prefix_len"] = o.shared_prefix_len;
  j["input_len"] = o.input_len;
  j["output_len"] = o.output_len;
  j["concurrency"] = o.concurrency;
  j["successful_requests"] = ok;
  j["failed_requests"] = total - ok;
  j["duration_s"] = duration;
  j["total_input_tokens"] = in_tokens;
  j["total_output_tokens"] = out_tokens;
  j["request_throughput"] = ok / duration;
  j["output_throughput"] = static_cast<double>(out_tokens) / duration;
  j["prefix_cache_hit_rate"] = queries > 0 ? hits / queries : 0.0;
  j["per_turn"] = per_turn;
  if (o.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    auto row = [](const std::string& k, const std::string& v) { std::cout << fmt::format("{:<40} {:<10}\n", k, v); };
    auto rowf = [&](const std::string& k, double v) { row(k, fmt::format("{:.2f}", v)); };
    std::cout << fmt::format("{:=^50}\n", " Multi-turn Benchmark Result ");
    row("Conversations x turns:", fmt::format("{} x {}", o.conversations, o.turns));
    row("Shared prefix / user / answer tokens:", fmt::format("{} / {} / {}", o.shared_prefix_len, o.input_len, o.output_len));
    row("Successful requests:", std::to_string(ok));
    row("Failed requests:", std::to_string(total - ok));
    rowf("Benchmark duration (s):", duration);
    row("Total input tokens:", std::to_string(in_tokens));
    row("Total generated tokens:", std::to_string(out_tokens));
    rowf("Request throughput (req/s):", ok / duration);
    rowf("Output token throughput (tok/s):", static_cast<double>(out_tokens) / duration);
    rowf("Prefix cache hit rate (%):", queries > 0 ? 100.0 * hits / queries : 0.0);
    std::cout << fmt::format("{:-^50}\n", "Per turn");
    std::cout << fmt::format("{:<6}{:>12}{:>12}{:>12}{:>12}\n", "turn", "prompt", "cached", "mean TTFT", "med TTFT");
    for (const auto& p : per_turn)
      std::cout << fmt::format("{:<6}{:>12.1f}{:>12.1f}{:>10.2f}ms{:>10.2f}ms\n", p["turn"].get<int>(),
                               p["mean_prompt_tokens"].get<double>(), p["mean_cached_tokens"].get<double>(),
                               p["mean_ttft_ms"].get<double>(), p["median_ttft_ms"].get<double>());
    std::cout << std::string(50, '=') << "\n";
  }
  for (const auto& [e, n] : errors) log::warn("{} request(s) failed: {}", n, e);
  return ok == total ? 0 : 1;
}

}  // namespace tandem::app
