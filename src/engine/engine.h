// The step loop: continuous batching over a paged KV cache, chunked prefill, speculative decoding with the
// MTP draft batched across requests, preemption by recompute when KV blocks run out. The pieces: Scheduler
// (which rows run), ModelRunner (forwards, KV caches, proposer), spec/ (policy, verifier, statistics),
// sampling/ (counter-based sampling); this class holds the loop, batch assembly and the commit.
//
// Threading: submit() and abort() may be called from any thread; step() runs on one thread (the engine
// thread), which also runs the output callbacks. Nothing here is global: two engines can coexist.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/model_runner.h"
#include "engine/request.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "kv/block_allocator.h"
#include "kv/kv_cache.h"
#include "kv/prefix_cache.h"
#include "models/loaded_model.h"
#include "spec/adaptive_controller.h"
#include "spec/collapse_alarm.h"
#include "spec/policy.h"
#include "spec/verifier.h"

namespace tandem::engine {

enum class SpecPolicyKind { kFixed, kAdaptive };

struct SpecOptions {
  bool enabled = false;  // --speculative-algorithm NEXTN|EAGLE|MTP
  int num_steps = 3;     // fixed: K drafts per verify step (chain: num_draft_tokens = K + 1); adaptive: K max
  SpecPolicyKind policy = SpecPolicyKind::kFixed;  // --speculative-policy (the CLI's default is adaptive)
  /// Tests: replaces the policy with spec::ScriptedK (the K of each draft decision, cycled).
  std::vector<int> scripted_k;
  /// `tandem bench` only: accept draft j with conditional probability a[min(j, size) - 1] instead of verifying
  /// it (vLLM's synthetic rejection mode). Output is then not the target's.
  std::vector<double> synthetic_acceptance;
  /// The adaptive policy's cost table: measured at start-up when empty (tests may pass their own).
  spec::CostTable costs;
  bool refine_costs = true;  // refine the cost table from timed steps (tests pin a table by turning this off)
  int collapse_window = 64;  // verify steps the collapse alarm averages over
};

struct EngineOptions {
  int max_running_requests = 16;
  int64_t kv_cache_tokens = 0;      // 0: sized from the memory budget (kv_cache_memory / mem_fraction)
  int block_size = 16;
  int64_t max_batch_tokens = 512;   // token budget of one target forward (prefill chunks fill it)
  int64_t max_model_len = 0;        // 0: the model's max_position_embeddings; lowered if the KV cache is short
  DType kv_cache_dtype = DType::kBF16;  // --kv-cache-dtype: kBF16 (auto), kF8E4M3 or kF32
  size_t kv_cache_memory = 0;       // --kv-cache-memory: bytes for K/V; 0: mem_fraction of MemAvailable
  double mem_fraction = 0.9;        // --mem-fraction: share of MemAvailable for weights, workspace and K/V
  SpecOptions spec;
  /// Automatic prefix caching of target and draft KV (kv/prefix_cache.h); the CLI's default is on.
  bool enable_prefix_caching = false;
  /// Called before each draft forward; a test uses it to inject a failure. Empty in production.
  std::function<void()> before_draft_forward;
};

/// Process-wide counters (vLLM's spec_decode_* layout), read by /metrics.
struct EngineCounters {
  int64_t spec_num_drafts = 0;           // verify steps
  int64_t spec_num_draft_tokens = 0;
  int64_t spec_num_accepted_tokens = 0;  // drafts accepted and emitted
  int64_t spec_completion_tokens = 0;    // tokens emitted to speculative requests (accept length numerator)
  std::vector<int64_t> spec_accepted_per_pos;  // [K]
  int spec_collapsed = 0;                // 1 while the collapse alarm is on (spec/collapse_alarm.h)
  double spec_window_accept_length = 0;  // accept length over the alarm's window of recent verify steps
  int64_t prompt_tokens = 0;
  int64_t generation_tokens = 0;
  int64_t preemptions = 0;
  int64_t forward_passes = 0;
  int64_t prefix_cache_query_tokens = 0;  // tokens of admitted requests looked up in the prefix cache
  int64_t prefix_cache_hit_tokens = 0;    // ... and found there
};

struct EngineSnapshot {
  int running = 0;
  int waiting = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_cached = 0;  // unused blocks the prefix cache holds (free for allocation, evicted on demand)
  EngineCounters counters;
};

class Engine {
 public:
  Engine(models::LoadedModel& model, ops::Backend& backend, const EngineOptions& options);

  /// Queues a request; returns its id. Validation errors throw tandem::Error (nothing is queued).
  uint64_t submit(GenerateRequest request, OutputCallback callback);
  /// Finishes a request with kAbort at the next step and frees its KV (no-op if already finished).
  void abort(uint64_t id);
  /// Asks the engine thread to drop every prefix-cache key at its next step (/flush_cache). Thread-safe. Returns
  /// the ticket prefix_cache_flushes() reaches once it has run.
  uint64_t flush_prefix_cache() { return flush_requests_.fetch_add(1) + 1; }
  /// Flush requests the engine thread has carried out (flush_prefix_cache() returns before they run).
  uint64_t prefix_cache_flushes() const { return flushes_done_.load(); }
  bool prefix_caching() const { return prefix_cache_ != nullptr; }
  /// Runs one scheduling step. Returns false when there was nothing to do.
  bool step();
  /// Steps until no request is waiting or running.
  void run_until_idle();

  EngineSnapshot snapshot() const;
  const EngineOptions& options() const { return options_; }
  bool speculative() const { return spec_enabled_; }
  int64_t max_model_len() const { return max_model_len_; }
  int64_t kv_capacity_tokens() const { return allocator_.num_total() * options_.block_size; }
  size_t kv_cache_bytes() const { return runner_->kv_cache_bytes(); }
  /// The adaptive policy's state (null for the other policies). Engine thread only.
  const spec::AdaptiveController* adaptive() const { return adaptive_ ? &*adaptive_ : nullptr; }

 private:
  /// Host copy of the batch a target forward runs (engine/batch assembly).
  struct Batch {
    std::vector<int32_t> tokens;       // [T]
    std::vector<int32_t> positions;    // [T]
    std::vector<ops::SeqSlice> slices;
    std::vector<int32_t> logit_rows;   // rows whose logits are sampled
    std::vector<int64_t> logit_begin;  // per scheduled seq: its first logit row, or -1
    int64_t decode_rows = 0;           // leading rows of decode-pass seqs (exact linears, ops::BatchDesc)
  };

  void drain_inbox();
  Batch assemble(const Schedule& sched) const;
  /// Samples or verifies one scheduled sequence from its logit rows, commits and emits. Returns the number of
  /// target rows whose hidden states pair with a committed token (for the draft's extend pass).
  int64_t commit(const ScheduledSeq& sc, const float* logits);
  /// Proposes the next step's drafts (or keeps the hidden rows of requests paused at K = 0). Returns the K the
  /// policy chose for the batch (-1 when nothing drafted).
  int run_draft(const Schedule& sched, const Tensor& target_hidden, const std::vector<int64_t>& pair_rows);
  /// The policy's draft count for one request (before the budget cap); batch_k is the adaptive choice.
  int wanted_drafts(Sequence& s, int batch_k);
  /// Verify outcome under --speculative-synthetic-acceptance: the leading drafts accepted at the given rates.
  spec::VerifyResult synthetic_verify(Sequence& s, const float* base);
  /// Publishes a sequence's newly computed full blocks (target and draft KV) to the prefix cache.
  void publish_prefix(Sequence& s);
  void retire(Sequence& s);  // releases engine-side resources of a finished request, then the scheduler's
  void finish(Sequence& s, FinishReason reason, const std::string& error = "");
  void emit(Sequence& s, std::vector<int32_t> tokens, std::vector<TokenLogprob> lps, FinishReason reason);
  std::vector<float> processed_logits(const Sequence& s, const float* row, std::span<const int32_t> extra) const;
  TokenLogprob logprob_entry(const Sequence& s, const float* row, int32_t token) const;
  bool is_stop(const Sequence& s, int32_t token) const;
  void publish_snapshot();

  models::LoadedModel& model_;
  ops::Backend& backend_;
  EngineOptions options_;
  bool spec_enabled_ = false;
  spec::SpecPolicy policy_;
  std::optional<spec::AdaptiveController> adaptive_;
  std::mt19937_64 synthetic_rng_{0x5eed};  // --speculative-synthetic-acceptance draws
  int64_t admitted_while_paused_ = 0;      // new speculative requests that arrived while the policy drafted nothing
  int64_t max_model_len_ = 0;
  kv::BlockAllocator allocator_;
  std::unique_ptr<kv::PrefixCache> prefix_cache_;  // null: prefix caching off
  std::atomic<uint64_t> flush_requests_{0};
  std::atomic<uint64_t> flushes_done_{0};
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;

  mutable std::mutex inbox_mu_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  std::vector<uint64_t> abort_inbox_;
  std::atomic<uint64_t> next_id_{1};

  EngineCounters counters_;
  spec::CollapseAlarm collapse_alarm_;
  mutable std::mutex snapshot_mu_;
  EngineSnapshot snapshot_;
};

}  // namespace tandem::engine
