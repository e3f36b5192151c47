// Turning one row of logits into a token: penalties, temperature, top-k, top-p, min-p, and the exact
// rejection rule used to verify draft tokens. All on host f32 logits.
#pragma once

#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sampling/rng.h"
#include "sampling/sampling_params.h"

namespace tandem::sampling {

/// Token counts a request has produced (frequency/presence penalties) and seen (repetition penalty).
struct TokenHistory {
  std::unordered_map<int32_t, int> output_counts;
  std::unordered_map<int32_t, int> prompt_counts;
};

/// Applies presence/frequency/repetition penalties in place. logits [V].
void apply_penalties(std::span<float> logits, const SamplingParams& p, const TokenHistory& h);

/// argmax with the lowest index winning ties.
int32_t argmax(std::span<const float> logits);

/// The distribution the request samples from: softmax(logits / T) restricted by top-k, top-p, min-p and
/// renormalised. Precondition: !p.greedy(). probs [V].
std::vector<float> target_distribution(std::span<const float> logits, const SamplingParams& p);

/// Samples from logits under p (greedy when temperature is 0). Consumes one uniform when sampling.
int32_t sample(std::span<const float> logits, const SamplingParams& p, Rng& rng);

/// Draws from an explicit distribution probs [V] (sums to 1).
int32_t sample_from(std::span<const float> probs, Rng& rng);

/// Rejection step for a deterministic (greedy) draft token: accept `draft` with probability probs[draft];
/// otherwise return a sample from probs with `draft` removed, renormalised. The emitted token is then
/// distributed exactly as probs (Leviathan et al. with a one-hot proposal). Returns {token, accepted}.
std::pair<int32_t, bool> verify_draft_token(std::span<const float> probs, int32_t draft, Rng& rng);

/// Natural-log softmax of the raw logits. out [V].
void log_softmax(std::span<const float> logits, std::span<float> out);

/// The k largest entries of values, by value descending (ties: lower id first). Returns (id, value).
std::vector<std::pair<int32_t, float>> top_k_entries(std::span<const float> values, int k);

}  // namespace tandem::sampling
