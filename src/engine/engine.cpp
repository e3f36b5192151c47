#include "engine/engine.h"

#include <algorithm>
#include <fstream>
#include <random>

#include "core/log.h"
#include "kv/kv_dtype.h"
#include "models/kv_scales.h"
#include "models/memory_plan.h"
#include "spec/verifier.h"

namespace tandem::engine {

namespace {

/// KV cache capacity in blocks, from the options and the memory plan (models::size_kv_cache); lowers
/// max_model_len when one request of it does not fit, and logs the plan at start-up. The host memory a
/// budget starts from is MemAvailable plus the weight buffers this process already converted (MemAvailable
/// no longer counts them, and the weights are subtracted as a whole). On a GPU the weights are already in
/// device memory: the budget is the free device memory plus the weights (subtracted again by the plan).
int64_t plan_kv_blocks(const models::LoadedModel& m, ops::Backend& be, const EngineOptions& o,
                       int64_t& max_model_len) {
  const bool draft = o.spec.enabled && m.draft;
  const size_t elem = dtype_size(o.kv_cache_dtype);
  size_t per_token = 2ull * m.config.num_key_value_heads * m.config.head_dim * elem * m.target->n_kv_layers();
  size_t scale_floats = 2ull * m.config.num_key_value_heads * m.target->n_kv_layers();  // fp8: k, v scales
  if (draft) {
    const auto& a = m.draft->layer_options().attn;
    per_token += 2ull * a.n_kv_heads * a.head_dim * elem * m.draft->n_kv_layers();
    scale_floats += 2ull * a.n_kv_heads * m.draft->n_kv_layers();
  }
  const bool fp8 = o.kv_cache_dtype == DType::kF8E4M3;
  models::KvBudgetRequest r{.kv_cache_tokens = o.kv_cache_tokens,
                            .kv_cache_memory = o.kv_cache_memory,
                            .mem_fraction = o.mem_fraction,
                            .weight_bytes = m.resident_weight_bytes(),
                            .kv_bytes_per_token = per_token,
                            .kv_fixed_bytes = fp8 ? scale_floats * sizeof(float) : 0,
                            .block_size = o.block_size,
                            .max_running_requests = std::max(o.max_running_requests, 1),
                            .max_model_len = max_model_len,
                            .request_slack = std::max(o.spec.num_steps, 0) + 1};
  r.workspace_bytes = models::estimate_workspace_bytes(
      m.config, {.kv_dtype = o.kv_cache_dtype,
                 .with_draft = draft,
                 .block_size = o.block_size,
                 .max_running_requests = r.max_running_requests,
                 .max_batch_tokens = std::max<int64_t>(o.max_batch_tokens, 1),
                 .spec_num_steps = std::max(o.spec.num_steps, 0)});
  if (o.kv_cache_tokens <= 0 && o.kv_cache_memory == 0) {
    const size_t avail = be.available_memory_bytes();
    if (avail == 0)
      fail("cannot tell how much memory {} has free to size the KV cache; pass --kv-cache-memory or "
           "--kv-cache-tokens", be.name());
    if (be.device().kind == DeviceKind::kCuda) {
      r.host_available = avail + r.weight_bytes;
    } else {
      size_t owned = 0;
      for (const auto& b : m.owned) owned += b.tensor().nbytes();
      r.host_available = avail + owned;
    }
  }
  const models::KvBudget b = models::size_kv_cache(r);
  log::info("memory plan: weights {} resident, KV {} per token ({} x {} layers{}), {} -> {} tokens",
            models::format_bytes(static_cast<double>(r.weight_bytes)),
            models::format_bytes(static_cast<double>(per_token)), kv::kv_cache_dtype_name(o.kv_cache_dtype),
            m.target->n_kv_layers(), draft ? " + draft" : "", b.source, b.kv_tokens);
  if (b.lowered)
    log::warn("max_model_len lowered from {} to {}: the KV cache holds {} tokens ({}); raise "
              "--kv-cache-memory, --mem-fraction or --kv-cache-tokens for longer contexts",
              max_model_len, b.max_model_len, b.kv_tokens, b.source);
  max_model_len = b.max_model_len;
  return b.kv_tokens / o.block_size;
}

int64_t resolve_max_model_len(const EngineOptions& o, const models::LoadedModel& m) {
  return o.max_model_len > 0 ? o.max_model_len : m.config.max_position_embeddings;
}

}  // namespace

Engine::Engine(models::LoadedModel& model, ops::Backend& backend, const EngineOptions& options)
    : model_(model),
      backend_(backend),
      options_(options),
      policy_(spec::FixedK{.k = options.spec.num_steps}),
      max_model_len_(resolve_max_model_len(options, model)),
      allocator_(plan_kv_blocks(model, backend, options, max_model_len_)) {
  if (options_.spec.enabled) {
    if (!model_.draft)
      fail("speculative decoding needs an MTP/NextN layer, but {} has none{}", model_.checkpoint->dir().string(),
           model_.checkpoint_has_mtp ? " loaded" : "");
    if (options_.spec.num_steps < 1 || options_.spec.num_steps > spec::kMaxDraftTokens)
      fail("--speculative-num-steps must be in [1, {}], got {}", spec::kMaxDraftTokens, options_.spec.num_steps);
    spec_enabled_ = true;
  }
  TANDEM_CHECK(options_.max_running_requests >= 1, "--max-running-requests must be >= 1");
  TANDEM_CHECK(options_.max_batch_tokens >= 1 + options_.spec.num_steps, "max batch tokens {} too small",
               options_.max_batch_tokens);
  TANDEM_CHECK(max_model_len_ >= 2, "max model length {} too small", max_model_len_);
  const auto& c = model_.config;
  // fp8: the checkpoint's per-layer k_scale / v_scale when it has them, else 1.0 (models/kv_scales.h).
  models::ModelKvScales scales;
  if (options_.kv_cache_dtype == DType::kF8E4M3) scales = models::read_model_kv_scales(model_);
  const kv::KvCacheShape target_shape{.n_layers = model_.target->n_kv_layers(),
                                      .n_blocks = allocator_.num_total(),
                                      .block_size = options_.block_size,
                                      .n_kv_heads = c.num_key_value_heads,
                                      .head_dim = c.head_dim,
                                      .dtype = options_.kv_cache_dtype,
                                      .fp8_scales = std::move(scales.target)};
  std::optional<kv::KvCacheShape> draft_shape;
  if (spec_enabled_) {
    const auto& a = model_.draft->layer_options().attn;
    draft_shape = kv::KvCacheShape{.n_layers = model_.draft->n_kv_layers(),
                                   .n_blocks = allocator_.num_total(),
                                   .block_size = options_.block_size,
                                   .n_kv_heads = a.n_kv_heads,
                                   .head_dim = a.head_dim,
                                   .dtype = options_.kv_cache_dtype,
                                   .fp8_scales = std::move(scales.draft)};
  }
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerOptions{.max_running_requests = options_.max_running_requests,
                       .max_batch_tokens = options_.max_batch_tokens,
                       .draft_lookahead = spec_enabled_ ? spec::max_draft_length(policy_) : 0},
      allocator_);
  runner_ = std::make_unique<ModelRunner>(model_, backend_, target_shape, draft_shape,
                                          spec::ProposerHooks{.before_forward = options_.before_draft_forward});
  counters_.spec_accepted_per_pos.assign(options_.spec.num_steps, 0);
  snapshot_.kv_blocks_total = allocator_.num_total();
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
  for (auto& s : fresh) scheduler_->add(std::move(s));
  for (uint64_t id : aborts)
    if (Sequence* s = scheduler_->find(id)) finish(*s, FinishReason::kAbort);
  scheduler_->end_step();
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
  scheduler_->finish(s);
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

Engine::Batch Engine::assemble(const Schedule& sched) const {
  Batch b;
  b.tokens.resize(sched.rows);
  b.positions.resize(sched.rows);
  b.logit_begin.assign(sched.seqs.size(), -1);
  for (size_t k = 0; k < sched.seqs.size(); ++k) {
    const ScheduledSeq& sc = sched.seqs[k];
    const Sequence& s = *sc.seq;
    for (int64_t j = 0; j < sc.n_rows; ++j) {
      const int64_t pos = s.n_cached + j;
      b.tokens[sc.row_begin + j] = sc.verify && j > 0 ? s.drafts[j - 1] : s.tokens[pos];
      b.positions[sc.row_begin + j] = static_cast<int32_t>(pos);
    }
    b.slices.push_back(ops::SeqSlice{.token_begin = sc.row_begin,
                                     .n_tokens = static_cast<int32_t>(sc.n_rows),
                                     .start_pos = static_cast<int32_t>(s.n_cached),
                                     .block_table = s.blocks.blocks().data()});
    if (sc.samples) {
      b.logit_begin[k] = static_cast<int64_t>(b.logit_rows.size());
      const int64_t first = sc.verify ? 0 : sc.n_rows - 1;
      for (int64_t j = first; j < sc.n_rows; ++j) b.logit_rows.push_back(static_cast<int32_t>(sc.row_begin + j));
    }
  }
  return b;
}

bool Engine::step() {
  drain_inbox();
  Schedule sched = scheduler_->schedule();
  for (const SchedulerFailure& f : sched.failed) finish(*f.seq, FinishReason::kError, f.error);
  if (sched.empty()) {
    scheduler_->end_step();
    publish_snapshot();
    return !scheduler_->idle();
  }

  const Batch batch = assemble(sched);
  runner_->begin_step();
  const bool any_spec =
      std::any_of(sched.seqs.begin(), sched.seqs.end(), [](const ScheduledSeq& x) { return x.seq->speculative; });
  TargetStep target;
  try {
    target = runner_->run_target(models::ForwardInput{.tokens = batch.tokens,
                                                      .positions = batch.positions,
                                                      .seqs = batch.slices,
                                                      .logit_rows = batch.logit_rows,
                                                      .capture_hidden = any_spec});
  } catch (const std::exception& e) {
    log::error("target forward failed: {}; failing the {} requests of this batch", e.what(), sched.seqs.size());
    for (auto& sc : sched.seqs) finish(*sc.seq, FinishReason::kError, std::string("target forward failed: ") + e.what());
    scheduler_->end_step();
    publish_snapshot();
    return true;
  }
  ++counters_.forward_passes;

  std::vector<int64_t> pair_rows(sched.seqs.size(), 0);  // target rows whose hidden pairs with a committed token
  const int64_t V = model_.config.vocab_size;
  for (size_t k = 0; k < sched.seqs.size(); ++k) {
    const ScheduledSeq& sc = sched.seqs[k];
    const float* rows = sc.samples ? target.logits.data() + batch.logit_begin[k] * V : nullptr;
    pair_rows[k] = commit(sc, rows);
  }

  if (any_spec) {
    try {
      run_draft(sched, target.fwd.hidden, pair_rows);
    } catch (const std::exception& e) {
      log::error("draft forward failed: {}; failing the speculative requests of this batch", e.what());
      for (auto& sc : sched.seqs)
        if (sc.seq->speculative && sc.seq->callback)
          finish(*sc.seq, FinishReason::kError, std::string("draft forward failed: ") + e.what());
    }
  }
  scheduler_->end_step();
  publish_snapshot();
  return true;
}

int64_t Engine::commit(const ScheduledSeq& sc, const float* base) {
  Sequence& s = *sc.seq;
  if (!sc.samples) {  // a prefill chunk that does not reach the end of the prompt
    s.n_cached += sc.n_rows;
    counters_.prompt_tokens += sc.n_rows;
    return sc.n_rows;
  }
  const int64_t V = model_.config.vocab_size;
  std::vector<int32_t> emitted;
  int accepted = 0;
  const int drafted = static_cast<int>(s.drafts.size());
  if (sc.verify) {
    auto row_fn = [&](int j, std::span<const int32_t> so_far) {
      return processed_logits(s, base + static_cast<int64_t>(j) * V, so_far);
    };
    const spec::VerifyResult vr = spec::verify_chain(row_fn, s.drafts, s.req.sampling, s.rng, s.n_output());
    emitted = vr.tokens;
    accepted = vr.accepted;
  } else {
    if (s.n_output() == 0) counters_.prompt_tokens += sc.n_rows;
    const std::vector<float> row = processed_logits(s, base, {});
    emitted.push_back(sampling::sample(row, s.req.sampling, s.rng.uniform(s.n_output())));
  }
  // The verify pass committed the newest token plus the accepted drafts; prefill commits all its rows.
  const int64_t committed_rows = sc.verify ? accepted + 1 : sc.n_rows;
  s.n_cached += committed_rows;
  s.drafts.clear();

  std::vector<int32_t> out;
  std::vector<TokenLogprob> lps;
  FinishReason reason = FinishReason::kNone;
  for (size_t j = 0; j < emitted.size() && reason == FinishReason::kNone; ++j) {
    const int32_t t = emitted[j];
    if (s.req.top_logprobs >= 0) lps.push_back(logprob_entry(s, sc.verify ? base + static_cast<int64_t>(j) * V : base, t));
    s.tokens.push_back(t);
    ++s.history.output_counts[t];
    out.push_back(t);
    if (is_stop(s, t)) reason = FinishReason::kStop;
    else if (s.n_output() >= s.req.max_tokens || static_cast<int64_t>(s.tokens.size()) >= max_model_len_)
      reason = FinishReason::kLength;
  }
  counters_.generation_tokens += static_cast<int64_t>(out.size());
  if (s.speculative) counters_.spec_completion_tokens += static_cast<int64_t>(out.size());
  if (sc.verify) {
    // Drafts count as accepted only when emitted: a stop or max_tokens may cut the accepted run.
    const int emitted_drafts = std::min(accepted, static_cast<int>(out.size()));
    s.spec.record_step(drafted, emitted_drafts);
    counters_.spec_num_drafts += 1;
    counters_.spec_num_draft_tokens += drafted;
    counters_.spec_num_accepted_tokens += emitted_drafts;
    for (int j = 0; j < emitted_drafts && j < static_cast<int>(counters_.spec_accepted_per_pos.size()); ++j)
      ++counters_.spec_accepted_per_pos[j];
    if (collapse_alarm_.record(static_cast<int>(out.size()))) {
      const auto& d = model_.draft_precision;
      log::warn("speculative decoding has collapsed: {:.3f} tokens per verify step over the last {} verify steps "
                "(alarm at <= {}); the draft runs {} (stored {}): {} -- check the draft's precision and layout; "
                "output stays correct, only slower (tandem:spec_decode_collapsed = 1)",
                collapse_alarm_.window_accept_length(), collapse_alarm_.options().window,
                collapse_alarm_.options().threshold, d.running, d.stored, d.reason);
    }
    counters_.spec_collapsed = collapse_alarm_.collapsed() ? 1 : 0;
    counters_.spec_window_accept_length = collapse_alarm_.window_accept_length();
  }
  // Roll back KV of rejected drafts: keep only blocks that cover committed positions.
  s.blocks.truncate(allocator_, static_cast<int64_t>(s.tokens.size()));
  emit(s, std::move(out), std::move(lps), reason);
  if (reason != FinishReason::kNone) scheduler_->finish(s);
  return committed_rows;
}

void Engine::run_draft(const Schedule& sched, const Tensor& target_hidden, const std::vector<int64_t>& pair_rows) {
  std::vector<spec::ExtendSeq> items;
  std::vector<Sequence*> owners;
  for (size_t k = 0; k < sched.seqs.size(); ++k) {
    const ScheduledSeq& sc = sched.seqs[k];
    Sequence& s = *sc.seq;
    if (!s.callback || !s.speculative || pair_rows[k] == 0) continue;  // finished or plain
    // Propose once the whole pending input is committed (end of prefill, or after a verify), as many drafts
    // as the policy gives within max_tokens and the context. Grow the block table first: the slice keeps a
    // pointer into it, and the next verify needs tokens + k positions.
    const int64_t n_tokens = static_cast<int64_t>(s.tokens.size());
    int k_drafts = 0;
    if (sc.samples) {
      k_drafts = spec::draft_length(policy_, spec::DraftBudget{.remaining_tokens = s.req.max_tokens - s.n_output(),
                                                               .context_left = max_model_len_ - n_tokens});
      if (k_drafts > 0 && !s.blocks.ensure(allocator_, n_tokens + k_drafts)) k_drafts = 0;
    }
    const int64_t first_pos = s.n_draft_cached;
    items.push_back(spec::ExtendSeq{
        .next_tokens = std::span<const int32_t>(s.tokens.data() + first_pos + 1, static_cast<size_t>(pair_rows[k])),
        .first_pos = first_pos,
        .hidden_row = sc.row_begin,
        .block_table = s.blocks.blocks().data(),
        .k = k_drafts});
    owners.push_back(&s);
    s.n_draft_cached = first_pos + pair_rows[k];
  }
  if (items.empty()) return;
  std::vector<std::vector<int32_t>> drafts = runner_->run_draft(target_hidden, items);
  for (size_t i = 0; i < owners.size(); ++i) owners[i]->drafts = std::move(drafts[i]);
}

void Engine::run_until_idle() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      if (inbox_.empty() && abort_inbox_.empty() && scheduler_->idle()) return;
    }
    step();
  }
}

void Engine::publish_snapshot() {
  counters_.preemptions = scheduler_->preemptions();
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_.running = scheduler_->num_running();
  snapshot_.waiting = scheduler_->num_waiting();
  snapshot_.kv_blocks_used = allocator_.num_used();
  snapshot_.counters = counters_;
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

}  // namespace tandem::engine
