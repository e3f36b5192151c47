// Turning one row of logits into a token: penalties, temperature, top-k, top-p, min-p, then an inverse-CDF
// draw with a uniform the caller supplies (sampling/rng.h gives one per output position). Draft
// verification builds on sample() (spec/verifier.h). All on host f32 logits.
#pragma once

#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sampling/sampling_params.h"

namespace tandem::sampling {

/// Token counts a request has produced (frequency/presence penalties) and seen (repetition penalty).
struct TokenHistory {
  std::unordered_map<int32_t, int> output_counts;
  std::unordered_map<int32_t, int> prompt_counts;
};

// Every function here is total over its inputs' values: NaN logits count as -inf, a row with no finite logit
// samples its argmax (id 0 when all are -inf / NaN), and no parameter value (NaN, inf, huge penalties) makes
// the sampler return anything but an index of the row. Request validation (SamplingParams::invalid_param)
// refuses such parameters before they get here; these rules are what holds if one slips through.

/// Applies presence/frequency/repetition penalties in place. logits [V]. A finite logit stays finite (an
/// overflowing result saturates at +-FLT_MAX); non-finite logits are left as they are; a NaN parameter is
/// ignored and an infinite one acts as +-FLT_MAX.
void apply_penalties(std::span<float> logits, const SamplingParams& p, const TokenHistory& h);

/// argmax with the lowest index winning ties, NaN counted as -inf (a row of -inf / NaN gives 0).
/// Precondition: logits not empty.
int32_t argmax(std::span<const float> logits);

/// The distribution the request samples from: softmax(logits / T) restricted by top-k, top-p, min-p and
/// renormalised. probs [V], finite, summing to ~1. NaN logits get no mass; when some logits are +inf they
/// share all the mass; when none is finite (or T is not > 0) all mass is on argmax(logits). T = +inf acts as
/// the largest float.
std::vector<float> target_distribution(std::span<const float> logits, const SamplingParams& p);

/// Inverse-CDF draw from the weights probs [V] (non-negative; they need not sum to exactly 1) with u in
/// [0, 1): walks the tokens in id order, accumulating the positive weights in double, and returns the first
/// token whose running sum exceeds u * (sum of the positive weights). When rounding leaves u past the last
/// running sum it returns the last token with positive weight. Never returns a token of weight <= 0 (or NaN).
/// Preconditions: 0 <= u < 1; some weight is positive.
[[nodiscard]] int32_t inverse_cdf(std::span<const float> probs, double u);

/// Samples from logits [V] under p: the argmax when greedy or T is NaN (u unused), otherwise
/// inverse_cdf(target_distribution(logits, p), u). Deterministic in (logits, p, u); always in [0, V).
/// Precondition: logits not empty.
[[nodiscard]] int32_t sample(std::span<const float> logits, const SamplingParams& p, double u);

/// Natural-log softmax of the raw logits. out [V]. NaN logits get -inf; a row with no finite logit gets the
/// uniform log(1/V); with +inf logits those share log(1/count) and the rest get -inf.
void log_softmax(std::span<const float> logits, std::span<float> out);

/// The k largest entries of values, by value descending (ties: lower id first; NaN ranks as -inf). Returns
/// (id, value).
std::vector<std::pair<int32_t, float>> top_k_entries(std::span<const float> values, int k);

}  // namespace tandem::sampling
