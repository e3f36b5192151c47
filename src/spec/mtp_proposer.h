// The MTP / NextN proposer: keeps the draft's KV current over committed positions (the extend pass) and
// chains draft tokens from it. Batched across requests; each request may ask for a different number of drafts
// (0 = extend only, so speculation can resume at once with a current draft state).
//
// Extend: the draft pairs the target's post-norm hidden state at committed position i with token t_{i+1}
// and writes draft KV at i. Chain step j (1..k-1) feeds the draft's own h' and its previous proposal at the
// next position. Positions past the committed ones are overwritten by the next extend before any read, so
// rejected drafts need no rollback in the draft cache.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "kv/kv_cache.h"
#include "models/mtp/mtp_draft.h"

namespace tandem::spec {

/// One request's part of a proposer pass.
struct ExtendSeq {
  std::span<const int32_t> next_tokens;  // [n] t_{i+1} for each newly committed position i
  int64_t first_pos = 0;                 // draft KV position of the first pair (i of next_tokens[0])
  int64_t hidden_row = 0;                // hidden row of the first pair (rows are consecutive) in its source
  bool from_stash = false;               // the rows are in the stash (deferred pairs), not the target's hidden
  const int32_t* block_table = nullptr;  // covers first_pos + n + k positions
  int k = 0;                             // drafts to propose after extending (0: extend only)
};

struct ProposerHooks {
  std::function<void()> before_forward;  // called before each draft forward (tests inject failures)
};

class MtpProposer {
 public:
  /// `draft` must outlive the proposer. vocab_size and hidden_size are the target's.
  MtpProposer(const models::mtp::MtpDraft& draft, int64_t vocab_size, int64_t hidden_size)
      : draft_(draft), vocab_size_(vocab_size), hidden_size_(hidden_size) {}

  /// target_hidden [T_target, H] f32: the target forward's captured post-norm hidden rows (backend memory).
  /// stash [S, H] f32: hidden rows kept from earlier steps whose extend was deferred (engine/hidden_stash.h);
  /// read by the seqs marked from_stash, may be empty otherwise.
  /// Returns the drafts of each seq (size seqs[i].k, greedy: the draft's argmax at each step). The chain runs
  /// on the backend without host round trips (each step's input ids are the previous step's argmax, on the
  /// device); the drafts reach the host after the last step. Temporaries come from `arena`.
  [[nodiscard]] std::vector<std::vector<int32_t>> propose(ops::Backend& backend, Arena& arena,
                                                          const kv::KvCache& cache, const Tensor& target_hidden,
                                                          const Tensor& stash, std::span<const ExtendSeq> seqs,
                                                          const ProposerHooks& hooks = {}) const;

 private:

  const models::mtp::MtpDraft& draft_;
  int64_t vocab_size_;
  int64_t hidden_size_;
};

}  // namespace tandem::spec
