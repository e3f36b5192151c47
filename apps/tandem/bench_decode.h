// `tandem bench`'s decode runs: batch-1 greedy generation through the engine over a set of prompts, with or
// without speculation, and the speculation curve (plain, each fixed K and the adaptive policy, interleaved
// round by round, optionally at synthetic acceptance rates).
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace tandem::app {

/// Prompts for the decode runs: the model's held-out evaluation prompts when it ships them (eval.json),
/// else random ids. Acceptance length is only meaningful on real text.
std::vector<std::vector<int32_t>> bench_prompts(const models::LoadedModel& m, int n, int len);

struct DecodeResult {
  double tokens_per_s = 0;
  double mean_accept_length = 0;
  int64_t tokens = 0;
  std::array<int64_t, spec::kMaxDraftTokens + 1> k_hist{};  // decode steps per K used
  std::string cost_table;  // the adaptive policy's table at the end of the run (empty for other policies)
  double mean_k() const;
};

/// Decodes every prompt alone (batch 1), greedy, decode_tokens each; tokens/s over decode time (the prefill
/// that gives each first token excluded).
DecodeResult run_decode(models::LoadedModel& m, ops::Backend& be, const engine::SpecOptions& spec,
                        const std::vector<std::vector<int32_t>>& prompts, int decode_tokens, DType kv_dtype);

struct CurveOptions {
  int k_max = 3;
  int rounds = 3;                                // interleaved rounds; the median of each configuration is kept
  std::vector<std::vector<double>> acceptance;   // synthetic profiles; empty: the draft's real acceptance only
};

/// Plain vs K = 1..k_max vs adaptive for each acceptance profile, printed as a table to stdout unless `quiet`.
nlohmann::ordered_json speculation_curve(models::LoadedModel& m, ops::Backend& be, const CurveOptions& o,
                                         const std::vector<std::vector<int32_t>>& prompts, int decode_tokens,
                                         DType kv_dtype, bool quiet);

}  // namespace tandem::app
