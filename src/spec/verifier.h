// Accepting draft tokens against the target's logits for a chain of K drafts (topk = 1).
// Greedy requests accept while the draft equals the target argmax; sampled requests use rejection
// sampling with the draft treated as deterministic, which leaves the target distribution unchanged.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "sampling/sampler.h"

namespace tandem::spec {

struct VerifyResult {
  std::vector<int32_t> tokens;  // emitted: accepted drafts then one target token (correction or bonus)
  int accepted = 0;             // drafts accepted (tokens.size() == accepted + 1)
};

/// row_logits(j) gives the target's logits [V] for verify row j (0..K), where row 0 is the input of the
/// newest committed token and row j >= 1 the input of draft j. The callback may return a modified copy
/// (penalties use the history including tokens accepted so far, passed as `so_far`).
using RowLogits = std::function<std::vector<float>(int row, std::span<const int32_t> so_far)>;

VerifyResult verify_chain(const RowLogits& row_logits, std::span<const int32_t> drafts,
                          const sampling::SamplingParams& params, sampling::Rng& rng);

}  // namespace tandem::spec
