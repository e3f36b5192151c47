// Accepting draft tokens against the target's logits for a chain of K drafts (topk = 1).
// Each verify row decides one output position with that position's own uniform (sampling/rng.h), exactly
// as plain decoding would: greedy requests accept while the draft equals the target argmax; sampled
// requests accept while the draft equals the token sampled from the target distribution. Seeded output is
// therefore the same token for token with speculation on or off, and the target distribution is unchanged.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sampling/rng.h"
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

/// Verifies drafts [K] (each in [0, V)). Row j decides output position first_position + j (the number of
/// output tokens the request had committed before this pass, plus j):
///   y_j = sampling::sample(row_logits(j, y_0..y_{j-1}), params, rng.uniform(first_position + j)),
/// i.e. the argmax when greedy, else the inverse-CDF draw from the processed distribution. Drafts are
/// accepted while y_j == drafts[j]; the first differing y_j is emitted as the correction; when all K match,
/// y_K from row K is the bonus token. Exactly one uniform per output position, whatever is accepted.
/// In law this is the rejection rule of Leviathan et al. with a one-hot draft: P(accept d) = p(d), and a
/// rejection yields a token distributed as p restricted to tokens != d, renormalised. Rows after the first
/// mismatch are never requested.
[[nodiscard]] VerifyResult verify_chain(const RowLogits& row_logits, std::span<const int32_t> drafts,
                                        const sampling::SamplingParams& params, const sampling::CounterRng& rng,
                                        int64_t first_position);

}  // namespace tandem::spec
