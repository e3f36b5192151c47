// The engine's request / output contract, shared by the CLI and the HTTP server.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sampling/sampling_params.h"
#include "spec/stats.h"

namespace tandem::engine {

struct GenerateRequest {
  std::vector<int32_t> prompt;             // token ids, non-empty
  sampling::SamplingParams sampling;
  int max_tokens = 16;                     // >= 1
  std::vector<int32_t> stop_token_ids;     // in addition to the model's eos ids (unless ignore_eos)
  bool ignore_eos = false;
  int top_logprobs = -1;                   // -1: none; 0: the chosen token's logprob; k: also the top k
  bool speculative = true;                 // use the MTP draft when the engine runs one
};

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort", "error", ""

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;                          // natural log, full softmax of the target logits
  std::vector<std::pair<int32_t, float>> top;    // top_logprobs entries, best first
};

/// Per-request speculative statistics (cumulative); one definition in spec/stats.h.
using SpecStats = spec::SpecStats;

/// New output for one request after an engine step. Callbacks run on the engine's thread.
struct RequestOutput {
  uint64_t request_id = 0;
  std::vector<int32_t> new_tokens;
  std::vector<TokenLogprob> logprobs;       // aligned with new_tokens when top_logprobs >= 0
  FinishReason finish = FinishReason::kNone;
  std::string error;                        // with kError
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;                // prompt tokens found in the prefix cache at admission
  int64_t completion_tokens = 0;            // cumulative
  SpecStats spec;                           // cumulative
  bool finished() const { return finish != FinishReason::kNone; }
};

using OutputCallback = std::function<void(const RequestOutput&)>;

}  // namespace tandem::engine
