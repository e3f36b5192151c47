// `tandem bench serve`: an HTTP load generator for a running server, printing what `vllm bench serve`
// prints. C worker threads send N streaming /v1/completions requests whose prompts are random token ids of
// length I, with ignore_eos and max_tokens O, so every request produces exactly O tokens.
//
// Definitions (vLLM's): TTFT = request sent -> first non-empty text chunk; ITL = gaps between non-empty
// chunks (with speculation a chunk can carry several tokens, so ITL and TPOT differ); TPOT =
// (E2E - TTFT) / (output tokens - 1). Acceptance comes from /metrics deltas around the run (vLLM's
// spec_decode counters) and from the per-request usage.spec.
#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "bench_http.h"
#include "bench_multi_turn.h"
#include "commands.h"
#include "core/error.h"
#include "core/log.h"
#include "spec/stats.h"

namespace tandem::app {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchServeFlags {
  std::string url = "http://127.0.0.1:8080";
  std::string model;  // empty: the first of /v1/models
  int concurrency = 1;
  int requests = 32;
  int input_len = 128;
  int output_len = 64;
  uint64_t seed = 0;
  double temperature = 0.0;
  double timeout_s = 600.0;
  bool json = false;
  int multi_turn = 0;         // turns per conversation (bench_multi_turn.h); 0: independent requests
  int shared_prefix_len = 0;  // with --multi-turn: system-prompt tokens every conversation starts with
};

struct RequestResult {
  bool ok = false;
  std::string error;
  double ttft = 0, e2e = 0;
  std::vector<double> itl;
  int64_t prompt_tokens = 0, output_tokens = 0;
  int64_t verify_steps = 0, engine_tokens = 0;  // from usage.spec
};

/// tandem:spec_decode_* counters from /metrics (name -> value; per-position keyed "per_pos_<i>").
std::map<std::string, double> spec_counters(httplib::Client& cli) {
  std::map<std::string, double> out;
  for (const auto& [name, v] : metric_samples(cli, "tandem:spec_decode_")) {
    if (const size_t q = name.find("{position=\""); q != std::string::npos)
      out["per_pos_" + name.substr(q + 11, name.find('"', q + 11) - q - 11)] = v;
    else
      out[name] = v;
  }
  return out;
}

RequestResult run_one(const std::string& base, const nlohmann::json& body, double timeout_s) {
  RequestResult res;
  Clock::time_point last;
  bool first = true;
  const auto start = Clock::now();
  const StreamPost r = post_events(base, "/v1/completions", body.dump(), timeout_s, [&](const std::string& ev) {
    const auto now = Clock::now();
    if (ev == "[DONE]") return true;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(ev);
    } catch (const std::exception&) {
      res.error = "invalid JSON event: " + ev.substr(0, 200);
      return false;
    }
    if (j.contains("error")) {
      res.error = j["error"].value("message", "error event");
      return false;
    }
    if (j.contains("usage") && j["usage"].is_object() && j["choices"].empty()) {
      const auto& u = j["usage"];
      res.prompt_tokens = u.value("prompt_tokens", 0);
      res.output_tokens = u.value("completion_tokens", 0);
      if (u.contains("spec")) {
        res.verify_steps = u["spec"].value("verify_steps", 0);
        // Tokens of plain (K = 0) steps ("drafts_per_step" "0") do not count towards the accept length.
        int64_t plain = 0;
        if (u["spec"].contains("drafts_per_step")) plain = u["spec"]["drafts_per_step"].value("0", int64_t{0});
        res.engine_tokens = res.output_tokens - plain;
      }
    }
    if (!j.contains("choices") || j["choices"].empty()) return true;
    if (j["choices"][0].value("text", "").empty()) return true;
    if (first) {
      res.ttft = std::chrono::duration<double>(now - start).count();
      first = false;
    } else {
      res.itl.push_back(std::chrono::duration<double>(now - last).count());
    }
    last = now;
    return true;
  });
  res.e2e = std::chrono::duration<double>(Clock::now() - start).count();
  if (r.status == 0 && res.error.empty()) res.error = r.error;
  else if (r.status != 200 && r.status != 0) res.error = fmt::format("HTTP {}: {}", r.status, r.body);
  else if (res.error.empty() && first) res.error = "no text received";
  res.ok = res.error.empty();
  return res;
}

int run_bench_serve(const BenchServeFlags& f) {
  if (f.concurrency < 1) fail("--concurrency must be >= 1, got {}", f.concurrency);
  if (f.requests < 1) fail("--requests must be >= 1, got {}", f.requests);
  if (f.input_len < 1 || f.output_len < 1) fail("--input-len and --output-len must be >= 1");
  const std::string base = base_of(f.url);
  httplib::Client cli(base);
  cli.set_read_timeout(60);
  const nlohmann::json info = get_json(cli, "/get_model_info");
  const int64_t vocab = info.value("vocab_size", int64_t{0});
  if (vocab <= 1) fail("/get_model_info has no usable vocab_size");
  std::vector<int32_t> eos = info.value("eos_token_ids", std::vector<int32_t>{});
  std::string model = f.model;
  if (model.empty()) {
    const nlohmann::json models = get_json(cli, "/v1/models");
    if (!models.contains("data") || models["data"].empty()) fail("/v1/models lists no model");
    model = models["data"][0].value("id", "");
  }

  if (f.multi_turn > 0)
    return run_multi_turn({.base = base, .conversations = f.requests, .turns = f.multi_turn,
                           .shared_prefix_len = f.shared_prefix_len, .input_len = f.input_len,
                           .output_len = f.output_len, .concurrency = f.concurrency, .seed = f.seed,
                           .temperature = f.temperature, .timeout_s = f.timeout_s, .json = f.json, .vocab = vocab,
                           .eos = eos});
  if (f.shared_prefix_len != 0) fail("--shared-prefix-len needs --multi-turn");

  // Prompts: uniform random ids, eos ids excluded so prompts do not look finished.
  std::mt19937_64 rng(f.seed);
  std::uniform_int_distribution<int64_t> dist(0, vocab - 1);
  std::vector<nlohmann::json> bodies;
  for (int i = 0; i < f.requests; ++i) {
    std::vector<int32_t> ids;
    while (static_cast<int>(ids.size()) < f.input_len) {
      const auto t = static_cast<int32_t>(dist(rng));
      if (std::find(eos.begin(), eos.end(), t) == eos.end()) ids.push_back(t);
    }
    bodies.push_back({{"model", model},
                      {"prompt", ids},
                      {"max_tokens", f.output_len},
                      {"temperature", f.temperature},
                      {"ignore_eos", true},
                      {"stream", true},
                      {"stream_options", {{"include_usage", true}}}});
  }

  // One warm-up request, as vllm bench serve does, so the first measured request pays no one-time cost.
  {
    nlohmann::json w = bodies[0];
    w["max_tokens"] = 2;
    const RequestResult r = run_one(base, w, f.timeout_s);
    if (!r.ok) fail("the warm-up request failed: {}", r.error);
  }

  const auto spec_before = spec_counters(cli);
  std::vector<RequestResult> results(bodies.size());
  std::atomic<int> next{0};
  const auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (int w = 0; w < std::min(f.concurrency, f.requests); ++w)
    workers.emplace_back([&] {
      for (int i = next++; i < f.requests; i = next++) results[i] = run_one(base, bodies[i], f.timeout_s);
    });
  for (auto& t : workers) t.join();
  const double duration = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto spec_after = spec_counters(cli);

  std::vector<double> ttft, tpot, itl, e2e;
  int64_t in_tokens = 0, out_tokens = 0, verify = 0, spec_tokens = 0;
  int ok = 0;
  std::map<std::string, int> errors;
  for (const auto& r : results) {
    if (!r.ok) {
      errors[r.error.substr(0, 160)]++;
      continue;
    }
    ++ok;
    in_tokens += r.prompt_tokens;
    out_tokens += r.output_tokens;
    ttft.push_back(r.ttft * 1e3);
    e2e.push_back(r.e2e * 1e3);
    if (r.output_tokens > 1) tpot.push_back((r.e2e - r.ttft) / static_cast<double>(r.output_tokens - 1) * 1e3);
    for (double x : r.itl) itl.push_back(x * 1e3);
    verify += r.verify_steps;
    spec_tokens += r.verify_steps > 0 ? r.engine_tokens : 0;
  }
  auto delta = [&](const std::string& k) {
    const auto a = spec_after.find(k), b = spec_before.find(k);
    return (a == spec_after.end() ? 0.0 : a->second) - (b == spec_before.end() ? 0.0 : b->second);
  };
  const double drafts = delta("num_drafts_total"), draft_tokens = delta("num_draft_tokens_total"),
               accepted = delta("num_accepted_tokens_total");

  nlohmann::ordered_json j;
  j["url"] = base;
  j["model"] = model;
  j["concurrency"] = f.concurrency;
  j["input_len"] = f.input_len;
  j["output_len"] = f.output_len;
  j["successful_requests"] = ok;
  j["failed_requests"] = f.requests - ok;
  j["duration_s"] = duration;
  j["total_input_tokens"] = in_tokens;
  j["total_output_tokens"] = out_tokens;
  j["request_throughput"] = ok / duration;
  j["output_throughput"] = static_cast<double>(out_tokens) / duration;
  j["total_token_throughput"] = static_cast<double>(in_tokens + out_tokens) / duration;
  for (auto [name, v] : {std::pair{"ttft", &ttft}, {"tpot", &tpot}, {"itl", &itl}, {"e2el", &e2e}}) {
    j[std::string("mean_") + name + "_ms"] = mean(*v);
    j[std::string("median_") + name + "_ms"] = percentile(*v, 50);
    j[std::string("p99_") + name + "_ms"] = percentile(*v, 99);
  }
  if (drafts > 0) {
    j["spec_acceptance_rate"] = draft_tokens > 0 ? accepted / draft_tokens : 0.0;
    j["spec_drafts"] = drafts;
    j["spec_draft_tokens"] = draft_tokens;
    j["spec_accepted_tokens"] = accepted;
    nlohmann::json per = nlohmann::json::array();
    for (int i = 0; spec_after.count("per_pos_" + std::to_string(i)); ++i)
      per.push_back(delta("per_pos_" + std::to_string(i)) / drafts);
    j["spec_per_position_acceptance"] = per;
  }
  if (verify > 0) j["mean_accept_length"] = spec::accept_length(spec_tokens, verify);

  if (f.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    auto row = [](const std::string& k, const std::string& v) { std::cout << fmt::format("{:<40} {:<10}\n", k, v); };
    auto rowf = [&](const std::string& k, double v) { row(k, fmt::format("{:.2f}", v)); };
    auto title = [](const std::string& t) { std::cout << fmt::format("{:-^50}\n", t); };
    std::cout << fmt::format("{:=^50}\n", " Serving Benchmark Result ");
    row("Successful requests:", std::to_string(ok));
    row("Failed requests:", std::to_string(f.requests - ok));
    row("Maximum request concurrency:", std::to_string(f.concurrency));
    rowf("Benchmark duration (s):", duration);
    row("Total input tokens:", std::to_string(in_tokens));
    row("Total generated tokens:", std::to_string(out_tokens));
    rowf("Request throughput (req/s):", ok / duration);
    rowf("Output token throughput (tok/s):", static_cast<double>(out_tokens) / duration);
    rowf("Total Token throughput (tok/s):", static_cast<double>(in_tokens + out_tokens) / duration);
    title("Time to First Token");
    rowf("Mean TTFT (ms):", mean(ttft));
    rowf("Median TTFT (ms):", percentile(ttft, 50));
    rowf("P99 TTFT (ms):", percentile(ttft, 99));
    title("Time per Output Token (excl. 1st token)");
    rowf("Mean TPOT (ms):", mean(tpot));
    rowf("Median TPOT (ms):", percentile(tpot, 50));
    rowf("P99 TPOT (ms):", percentile(tpot, 99));
    title("Inter-token Latency");
    rowf("Mean ITL (ms):", mean(itl));
    rowf("Median ITL (ms):", percentile(itl, 50));
    rowf("P99 ITL (ms):", percentile(itl, 99));
    title("End-to-end Latency");
    rowf("Mean E2EL (ms):", mean(e2e));
    rowf("Median E2EL (ms):", percentile(e2e, 50));
    rowf("P99 E2EL (ms):", percentile(e2e, 99));
    if (drafts > 0) {
      title("Speculative Decoding");
      rowf("Acceptance rate (%):", draft_tokens > 0 ? 100.0 * accepted / draft_tokens : 0.0);
      row("Drafts:", fmt::format("{:.0f}", drafts));
      row("Draft tokens:", fmt::format("{:.0f}", draft_tokens));
      row("Accepted tokens:", fmt::format("{:.0f}", accepted));
      std::string per;
      for (int i = 0; spec_after.count("per_pos_" + std::to_string(i)); ++i)
        per += fmt::format("{}{:.2f}", i ? ", " : "", 100.0 * delta("per_pos_" + std::to_string(i)) / drafts);
      row("Per-position acceptance (%):", per);
    }
    if (verify > 0)
      rowf("Mean accept length:", spec::accept_length(spec_tokens, verify));
    std::cout << std::string(50, '=') << "\n";
  }
  for (const auto& [e, n] : errors) log::warn("{} request(s) failed: {}", n, e);
  return ok == f.requests ? 0 : 1;
}

}  // namespace

Run add_bench_serve(CLI::App& bench) {
  auto f = std::make_shared<BenchServeFlags>();
  CLI::App* cmd = bench.add_subcommand("serve", "load-test a running `tandem serve` over HTTP (like vllm bench serve)");
  cmd->add_option("--url", f->url, "server base URL")->capture_default_str();
  cmd->add_option("--model", f->model, "model name to send (default: the first of /v1/models)");
  cmd->add_option("--concurrency", f->concurrency, "requests in flight at once")->capture_default_str();
  cmd->add_option("--requests", f->requests, "requests in total")->capture_default_str();
  cmd->add_option("--input-len", f->input_len, "prompt tokens per request (random ids)")->capture_default_str();
  cmd->add_option("--output-len", f->output_len, "generated tokens per request (ignore_eos)")->capture_default_str();
  cmd->add_option("--seed", f->seed, "prompt RNG seed")->capture_default_str();
  cmd->add_option("--temperature", f->temperature, "sampling temperature")->capture_default_str();
  cmd->add_option("--timeout", f->timeout_s, "per-request timeout in seconds")->capture_default_str();
  cmd->add_flag("--json", f->json, "print the results as one JSON object");
  cmd->add_option("--multi-turn", f->multi_turn,
                  "conversations of this many turns (--requests conversations; each turn resends the history and "
                  "the model's answers, through /generate) instead of independent requests");
  cmd->add_option("--shared-prefix-len", f->shared_prefix_len,
                  "with --multi-turn: tokens of a system prompt every conversation starts with");
  return [f] { return run_bench_serve(*f); };
}

}  // namespace tandem::app
