// Per-request sampling parameters (OpenAI / SGLang semantics).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace tandem::sampling {

/// A parameter a request may not carry: the field's name (OpenAI's spelling) and why.
struct InvalidParam {
  std::string field;
  std::string reason;
};

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

  /// The first field outside its range, or nullopt. Checked on the values as stored (float), so a request
  /// value that is finite as a double but not as a float (temperature 1e39) is refused too: temperature
  /// finite >= 0, top_p finite in (0, 1], top_k >= -1, min_p in [0, 1], presence / frequency penalty in
  /// [-2, 2] (OpenAI's range), repetition_penalty finite > 0. Request parsers turn it into a 400.
  std::optional<InvalidParam> invalid_param() const;
};

}  // namespace tandem::sampling
