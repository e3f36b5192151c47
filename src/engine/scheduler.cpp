#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace tandem::engine {

Scheduler::Scheduler(const SchedulerOptions& options, kv::BlockAllocator& allocator, kv::PrefixCache* prefix_cache)
    : options_(options), allocator_(allocator), prefix_cache_(prefix_cache) {
  TANDEM_CHECK(options_.max_running_requests >= 1, "--max-running-requests must be >= 1");
  TANDEM_CHECK(options_.max_batch_tokens >= 1, "max batch tokens must be >= 1");
}

void Scheduler::add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

int64_t Scheduler::admission_tokens(const Sequence& s) const {
  return static_cast<int64_t>(s.tokens.size()) + (s.speculative ? options_.draft_lookahead + 1 : 1);
}

void Scheduler::admit(Schedule& out) {
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_running_requests) {
    Sequence& s = *waiting_.front();
    const int64_t need = admission_tokens(s);
    if (s.blocks.blocks_needed(need) > allocator_.num_total()) {
      out.failed.push_back({&s, fmt::format("the request needs {} KV positions but the whole cache has {} "
                                            "(lower max_tokens, shorten the prompt, or give the KV cache more memory)",
                                            need, allocator_.num_total() * s.blocks.block_size())});
      finished_.push_back(std::move(waiting_.front()));  // the engine reports the error, then finish()es it
      waiting_.pop_front();
      continue;
    }
    const bool was_dropped = s.draft_dropped, was_decided = s.draft_decided;
    const int64_t hit = prefix_cache_ && s.blocks.blocks().empty() ? take_prefix(s) : 0;
    if (!s.blocks.ensure(allocator_, need)) {  // wait for running requests to free blocks
      s.blocks.release(allocator_);            // the hit goes back to the cache
      s.n_cached = s.n_draft_cached = 0;
      s.prefix = {};
      s.draft_dropped = was_dropped;
      s.draft_decided = was_decided;
      return;
    }
    if (prefix_cache_) {
      prefix_counters_.query_tokens += static_cast<int64_t>(s.tokens.size());
      prefix_counters_.hit_tokens += hit;
    }
    if (!s.admitted_once) s.cached_tokens = std::min(hit, s.n_prompt);
    s.admitted_once = true;
    s.admit_order = ++admit_counter_;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

int64_t Scheduler::take_prefix(Sequence& s) {
  const kv::PrefixMatch m = prefix_cache_->match(s.tokens, s.n_prompt);
  auto h = static_cast<int64_t>(m.blocks.size());
  const bool wants_draft = s.speculative && !s.draft_dropped;
  bool keep_draft = wants_draft;
  // The draft needs its KV for every reused position. Give up at most one block of the hit for it (the chain's last
  // block, when the token after it differs); beyond that, the adaptive policy prefers the hit over the draft state.
  if (wants_draft && m.draft_blocks < h) {
    if (options_.prefer_prefix_over_draft && m.draft_blocks < h - 1) keep_draft = false;
    else h = m.draft_blocks;
  }
  if (h == 0) return 0;
  s.blocks.adopt(allocator_, std::span<const int32_t>(m.blocks.data(), static_cast<size_t>(h)));
  const int64_t tokens = h * s.blocks.block_size();
  s.n_cached = tokens;
  s.prefix.keys.assign(m.keys.begin(), m.keys.begin() + h);
  if (keep_draft) {
    s.n_draft_cached = tokens;
    s.prefix.draft_blocks = h;
  } else if (wants_draft) {  // decodes plainly to its end, like a request the adaptive policy dropped
    s.draft_dropped = true;
    s.draft_decided = true;
  }
  return tokens;
}

void Scheduler::preempt(Sequence& s) {
  // Recompute later: drop all KV, keep the committed tokens, requeue at the front.
  s.blocks.release(allocator_);
  s.n_cached = 0;
  s.n_draft_cached = 0;
  s.n_stashed = 0;
  s.prefix = {};
  s.drafts.clear();
  ++preemptions_;
  for (auto& p : running_)
    if (p.get() == &s) {
      waiting_.push_front(std::move(p));
      p.reset();
    }
}

bool Scheduler::ensure_blocks(Sequence& s, int64_t n_tokens, const Schedule& sched) {
  while (!s.blocks.ensure(allocator_, n_tokens)) {
    Sequence* victim = nullptr;
    for (auto& p : running_) {
      if (!p || p.get() == &s) continue;
      const bool in_batch =
          std::any_of(sched.seqs.begin(), sched.seqs.end(), [&](const ScheduledSeq& x) { return x.seq == p.get(); });
      if (in_batch) continue;
      if (!victim || p->admit_order > victim->admit_order) victim = p.get();
    }
    if (!victim) return false;
    preempt(*victim);
  }
  return true;
}

Schedule Scheduler::schedule() {
  Schedule out;
  admit(out);
  int64_t budget = options_.max_batch_tokens;
  const size_t n_running = running_.size();
  size_t deferred = n_running;  // first decode the budget could not take (it starts the next step)
  // Pass 0: rows of generated tokens (decode / verify, and the catch-up of a recomputed request's output once its
  // prompt is back), which lead the batch and run on the backend's exact path (ops::StepState::decode_rows) as
  // they did when first decoded; pass 1: prompt chunks.
  for (int pass = 0; pass < 2; ++pass) {
    const size_t start = pass == 0 && decode_start_ < n_running ? decode_start_ : 0;
    for (size_t j = 0; j < n_running; ++j) {
      const size_t i = (start + j) % n_running;
      if (!running_[i]) continue;
      Sequence& s = *running_[i];
      const bool generated = s.n_output() > 0 && s.n_cached >= s.n_prompt;  // only generated tokens pending
      const bool decode = generated && s.n_pending() == 1;
      if ((pass == 0) != generated) continue;
      if (budget <= 0) {
        if (pass == 0 && deferred == n_running) deferred = i;
        continue;
      }
      int64_t n = decode ? 1 + static_cast<int64_t>(s.drafts.size()) : std::min(s.n_pending(), budget);
      if (!generated) n = std::min(n, s.n_prompt - s.n_cached);  // a recompute's prompt chunk stops at the prompt
      if (decode && n > budget) {  // the budget cannot take the verify rows: decode plainly
        s.drafts.clear();
        n = 1;
      }
      bool fits = ensure_blocks(s, s.n_cached + n, out);
      if (!fits && decode && !s.drafts.empty()) {  // no blocks for the drafts: decode plainly
        s.drafts.clear();
        n = 1;
        fits = ensure_blocks(s, s.n_cached + n, out);
      }
      if (!fits) {
        if (out.seqs.empty()) {
          out.failed.push_back({&s, "the KV cache cannot hold this request"});
          s.blocks.release(allocator_);
          finished_.push_back(std::move(running_[i]));
        } else {
          preempt(s);
        }
        continue;
      }
      const bool verify = decode && n > 1;
      const bool samples = verify || s.n_cached + n == static_cast<int64_t>(s.tokens.size());
      out.seqs.push_back(ScheduledSeq{.seq = &s, .row_begin = out.rows, .n_rows = n, .samples = samples,
                                      .verify = verify, .decode = generated});
      out.rows += n;
      budget -= n;
    }
  }
  // Decodes the budget could not take go first next step, so none waits for ever; the index is kept only
  // when nothing left the running list (compact() below would shift it).
  decode_start_ = deferred;
  compact();
  if (running_.size() != n_running) decode_start_ = 0;
  return out;
}

void Scheduler::finish(Sequence& s) {
  s.blocks.release(allocator_);
  s.callback = nullptr;
  for (auto& p : running_)
    if (p.get() == &s) finished_.push_back(std::move(p));
  for (auto& p : waiting_)
    if (p.get() == &s) finished_.push_back(std::move(p));
}

void Scheduler::compact() {
  std::erase_if(running_, [](const auto& s) { return !s; });
  std::erase_if(waiting_, [](const auto& s) { return !s; });
}

void Scheduler::end_step() {
  compact();
  finished_.clear();
}

Sequence* Scheduler::find(uint64_t id) {
  for (auto& s : running_)
    if (s && s->id == id) return s.get();
  for (auto& s : waiting_)
    if (s && s->id == id) return s.get();
  return nullptr;
}

}  // namespace tandem::engine
