#include "server/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace tandem::server {

namespace {

// Bucket bounds from vLLM's metrics (vllm/v1/metrics/loggers.py), so dashboards built for vLLM read ours.
const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,  0.75,
                                          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kE2eBuckets = {0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
                                         30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

// Prometheus renders floats in Go's shortest form; "{}" in fmt gives the shortest round-trip too.
std::string num(double v) { return fmt::format("{}", v); }

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void sample(std::string& out, std::string_view name, double v) { out += fmt::format("{} {}\n", name, num(v)); }

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();  // le semantics
  std::lock_guard<std::mutex> lock(mu_);
  ++counts_[i];
  sum_ += v;
  ++n_;
}

void Histogram::render(std::string& out, std::string_view name, std::string_view help) const {
  std::lock_guard<std::mutex> lock(mu_);
  family(out, name, "histogram", help);
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, num(bounds_[i]), cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cum);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, num(sum_), name, n_);
}

Metrics::Metrics() : ttft_(kTtftBuckets), itl_(kItlBuckets), e2e_(kE2eBuckets) {
  for (const char* r : {"stop", "length", "abort", "error"}) finished_[r] = 0;
}

void Metrics::count_finished(std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = finished_.find(reason);
  if (it == finished_.end()) it = finished_.emplace(std::string(reason), 0).first;
  ++it->second;
}

double mean_accept_length(const engine::EngineCounters& c) {
  return spec::accept_length(c.spec_completion_tokens, c.spec_num_drafts);
}

std::string Metrics::render(const engine::EngineSnapshot& s, bool speculative) const {
  const auto& c = s.counters;
  std::string out;
  out.reserve(8192);
  family(out, "tandem:num_requests_running", "gauge", "Requests in the running batch.");
  sample(out, "tandem:num_requests_running", s.running);
  family(out, "tandem:num_requests_waiting", "gauge", "Requests waiting to be scheduled.");
  sample(out, "tandem:num_requests_waiting", s.waiting);
  family(out, "tandem:kv_cache_usage_perc", "gauge", "Fraction of KV cache blocks in use (1 = full).");
  sample(out, "tandem:kv_cache_usage_perc",
         s.kv_blocks_total > 0 ? static_cast<double>(s.kv_blocks_used) / static_cast<double>(s.kv_blocks_total) : 0.0);
  family(out, "tandem:prefix_cache_queries_total", "counter",
         "Prompt tokens looked up in the prefix cache (each admission, re-admissions after preemption included).");
  sample(out, "tandem:prefix_cache_queries_total", static_cast<double>(c.prefix_cache_query_tokens));
  family(out, "tandem:prefix_cache_hits_total", "counter", "Of those, tokens found cached (their KV reused).");
  sample(out, "tandem:prefix_cache_hits_total", static_cast<double>(c.prefix_cache_hit_tokens));
  family(out, "tandem:prefix_cache_blocks", "gauge", "Unused KV blocks the prefix cache holds (evicted on demand).");
  sample(out, "tandem:prefix_cache_blocks", static_cast<double>(s.kv_blocks_cached));
  family(out, "tandem:prompt_tokens_total", "counter", "Prefill tokens processed (recomputation included).");
  sample(out, "tandem:prompt_tokens_total", static_cast<double>(c.prompt_tokens));
  family(out, "tandem:generation_tokens_total", "counter", "Tokens generated.");
  sample(out, "tandem:generation_tokens_total", static_cast<double>(c.generation_tokens));
  family(out, "tandem:num_preemptions_total", "counter", "Requests preempted for recomputation.");
  sample(out, "tandem:num_preemptions_total", static_cast<double>(c.preemptions));
  {
    std::lock_guard<std::mutex> lock(mu_);
    family(out, "tandem:request_success_total", "counter", "Finished requests (choices) by finish reason.");
    for (const auto& [reason, n] : finished_)
      out += fmt::format("tandem:request_success_total{{finished_reason=\"{}\"}} {}\n", reason, n);
  }
  ttft_.render(out, "tandem:time_to_first_token_seconds", "Time from request arrival to its first token.");
  itl_.render(out, "tandem:inter_token_latency_seconds", "Time between consecutive outputs of a request.");
  e2e_.render(out, "tandem:e2e_request_latency_seconds", "Time from request arrival to its last output.");
  family(out, "tandem:spec_decode_num_drafts_total", "counter", "Speculative verify steps.");
  sample(out, "tandem:spec_decode_num_drafts_total", static_cast<double>(c.spec_num_drafts));
  family(out, "tandem:spec_decode_num_draft_tokens_total", "counter", "Draft tokens proposed.");
  sample(out, "tandem:spec_decode_num_draft_tokens_total", static_cast<double>(c.spec_num_draft_tokens));
  family(out, "tandem:spec_decode_num_accepted_tokens_total", "counter", "Draft tokens accepted.");
  sample(out, "tandem:spec_decode_num_accepted_tokens_total", static_cast<double>(c.spec_num_accepted_tokens));
  if (speculative) {
    family(out, "tandem:spec_decode_num_accepted_tokens_per_pos_total", "counter",
           "Draft tokens accepted at each draft position.");
    for (size_t i = 0; i < c.spec_accepted_per_pos.size(); ++i)
      out += fmt::format("tandem:spec_decode_num_accepted_tokens_per_pos_total{{position=\"{}\"}} {}\n", i,
                         c.spec_accepted_per_pos[i]);
  }
  family(out, "tandem:spec_decode_collapsed", "gauge",
         "1 while the accept length over the last verify steps is at or below the collapse threshold.");
  sample(out, "tandem:spec_decode_collapsed", static_cast<double>(c.spec_collapsed));
  family(out, "tandem:spec_accept_length", "gauge",
         "Tokens emitted to speculative requests per verify step since start (SGLang's accept length; 0 before any).");
  sample(out, "tandem:spec_accept_length", mean_accept_length(c));
  return out;
}

}  // namespace tandem::server
