#include "sampling/sampling_params.h"

#include <fmt/format.h>

#include <cmath>

namespace tandem::sampling {

std::optional<InvalidParam> SamplingParams::invalid_param() const {
  // NaN fails every comparison, so each check is written as "in range" and negated.
  auto bad = [](const char* field, float v, const char* range) {
    return InvalidParam{
        field, fmt::format("'{}' must be a finite number {} (as a 32-bit float), got {}", field, range, v)};
  };
  if (!(std::isfinite(temperature) && temperature >= 0.0f)) return bad("temperature", temperature, ">= 0");
  if (!(std::isfinite(top_p) && top_p > 0.0f && top_p <= 1.0f)) return bad("top_p", top_p, "in (0, 1]");
  if (top_k < -1)
    return InvalidParam{"top_k", fmt::format("'top_k' must be -1 (off), 0 (off) or >= 1, got {}", top_k)};
  if (!(min_p >= 0.0f && min_p <= 1.0f)) return bad("min_p", min_p, "in [0, 1]");
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f))
    return bad("presence_penalty", presence_penalty, "in [-2, 2]");
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f))
    return bad("frequency_penalty", frequency_penalty, "in [-2, 2]");
  if (!(std::isfinite(repetition_penalty) && repetition_penalty > 0.0f))
    return bad("repetition_penalty", repetition_penalty, "> 0");
  return std::nullopt;
}

}  // namespace tandem::sampling
