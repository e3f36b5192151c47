#include "engine/engine.h"

#include <algorithm>
#include <random>

#include "core/log.h"
#include "spec/verifier.h"

namespace tandem::engine {

namespace {

int64_t default_kv_tokens(const EngineOptions& o, int64_t max_model_len) {
  if (o.kv_cache_tokens > 0) return o.kv_cache_tokens;
  return std::min<int64_t>(static_cast<int64_t>(o.max_running_requests) * max_model_len, 1 << 16);
}

}  // namespace

Engine::Engine(models::LoadedModel& model, ops::Backend& backend, const EngineOptions& options)
    : model_(model),
      backend_(backend),
      options_(options),
      max_model_len_(options.max_model_len > 0 ? options.max_model_len : model.config.max_position_embeddings),
      allocator_((default_kv_tokens(options, options.max_model_len > 0 ? options.max_model_len
                                                                        : model.config.max_position_embeddings) +
                  options.block_size - 1) /
                 options.block_size) {
  if (options_.spec.enabled) {
    if (!model_.draft)
      fail("speculative decoding needs an MTP/NextN layer, but {} has none{}", model_.checkpoint->dir().string(),
           model_.checkpoint_has_mtp ? " loaded" : "");
    if (options_.spec.num_steps < 1 || options_.spec.num_steps > 16)
      fail("--speculative-num-steps must be in [1, 16], got {}", options_.spec.num_steps);
    spec_enabled_ = true;
  }
  TANDEM_CHECK(options_.max_running_requests >= 1, "--max-running-requests must be >= 1");
  TANDEM_CHECK(options_.max_batch_tokens >= 1 + options_.spec.num_steps, "max batch tokens {} too small",
               options_.max_batch_tokens);
  TANDEM_CHECK(max_model_len_ >= 2, "max model length {} too small", max_model_len_);
  if (kv_capacity_tokens() < max_model_len_ + options_.spec.num_steps + 1)
    fail("KV cache of {} tokens cannot hold one request of --max-model-len {} (raise --kv-cache-tokens)",
         kv_capacity_tokens(), max_model_len_);
  const auto& c = model_.config;
  kv::KvCacheShape shape{.n_layers = model_.target->n_kv_layers(),
                         .n_blocks = allocator_.num_total(),
                         .block_size = options_.block_size,
                         .n_kv_heads = c.num_key_value_heads,
                         .head_dim = c.head_dim};
  target_cache_ = std::make_unique<kv::KvCache>(backend_, shape);
  if (spec_enabled_) {
    shape.n_layers = model_.draft->n_kv_layers();
    const auto& a = model_.draft->layer_options().attn;
    shape.n_kv_heads = a.n_kv_heads;
    shape.head_dim = a.head_dim;
    draft_cache_ = std::make_unique<kv::KvCache>(backend_, shape);
  }
  counters_.spec_accepted_per_pos.assign(options_.spec.num_steps, 0);
  snapshot_.kv_blocks_total = allocator_.num_total();
}

size_t Engine::kv_cache_bytes() const {
  return target_cache_->nbytes() + (draft_cache_ ? draft_cache_->nbytes() : 0);
}

uint64_t Engine::submit(GenerateRequest r, OutputCallback cb) {
  const int64_t V = model_.config.vocab_size;
  if (r.prompt.empty()) fail("the prompt is empty");
  for (int32_t t : r.prompt)
    if (t < 0 || t >= V) fail("prompt token id {} is outside the vocabulary [0, {})", t, V);
  if (r.max_tokens < 1) fail("max_tokens must be >= 1, got {}", r.max_tokens);
  const int64_t need = static_cast<int64_t>(r.prompt.size()) + r.max_tokens;
  if (need > max_model_len_)
    fail("the prompt ({} tokens) plus max_tokens ({}) exceeds the maximum context length {}", r.prompt.size(),
         r.max_tokens, max_model_len_);
  if (r.top_logprobs > 20) fail("top_logprobs must be <= 20, got {}", r.top_logprobs);
  const uint64_t id = next_id_.fetch_add(1);
  const uint64_t seed = r.sampling.seed ? *r.sampling.seed : std::random_device{}() ^ (id * 0x9E3779B97F4A7C15ull);
  auto s = std::make_unique<Sequence>(id, std::move(r), std::move(cb), options_.block_size, seed);
  s->speculative = spec_enabled_ && s->req.speculative;
  std::lock_guard<std::mutex> lock(inbox_mu_);
  inbox_.push_back(std::move(s));
  return id;
}

void Engine::abort(uint64_t id) {
  std::lock_guard<std::mutex> lock(inbox_mu_);
  abort_inbox_.push_back(id);
}

void Engine::drain_inbox() {
  std::vector<std::unique_ptr<Sequence>> fresh;
  std::vector<uint64_t> aborts;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    fresh.swap(inbox_);
    aborts.swap(abort_inbox_);
  }
  for (auto& s : fresh) waiting_.push_back(std::move(s));
  for (uint64_t id : aborts) {
    for (auto& s : running_)
      if (s && s->id == id) finish(*s, FinishReason::kAbort);
    for (auto& s : waiting_)
      if (s && s->id == id) finish(*s, FinishReason::kAbort);
  }
  std::erase_if(running_, [](const auto& s) { return !s; });
  std::erase_if(waiting_, [](const auto& s) { return !s; });
  retired_.clear();
}

void Engine::finish(Sequence& s, FinishReason reason, const std::string& error) {
  RequestOutput out;
  out.request_id = s.id;
  out.finish = reason;
  out.error = error;
  out.prompt_tokens = s.n_prompt;
  out.completion_tokens = s.n_output();
  out.spec = s.spec;
  if (s.callback) s.callback(out);
  retire(s);
}

void Engine::retire(Sequence& s) {
  // Frees the KV now; the object itself lives until the end of the step (the batch may still point to it).
  s.blocks.release(allocator_);
  s.callback = nullptr;
  for (auto& p : running_)
    if (p.get() == &s) retired_.push_back(std::move(p));
  for (auto& p : waiting_)
    if (p.get() == &s) retired_.push_back(std::move(p));
}

void Engine::admit() {
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_running_requests) {
    Sequence& s = *waiting_.front();
    const int64_t extra = s.speculative ? options_.spec.num_steps + 1 : 1;
    if (!s.blocks.ensure(allocator_, static_cast<int64_t>(s.tokens.size()) + extra)) {
      if (running_.empty())
        fail("request {} needs more KV blocks than the whole cache has ({} tokens)", s.id, kv_capacity_tokens());
      return;  // wait for running requests to free blocks
    }
    s.admit_order = ++admit_counter_;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
}

void Engine::preempt(Sequence& s) {
  // Recompute later: drop all KV, keep the committed tokens, requeue at the front.
  s.blocks.release(allocator_);
  s.n_cached = 0;
  s.n_draft_cached = 0;
  s.drafts.clear();
  ++counters_.preemptions;
  for (auto& p : running_)
    if (p.get() == &s) {
      waiting_.push_front(std::move(p));
      p.reset();
    }
}

bool Engine::ensure_blocks(Sequence& s, int64_t n_tokens, std::vector<Scheduled>& sched) {
  while (!s.blocks.ensure(allocator_, n_tokens)) {
    // Preempt the newest-admitted running sequence that is not yet scheduled in this batch.
    Sequence* victim = nullptr;
    for (auto& p : running_) {
      if (!p || p.get() == &s) continue;
      const bool scheduled = std::any_of(sched.begin(), sched.end(), [&](const Scheduled& x) { return x.seq == p.get(); });
      if (scheduled) continue;
      if (!victim || p->admit_order > victim->admit_order) victim = p.get();
    }
    if (!victim) return false;
    preempt(*victim);
  }
  return true;
}

bool Engine::is_stop(const Sequence& s, int32_t token) const {
  if (std::find(s.req.stop_token_ids.begin(), s.req.stop_token_ids.end(), token) != s.req.stop_token_ids.end())
    return true;
  if (s.req.ignore_eos) return false;
  const auto& eos = model_.config.eos_token_ids;
  return std::find(eos.begin(), eos.end(), token) != eos.end();
}

std::vector<float> Engine::processed_logits(const Sequence& s, const float* row,
                                            std::span<const int32_t> extra) const {
  std::vector<float> logits(row, row + model_.config.vocab_size);
  if (s.req.sampling.has_penalties()) {
    if (extra.empty()) {
      sampling::apply_penalties(logits, s.req.sampling, s.history);
    } else {
      sampling::TokenHistory h = s.history;
      for (int32_t t : extra) ++h.output_counts[t];
      sampling::apply_penalties(logits, s.req.sampling, h);
    }
  }
  return logits;
}

TokenLogprob Engine::logprob_entry(const Sequence& s, const float* row, int32_t token) const {
  const int64_t V = model_.config.vocab_size;
  std::vector<float> lp(V);
  sampling::log_softmax(std::span<const float>(row, V), lp);
  TokenLogprob e{.id = token, .logprob = lp[token], .top = {}};
  if (s.req.top_logprobs > 0) e.top = sampling::top_k_entries(lp, s.req.top_logprobs);
  return e;
}

void Engine::emit(Sequence& s, std::vector<int32_t> tokens, std::vector<TokenLogprob> lps, FinishReason reason) {
  RequestOutput out;
  out.request_id = s.id;
  out.new_tokens = std::move(tokens);
  out.logprobs = std::move(lps);
  out.finish = reason;
  out.prompt_tokens = s.n_prompt;
  out.completion_tokens = s.n_output();
  out.spec = s.spec;
  if (s.callback) s.callback(out);
}

bool Engine::step() {
  drain_inbox();
  admit();
  if (running_.empty()) {
    std::lock_guard<std::mutex> lock(snapshot_mu_);
    snapshot_.running = 0;
    snapshot_.waiting = static_cast<int>(waiting_.size());
    snapshot_.kv_blocks_used = allocator_.num_used();
    snapshot_.counters = counters_;
    return false;
  }

  // 1. Schedule: decode / verify rows first, then prefill chunks within the token budget.
  std::vector<Scheduled> sched;
  int64_t budget = options_.max_batch_tokens, rows = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < running_.size(); ++i) {
      if (!running_[i]) continue;
      Sequence& s = *running_[i];
      const bool decode = s.n_pending() == 1 && s.n_output() > 0;
      if ((pass == 0) != decode) continue;
      int64_t n = decode ? 1 + static_cast<int64_t>(s.drafts.size()) : std::min(s.n_pending(), budget);
      if (n <= 0) continue;
      bool fits = ensure_blocks(s, s.n_cached + n, sched);
      if (!fits && decode && !s.drafts.empty()) {  // fall back to a plain decode row (output is unchanged)
        s.drafts.clear();
        n = 1;
        fits = ensure_blocks(s, s.n_cached + n, sched);
      }
      if (!fits) {
        if (sched.empty()) finish(s, FinishReason::kError, "the KV cache cannot hold this request");
        else preempt(s);
        continue;
      }
      // A verify pass always samples; a prefill chunk samples when it reaches the newest token.
      const bool verify = decode && n > 1;
      sched.push_back(Scheduled{&s, rows, n, verify || s.n_cached + n == static_cast<int64_t>(s.tokens.size()), verify});
      rows += n;
      budget -= n;
    }
  }
  std::erase_if(running_, [](const auto& s) { return !s; });
  if (sched.empty()) return !running_.empty() || !waiting_.empty();

  // 2. Assemble the batch.
  std::vector<int32_t> tokens(rows), positions(rows), logit_rows;
  std::vector<ops::SeqSlice> slices;
  std::vector<int64_t> logit_begin(sched.size(), -1);
  for (size_t k = 0; k < sched.size(); ++k) {
    const Scheduled& sc = sched[k];
    Sequence& s = *sc.seq;
    for (int64_t j = 0; j < sc.n_rows; ++j) {
      const int64_t pos = s.n_cached + j;
      tokens[sc.row_begin + j] = sc.verify && j > 0 ? s.drafts[j - 1] : s.tokens[pos];
      positions[sc.row_begin + j] = static_cast<int32_t>(pos);
    }
    slices.push_back(ops::SeqSlice{.token_begin = sc.row_begin,
                                   .n_tokens = static_cast<int32_t>(sc.n_rows),
                                   .start_pos = static_cast<int32_t>(s.n_cached),
                                   .block_table = s.blocks.blocks().data()});
    if (sc.samples) {
      logit_begin[k] = static_cast<int64_t>(logit_rows.size());
      const int64_t first = sc.verify ? 0 : sc.n_rows - 1;
      for (int64_t j = first; j < sc.n_rows; ++j) logit_rows.push_back(static_cast<int32_t>(sc.row_begin + j));
    }
  }
  const bool any_spec = std::any_of(sched.begin(), sched.end(), [](const Scheduled& x) { return x.seq->speculative; });

  models::ForwardOutput fwd;
  try {
    fwd = model_.target->forward(backend_, *target_cache_,
                                 models::ForwardInput{.tokens = tokens,
                                                      .positions = positions,
                                                      .seqs = slices,
                                                      .logit_rows = logit_rows,
                                                      .capture_hidden = any_spec});
  } catch (const std::exception& e) {
    log::error("target forward failed: {}; failing the {} requests of this batch", e.what(), sched.size());
    for (auto& sc : sched) finish(*sc.seq, FinishReason::kError, std::string("target forward failed: ") + e.what());
    std::erase_if(running_, [](const auto& s) { return !s; });
    retired_.clear();
    return true;
  }
  ++counters_.forward_passes;
  const int64_t V = model_.config.vocab_size;
  const float* logits = fwd.logits.ptr<float>();

  // 3. Sample / verify, commit, stop.
  std::vector<int64_t> pair_rows(sched.size(), 0);  // target rows whose hidden pairs with a committed token
  for (size_t k = 0; k < sched.size(); ++k) {
    Scheduled& sc = sched[k];
    Sequence& s = *sc.seq;
    if (!sc.samples) {
      s.n_cached += sc.n_rows;
      pair_rows[k] = sc.n_rows;
      counters_.prompt_tokens += sc.n_rows;
      continue;
    }
    const float* base = logits + logit_begin[k] * V;
    std::vector<int32_t> emitted;
    int accepted = 0;
    if (sc.verify) {
      auto row_fn = [&](int j, std::span<const int32_t> so_far) {
        return processed_logits(s, base + static_cast<int64_t>(j) * V, so_far);
      };
      const spec::VerifyResult vr = spec::verify_chain(row_fn, s.drafts, s.req.sampling, s.rng);
      emitted = vr.tokens;
      accepted = vr.accepted;
      const int K = static_cast<int>(s.drafts.size());
      s.spec.verify_steps += 1;
      s.spec.draft_tokens += K;
      s.spec.accepted_tokens += accepted;
      s.spec.accepted_per_step.push_back(accepted);
      counters_.spec_num_drafts += 1;
      counters_.spec_num_draft_tokens += K;
      counters_.spec_num_accepted_tokens += accepted;
      for (int j = 0; j < accepted && j < static_cast<int>(counters_.spec_accepted_per_pos.size()); ++j)
        ++counters_.spec_accepted_per_pos[j];
    } else {
      if (s.n_output() == 0) counters_.prompt_tokens += sc.n_rows;
      const std::vector<float> row = processed_logits(s, base, {});
      emitted.push_back(sampling::sample(row, s.req.sampling, s.rng));
    }
    // The verify pass committed the newest token plus the accepted drafts; prefill commits all its rows.
    const int64_t committed_rows = sc.verify ? accepted + 1 : sc.n_rows;
    s.n_cached += committed_rows;
    pair_rows[k] = committed_rows;
    s.drafts.clear();

    std::vector<int32_t> out;
    std::vector<TokenLogprob> lps;
    FinishReason reason = FinishReason::kNone;
    for (size_t j = 0; j < emitted.size(); ++j) {
      const int32_t t = emitted[j];
      if (s.req.top_logprobs >= 0) {
        const float* row = sc.verify ? base + static_cast<int64_t>(j) * V : base;
        lps.push_back(logprob_entry(s, row, t));
      }
      s.tokens.push_back(t);
      ++s.history.output_counts[t];
      out.push_back(t);
      ++counters_.generation_tokens;
      if (is_stop(s, t)) reason = FinishReason::kStop;
      else if (s.n_output() >= s.req.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_model_len_)
        reason = FinishReason::kLength;
      if (reason != FinishReason::kNone) break;
    }
    // Roll back KV of rejected drafts: keep only blocks that cover committed positions.
    s.blocks.truncate(allocator_, static_cast<int64_t>(s.tokens.size()));
    emit(s, std::move(out), std::move(lps), reason);
    if (reason != FinishReason::kNone) retire(s);
  }

  // 4. Draft: extend the draft's KV over newly committed positions, then chain K proposals.
  if (any_spec) {
    try {
      run_draft(sched, fwd.hidden.view(), pair_rows);
    } catch (const std::exception& e) {
      log::error("draft forward failed: {}; failing the speculative requests of this batch", e.what());
      for (auto& sc : sched)
        if (sc.seq && sc.seq->speculative && sc.seq->callback)
          finish(*sc.seq, FinishReason::kError, std::string("draft forward failed: ") + e.what());
    }
  }
  std::erase_if(running_, [](const auto& s) { return !s; });
  retired_.clear();

  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_.running = static_cast<int>(running_.size());
  snapshot_.waiting = static_cast<int>(waiting_.size());
  snapshot_.kv_blocks_used = allocator_.num_used();
  snapshot_.counters = counters_;
  return true;
}

void Engine::run_draft(std::vector<Scheduled>& sched, const Tensor& target_hidden,
                       const std::vector<int64_t>& pair_rows) {
  const int64_t H = model_.config.hidden_size;
  const int K = options_.spec.num_steps;
  // Extend pass: for each live speculative sequence, pairs (h_pos, token_{pos+1}) for its committed rows.
  std::vector<int32_t> tokens, positions, gather, logit_rows;
  std::vector<ops::SeqSlice> slices;
  std::vector<Sequence*> proposers;
  for (size_t k = 0; k < sched.size(); ++k) {
    Scheduled& sc = sched[k];
    Sequence* s = sc.seq;
    if (!s->callback || !s->speculative || pair_rows[k] == 0) continue;  // finished or plain
    // Propose only once the whole pending input is committed (end of prefill, or after a verify). Grow the
    // block table first: the slice below keeps a pointer into it.
    const bool propose = sc.samples && s->blocks.ensure(allocator_, static_cast<int64_t>(s->tokens.size()) + K);
    const int64_t begin = static_cast<int64_t>(tokens.size());
    const int64_t first_pos = s->n_draft_cached;
    for (int64_t j = 0; j < pair_rows[k]; ++j) {
      const int64_t pos = first_pos + j;
      tokens.push_back(s->tokens[pos + 1]);
      positions.push_back(static_cast<int32_t>(pos));
      gather.push_back(static_cast<int32_t>(sc.row_begin + j));
    }
    slices.push_back(ops::SeqSlice{.token_begin = begin,
                                   .n_tokens = static_cast<int32_t>(pair_rows[k]),
                                   .start_pos = static_cast<int32_t>(first_pos),
                                   .block_table = s->blocks.blocks().data()});
    s->n_draft_cached = first_pos + pair_rows[k];
    if (propose) {
      logit_rows.push_back(static_cast<int32_t>(tokens.size() - 1));
      proposers.push_back(s);
    }
  }
  if (tokens.empty()) return;
  if (options_.before_draft_forward) options_.before_draft_forward();
  const int64_t T = static_cast<int64_t>(tokens.size());
  Buffer hidden = backend_.alloc(DType::kF32, {T, H});  // [T, H] target post-norm hidden of the pairs
  backend_.gather_rows(target_hidden, gather, hidden.view());
  models::ForwardOutput out = model_.draft->forward(
      backend_, *draft_cache_,
      models::mtp::DraftInput{.tokens = tokens, .hidden = hidden.view(), .positions = positions, .seqs = slices,
                              .logit_rows = logit_rows});
  if (proposers.empty()) return;

  const int64_t V = model_.config.vocab_size, P = static_cast<int64_t>(proposers.size());
  Buffer h_prev = backend_.alloc(DType::kF32, {P, H});  // [P, H] h' of each proposer's last draft row
  backend_.gather_rows(out.hidden.view(), logit_rows, h_prev.view());
  for (int64_t p = 0; p < P; ++p)
    proposers[p]->drafts.push_back(sampling::argmax(std::span<const float>(out.logits.ptr<float>() + p * V, V)));

  // Chain: step j feeds (h'_{previous}, x_{j-1}) at the next position.
  std::vector<int32_t> all_rows(P);
  for (int64_t p = 0; p < P; ++p) all_rows[p] = static_cast<int32_t>(p);
  for (int j = 1; j < K; ++j) {
    std::vector<int32_t> ctoks(P), cpos(P);
    std::vector<ops::SeqSlice> cs(P);
    for (int64_t p = 0; p < P; ++p) {
      Sequence* s = proposers[p];
      ctoks[p] = s->drafts.back();
      cpos[p] = static_cast<int32_t>(s->tokens.size() - 2 + j);
      cs[p] = ops::SeqSlice{.token_begin = p, .n_tokens = 1, .start_pos = cpos[p],
                            .block_table = s->blocks.blocks().data()};
    }
    if (options_.before_draft_forward) options_.before_draft_forward();
    models::ForwardOutput step = model_.draft->forward(
        backend_, *draft_cache_,
        models::mtp::DraftInput{.tokens = ctoks, .hidden = h_prev.view(), .positions = cpos, .seqs = cs,
                                .logit_rows = all_rows});
    for (int64_t p = 0; p < P; ++p)
      proposers[p]->drafts.push_back(sampling::argmax(std::span<const float>(step.logits.ptr<float>() + p * V, V)));
    h_prev = std::move(step.hidden);
  }
}

void Engine::run_until_idle() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      if (inbox_.empty() && abort_inbox_.empty() && waiting_.empty() && running_.empty()) return;
    }
    step();
  }
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

}  // namespace tandem::engine
