// The step loop: continuous batching over a paged KV cache, chunked prefill, speculative decoding with the
// MTP draft batched across requests, preemption by recompute when KV blocks run out.
//
// Threading: submit() and abort() may be called from any thread; step() runs on one thread (the engine
// thread), which also runs the output callbacks. Nothing here is global: two engines can coexist.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "engine/request.h"
#include "engine/sequence.h"
#include "kv/block_allocator.h"
#include "kv/kv_cache.h"
#include "models/loaded_model.h"

namespace tandem::engine {

struct SpecOptions {
  bool enabled = false;  // --speculative-algorithm NEXTN|EAGLE|MTP
  int num_steps = 3;     // K drafts per verify step (chain: num_draft_tokens = K + 1)
};

struct EngineOptions {
  int max_running_requests = 16;
  int64_t kv_cache_tokens = 0;      // 0: enough for max_running_requests x max_model_len, capped
  int block_size = 16;
  int64_t max_batch_tokens = 512;   // token budget of one target forward (prefill chunks fill it)
  int64_t max_model_len = 0;        // 0: the model's max_position_embeddings
  SpecOptions spec;
  /// Called before each draft forward; a test uses it to inject a failure. Empty in production.
  std::function<void()> before_draft_forward;
};

/// Process-wide counters (vLLM's spec_decode_* layout), read by /metrics.
struct EngineCounters {
  int64_t spec_num_drafts = 0;           // verify steps
  int64_t spec_num_draft_tokens = 0;
  int64_t spec_num_accepted_tokens = 0;
  std::vector<int64_t> spec_accepted_per_pos;  // [K]
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t preemptions = 0;
  int64_t forward_passes = 0;
};

struct EngineSnapshot {
  int running = 0;
  int waiting = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  EngineCounters counters;
};

class Engine {
 public:
  Engine(models::LoadedModel& model, ops::Backend& backend, const EngineOptions& options);

  /// Queues a request; returns its id. Validation errors throw tandem::Error (nothing is queued).
  uint64_t submit(GenerateRequest request, OutputCallback callback);
  /// Finishes a request with kAbort at the next step and frees its KV (no-op if already finished).
  void abort(uint64_t id);
  /// Runs one scheduling step. Returns false when there was nothing to do.
  bool step();
  /// Steps until no request is waiting or running.
  void run_until_idle();

  EngineSnapshot snapshot() const;
  const EngineOptions& options() const { return options_; }
  bool speculative() const { return spec_enabled_; }
  int64_t max_model_len() const { return max_model_len_; }
  int64_t kv_capacity_tokens() const { return allocator_.num_total() * options_.block_size; }
  size_t kv_cache_bytes() const;

 private:
  struct Scheduled {
    Sequence* seq;
    int64_t row_begin;   // first batch row
    int64_t n_rows;      // rows fed to the target
    bool samples;        // reaches the end of its pending tokens: sample / verify
    bool verify;         // rows are [newest, drafts...]
  };

  void drain_inbox();
  void admit();
  bool ensure_blocks(Sequence& s, int64_t n_tokens, std::vector<Scheduled>& sched);
  void preempt(Sequence& s);
  void finish(Sequence& s, FinishReason reason, const std::string& error = "");
  void retire(Sequence& s);
  void emit(Sequence& s, std::vector<int32_t> tokens, std::vector<TokenLogprob> lps, FinishReason reason);
  std::vector<float> processed_logits(const Sequence& s, const float* row, std::span<const int32_t> extra) const;
  TokenLogprob logprob_entry(const Sequence& s, const float* row, int32_t token) const;
  bool is_stop(const Sequence& s, int32_t token) const;
  void run_draft(std::vector<Scheduled>& sched, const Tensor& target_hidden,
                 const std::vector<int64_t>& pair_rows_begin);

  models::LoadedModel& model_;
  ops::Backend& backend_;
  EngineOptions options_;
  bool spec_enabled_ = false;
  int64_t max_model_len_ = 0;
  kv::BlockAllocator allocator_;
  std::unique_ptr<kv::KvCache> target_cache_;
  std::unique_ptr<kv::KvCache> draft_cache_;

  mutable std::mutex inbox_mu_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> abort_inbox_;
  std::atomic<uint64_t> next_id_{1};

  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;
  std::vector<std::unique_ptr<Sequence>> retired_;  // finished this step; destroyed at its end
  uint64_t admit_counter_ = 0;
  EngineCounters counters_;
  mutable std::mutex snapshot_mu_;
  EngineSnapshot snapshot_;
};

}  // namespace tandem::engine
