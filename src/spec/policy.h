// How many drafts a request gets at its next verify step. A policy is a small value type behind a
// std::variant (TRT-LLM's scheduler-policy pattern); the adaptive policy is added as another alternative.
#pragma once

#include <algorithm>
#include <cstdint>
#include <variant>

namespace tandem::spec {

/// Always K drafts (--speculative-policy fixed, --speculative-num-steps K).
struct FixedK {
  int k = 3;
};

using SpecPolicy = std::variant<FixedK>;

/// What a policy may look at for one request.
struct DraftBudget {
  int64_t remaining_tokens = 0;   // max_tokens - tokens already emitted (>= 1 while the request runs)
  int64_t context_left = 0;       // max_model_len - tokens in the sequence
};

/// Drafts for the next verify step: the policy's choice, capped so that the step never verifies past
/// max_tokens (a verify of k drafts emits up to k + 1 tokens) or past the context limit.
[[nodiscard]] inline int draft_length(const SpecPolicy& policy, const DraftBudget& b) {
  const int want = std::visit([](const auto& p) { return p.k; }, policy);
  const int64_t cap = std::min(b.remaining_tokens - 1, b.context_left - 1);
  return static_cast<int>(std::clamp<int64_t>(cap, 0, want));
}

/// The largest K the policy may ever ask for (sizes the draft's lookahead).
[[nodiscard]] inline int max_draft_length(const SpecPolicy& policy) {
  return std::visit([](const auto& p) { return p.k; }, policy);
}

}  // namespace tandem::spec
