#include "engine/model_runner.h"

namespace tandem::engine {

ModelRunner::ModelRunner(models::LoadedModel& model, ops::Backend& backend, const kv::KvCacheShape& target_shape,
                         const std::optional<DraftSetup>& draft, spec::ProposerHooks hooks)
    : model_(model), backend_(backend), arena_(backend.allocator()), hooks_(std::move(hooks)) {
  target_cache_ = std::make_unique<kv::KvCache>(backend_, target_shape);
  if (draft) {
    TANDEM_CHECK(model_.draft != nullptr, "a draft KV cache was requested for a model without a draft");
    draft_cache_ = std::make_unique<kv::KvCache>(backend_, draft->cache);
    proposer_.emplace(*model_.draft, model_.config.vocab_size, model_.config.hidden_size);
    stash_.emplace(backend_, draft->stash_slots, draft->stash_deferred_rows, draft->stash_extra_rows,
                   model_.config.hidden_size);
  }
}

void ModelRunner::stash_hidden(const Tensor& target_hidden, std::span<const HiddenStash::Copy> copies) {
  TANDEM_CHECK(stash_.has_value(), "stash_hidden without a draft");
  stash_->write(backend_, arena_, target_hidden, copies);
}

TargetStep ModelRunner::run_target(const models::ForwardInput& in) {
  TargetStep out;
  out.fwd = model_.target->forward(backend_, arena_, *target_cache_, in);
  out.logits.resize(static_cast<size_t>(out.fwd.logits.numel()));
  if (!out.logits.empty()) backend_.to_host(out.fwd.logits, out.logits.data());
  return out;
}

std::vector<std::vector<int32_t>> ModelRunner::run_draft(const Tensor& target_hidden,
                                                         std::span<const spec::ExtendSeq> seqs) {
  TANDEM_CHECK(proposer_.has_value(), "run_draft without a draft");
  return proposer_->propose(backend_, arena_, *draft_cache_, target_hidden, stash_->pool(), seqs, hooks_);
}

size_t ModelRunner::kv_cache_bytes() const {
  return target_cache_->nbytes() + (draft_cache_ ? draft_cache_->nbytes() : 0);
}

}  // namespace tandem::engine
