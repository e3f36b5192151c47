#include "bench_decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>

#include "core/json_text.h"

namespace tandem::app {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

std::string rates_str(const std::vector<double>& rates) {
  if (rates.empty()) return "draft";
  std::string s;
  for (double a : rates) s += fmt::format("{}{:.2f}", s.empty() ? "" : ",", a);
  return s;
}

}  // namespace

double DecodeResult::mean_k() const {
  int64_t steps = 0, drafts = 0;
  for (size_t k = 0; k < k_hist.size(); ++k) {
    steps += k_hist[k];
    drafts += static_cast<int64_t>(k) * k_hist[k];
  }
  return steps > 0 ? static_cast<double>(drafts) / static_cast<double>(steps) : 0.0;
}

std::vector<std::vector<int32_t>> bench_prompts(const models::LoadedModel& m, int n, int len) {
  std::vector<std::vector<int32_t>> out;
  std::ifstream f(m.checkpoint->dir() / "eval.json");
  if (f) {
    const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // Optional (a bundled model's held-out prompts): too deep or invalid means none.
    const auto j = json_nesting_depth(text) <= kMaxJsonDepth ? nlohmann::json::parse(text, nullptr, false)
                                                             : nlohmann::json();
    if (j.is_object() && j.contains("prompts"))
      for (const auto& p : j["prompts"]) {
        if (static_cast<int>(out.size()) == n) break;
        out.push_back(p.get<std::vector<int32_t>>());
      }
  }
  std::mt19937 rng(1234);
  while (static_cast<int>(out.size()) < n) {
    std::vector<int32_t> p(len);
    for (auto& t : p) t = static_cast<int32_t>(rng() % m.config.vocab_size);
    out.push_back(p);
  }
  return out;
}

DecodeResult run_decode(models::LoadedModel& m, ops::Backend& be, const engine::SpecOptions& spec,
                        const std::vector<std::vector<int32_t>>& prompts, int decode_tokens, DType kv_dtype) {
  engine::EngineOptions eo{.max_running_requests = 1, .kv_cache_tokens = 8192, .kv_cache_dtype = kv_dtype};
  eo.spec = spec;
  engine::Engine eng(m, be, eo);
  DecodeResult r;
  double decode_time = 0;
  int64_t verify = 0, spec_tokens = 0;
  for (const auto& p : prompts) {
    engine::GenerateRequest req;
    req.prompt = p;
    req.max_tokens = decode_tokens;
    req.sampling.temperature = 0.0f;
    req.ignore_eos = true;
    Clock::time_point first;
    bool got_first = false;
    engine::RequestOutput last;
    eng.submit(req, [&](const engine::RequestOutput& o) {
      if (!got_first && !o.new_tokens.empty()) {
        first = Clock::now();  // decode time excludes the prefill that produced the first token
        got_first = true;
      }
      if (o.finished()) last = o;
    });
    eng.run_until_idle();
    decode_time += std::chrono::duration<double>(Clock::now() - first).count();
    r.tokens += last.completion_tokens - 1;
    verify += last.spec.verify_steps;
    spec_tokens += last.spec.speculative_tokens(last.completion_tokens);
    for (size_t k = 0; k < r.k_hist.size(); ++k) r.k_hist[k] += last.spec.drafted_hist[k];
  }
  r.tokens_per_s = static_cast<double>(r.tokens) / decode_time;
  r.mean_accept_length = spec::accept_length(spec_tokens, verify);
  if (eng.adaptive()) r.cost_table = eng.adaptive()->costs().format();
  return r;
}

nlohmann::ordered_json speculation_curve(models::LoadedModel& m, ops::Backend& be, const CurveOptions& o,
                                         const std::vector<std::vector<int32_t>>& prompts, int decode_tokens,
                                         DType kv_dtype, bool quiet) {
  std::vector<std::vector<double>> profiles = o.acceptance;
  if (profiles.empty()) profiles.push_back({});  // the draft's own acceptance
  // Configurations: plain, K = 1..k_max fixed, adaptive.
  std::vector<engine::SpecOptions> configs{{.enabled = false, .num_steps = o.k_max}};
  for (int k = 1; k <= o.k_max; ++k) configs.push_back({.enabled = true, .num_steps = k});
  configs.push_back({.enabled = true, .num_steps = o.k_max, .policy = engine::SpecPolicyKind::kAdaptive});
  const size_t adaptive = configs.size() - 1;

  if (!quiet) {
    std::string head = fmt::format("{:<16} {:>9}", "acceptance", "plain");
    for (int k = 1; k <= o.k_max; ++k) head += fmt::format(" {:>9}", fmt::format("K={}", k));
    std::cout << head << fmt::format(" {:>9} {:>6} {:>6}  {}\n", "adaptive", "mean K", "AL", "adaptive / best fixed");
  }
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& rates : profiles) {
    std::vector<std::vector<double>> tps(configs.size());
    std::vector<DecodeResult> last(configs.size());
    for (int round = 0; round < std::max(o.rounds, 1); ++round)  // A B C ... A B C ...: drift hits all alike
      for (size_t c = 0; c < configs.size(); ++c) {
        engine::SpecOptions spec = configs[c];
        if (spec.enabled) spec.synthetic_acceptance = rates;
        last[c] = run_decode(m, be, spec, prompts, decode_tokens, kv_dtype);
        tps[c].push_back(last[c].tokens_per_s);
      }
    std::vector<double> med(configs.size());
    for (size_t c = 0; c < configs.size(); ++c) med[c] = median(tps[c]);
    const size_t best = std::max_element(med.begin(), med.end() - 1) - med.begin();  // best of plain and fixed K
    nlohmann::ordered_json row;
    row["acceptance"] = rates.empty() ? nlohmann::ordered_json("draft") : nlohmann::ordered_json(rates);
    row["plain_tokens_per_s"] = med[0];
    nlohmann::ordered_json fixed = nlohmann::ordered_json::object();
    for (int k = 1; k <= o.k_max; ++k)
      fixed[std::to_string(k)] = {{"tokens_per_s", med[k]}, {"mean_accept_length", last[k].mean_accept_length}};
    row["fixed"] = fixed;
    row["adaptive"] = {{"tokens_per_s", med[adaptive]},
                       {"mean_k", last[adaptive].mean_k()},
                       {"k_hist", last[adaptive].k_hist},
                       {"mean_accept_length", last[adaptive].mean_accept_length},
                       {"vs_plain", med[adaptive] / med[0]},
                       {"vs_best", med[adaptive] / med[best]},
                       {"best", best == 0 ? std::string("plain") : fmt::format("K={}", best)},
                       {"cost_table", last[adaptive].cost_table}};
    row["rounds"] = o.rounds;
    rows.push_back(row);
    if (!quiet) {
      std::string line = fmt::format("{:<16} {:>9.1f}", rates_str(rates), med[0]);
      for (int k = 1; k <= o.k_max; ++k) line += fmt::format(" {:>9.1f}", med[k]);
      std::cout << line
                << fmt::format(" {:>9.1f} {:>6.2f} {:>6.2f}  x{:.3f} of {} (x{:.3f} of plain)\n", med[adaptive],
                               last[adaptive].mean_k(), last[adaptive].mean_accept_length, med[adaptive] / med[best],
                               best == 0 ? std::string("plain") : fmt::format("K={}", best), med[adaptive] / med[0]);
    }
  }
  if (!quiet && !rows.empty())
    std::cout << "adaptive cost table (last run):\n" << rows.back()["adaptive"]["cost_table"].get<std::string>() << "\n";
  return rows;
}

}  // namespace tandem::app
