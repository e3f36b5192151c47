// Which requests run in the next forward pass, and how many rows each gets. Pure host logic: admission,
// the token budget (decode and verify rows count against it, like prefill chunks), chunked prefill, KV block
// reservation and preemption by recompute. It owns the waiting and running queues; it never touches a model,
// so it is unit-tested without one (tests/unit/scheduler_test.cpp).
//
// Threading: one thread (the engine's).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "engine/sequence.h"
#include "kv/block_allocator.h"
#include "kv/prefix_cache.h"

namespace tandem::engine {

struct SchedulerOptions {
  int max_running_requests = 16;
  int64_t max_batch_tokens = 512;  // rows of one target forward: prefill chunks, decode and verify rows
  int draft_lookahead = 0;         // K_max: positions a speculative sequence reserves beyond its tokens
  /// A prefix hit whose blocks lack the draft's KV: take the whole hit and run the request without a draft state
  /// (true: the adaptive policy, which pauses drafts when they do not pay), or take only the draft-valid part.
  bool prefer_prefix_over_draft = false;
};

/// Prefix-cache lookups since start: tokens of admitted requests, and how many of them were found cached.
struct PrefixCacheCounters {
  int64_t query_tokens = 0;
  int64_t hit_tokens = 0;
};

/// One sequence's part of the next target forward.
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int64_t row_begin = 0;  // first batch row
  int64_t n_rows = 0;     // rows fed to the target: a prefill chunk, 1 (decode) or 1 + drafts (verify)
  bool samples = false;   // reaches the end of its pending tokens: sample or verify after the forward
  bool verify = false;    // rows are [newest, drafts...]
  bool decode = false;    // rows of generated tokens (decode, verify, a recompute's catch-up): these lead the batch
};

/// A request that can never run (it needs more KV than the whole cache). The engine finishes it with an error;
/// every other request keeps running.
struct SchedulerFailure {
  Sequence* seq = nullptr;
  std::string error;
};

struct Schedule {
  std::vector<ScheduledSeq> seqs;        // in batch-row order
  int64_t rows = 0;                      // total rows
  std::vector<SchedulerFailure> failed;  // finish these with kError
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  /// prefix_cache: null when prefix caching is off.
  Scheduler(const SchedulerOptions& options, kv::BlockAllocator& allocator, kv::PrefixCache* prefix_cache = nullptr);

  /// Queues a new sequence at the back of the waiting queue.
  void add(std::unique_ptr<Sequence> seq);
  /// Admits waiting sequences (FIFO) while there are slots and KV blocks, then builds the next batch: decode and
  /// verify rows first (a verify that does not fit falls back to a plain decode row, which changes no output),
  /// then prefill chunks in the remaining budget. Decode rows the budget cannot take start the next step. A sequence that needs blocks preempts the newest-admitted
  /// running sequence not yet in this batch; that one goes back to the front of the waiting queue with its KV
  /// dropped and its committed tokens kept.
  [[nodiscard]] Schedule schedule();

  /// Releases a finished sequence's KV now; the object lives until end_step() (the batch may point to it).
  void finish(Sequence& seq);
  /// Destroys the sequences finished during this step.
  void end_step();

  /// The running or waiting sequence with this id, or null.
  Sequence* find(uint64_t id);
  bool idle() const { return running_.empty() && waiting_.empty(); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int64_t preemptions() const { return preemptions_; }
  const PrefixCacheCounters& prefix_counters() const { return prefix_counters_; }
  const std::vector<std::unique_ptr<Sequence>>& running() const { return running_; }
  const kv::BlockAllocator& allocator() const { return allocator_; }
  const SchedulerOptions& options() const { return options_; }

 private:
  /// Positions a sequence must reserve at admission: its tokens plus the verify lookahead.
  int64_t admission_tokens(const Sequence& s) const;
  void admit(Schedule& out);
  /// Grows s's table to n_tokens, preempting others not yet in `sched`. False if even that is not enough.
  bool ensure_blocks(Sequence& s, int64_t n_tokens, const Schedule& sched);
  void preempt(Sequence& s);
  /// Starts a waiting sequence's block table with its cached prefix (if any). Returns the hit, in tokens.
  int64_t take_prefix(Sequence& s);
  void compact();

  SchedulerOptions options_;
  kv::BlockAllocator& allocator_;
  kv::PrefixCache* prefix_cache_;
  PrefixCacheCounters prefix_counters_;
  std::deque<std::unique_ptr<Sequence>> waiting_;
  std::vector<std::unique_ptr<Sequence>> running_;   // null slots are removed by compact()
  std::vector<std::unique_ptr<Sequence>> finished_;  // destroyed at end_step()
  size_t decode_start_ = 0;  // running_ index where the next step's decode rows start (round robin when short)
  uint64_t admit_counter_ = 0;
  int64_t preemptions_ = 0;
};

}  // namespace tandem::engine
