// Per-request sampling parameters (OpenAI / SGLang semantics).
#pragma once

#include <cstdint>
#include <optional>

namespace tandem::sampling {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy
  float top_p = 1.0f;        // (0, 1]
  int top_k = 0;             // 0 or -1 = off
  float min_p = 0.0f;        // [0, 1]
  std::optional<uint64_t> seed;
  float presence_penalty = 0.0f;    // OpenAI: subtract once if the token appeared in the output
  float frequency_penalty = 0.0f;   // OpenAI: subtract count * penalty
  float repetition_penalty = 1.0f;  // HF/vLLM: divide positive logits, multiply negative, prompt + output

  bool greedy() const { return temperature <= 0.0f; }
  bool has_penalties() const {
    return presence_penalty != 0.0f || frequency_penalty != 0.0f || repetition_penalty != 1.0f;
  }
};

}  // namespace tandem::sampling
