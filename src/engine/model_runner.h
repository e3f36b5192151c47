// Runs the target's and the draft's forward passes over the engine's batches, and owns what they run on:
// the target's and the draft's paged KV caches (one block id space, shared with the scheduler's allocator),
// the per-step arena for temporaries, and the proposer. The engine never touches backend memory directly: the logits it samples from come back
// in one device-to-host copy per forward.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "kv/kv_cache.h"
#include "engine/hidden_stash.h"
#include "models/loaded_model.h"
#include "spec/mtp_proposer.h"

namespace tandem::engine {

/// One target forward's results, on the host where the engine reads them.
struct TargetStep {
  std::vector<float> logits;   // [R, V] f32: the batch's logit rows, downloaded once
  models::ForwardOutput fwd;   // arena tensors: hidden [T, H] when captured (the draft reads it there)
};

class ModelRunner {
 public:
  /// Speculation's part of the runner: the draft's KV cache and the hidden stash of paused requests.
  struct DraftSetup {
    kv::KvCacheShape cache;
    int stash_slots = 1;           // running requests
    int64_t stash_deferred_rows = 32;
    int64_t stash_extra_rows = 1;  // K max + 1
  };
  ModelRunner(models::LoadedModel& model, ops::Backend& backend, const kv::KvCacheShape& target_shape,
              const std::optional<DraftSetup>& draft, spec::ProposerHooks hooks);

  /// Starts a step: releases the previous step's temporaries (the arena resets).
  void begin_step() { arena_.reset(); }
  /// Target forward; returns the logit rows on the host.
  [[nodiscard]] TargetStep run_target(const models::ForwardInput& in);
  /// Keeps target hidden rows of paused requests for a later extend (see HiddenStash), in one op.
  void stash_hidden(const Tensor& target_hidden, std::span<const HiddenStash::Copy> copies);
  /// Draft extend + chain over the committed pairs of this step (see spec::MtpProposer); seqs marked from_stash
  /// read their hidden rows from the stash.
  [[nodiscard]] std::vector<std::vector<int32_t>> run_draft(const Tensor& target_hidden,
                                                            std::span<const spec::ExtendSeq> seqs);
  /// The stash of paused requests' hidden rows (null without a draft).
  HiddenStash* stash() { return stash_ ? &*stash_ : nullptr; }

  size_t kv_cache_bytes() const;
  int64_t vocab_size() const { return model_.config.vocab_size; }

 private:
  models::LoadedModel& model_;
  ops::Backend& backend_;
  Arena arena_;  // the step's temporaries and outputs, on the backend's device
  std::unique_ptr<kv::KvCache> target_cache_;
  std::unique_ptr<kv::KvCache> draft_cache_;
  std::optional<spec::MtpProposer> proposer_;
  std::optional<HiddenStash> stash_;
  spec::ProposerHooks hooks_;
};

}  // namespace tandem::engine
