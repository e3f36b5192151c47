#include "engine/engine.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>

#include "core/log.h"
#include "engine/cost_calibration.h"
#include "kv/kv_dtype.h"
#include "models/kv_scales.h"
#include "models/memory_plan.h"
#include "spec/verifier.h"

namespace tandem::engine {

namespace {

constexpr int64_t kStashDeferredRows = 32;  // hidden rows a paused request keeps before its extend is forced

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
  if (draft)  // the hidden stash of paused requests (engine/hidden_stash.h)
    r.workspace_bytes += static_cast<size_t>(r.max_running_requests) * (kStashDeferredRows + o.spec.num_steps + 1) *
                         static_cast<size_t>(m.config.hidden_size) * sizeof(float);
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

/// The policy the options ask for.
spec::SpecPolicy make_policy(const SpecOptions& o) {
  if (!o.scripted_k.empty()) return spec::ScriptedK{.ks = o.scripted_k};
  if (o.policy == SpecPolicyKind::kAdaptive) return spec::AdaptiveK{.k_max = o.num_steps};
  return spec::FixedK{.k = o.num_steps};
}

int64_t resolve_max_model_len(const EngineOptions& o, const models::LoadedModel& m) {
  return o.max_model_len > 0 ? o.max_model_len : m.config.max_position_embeddings;
}

}  // namespace

Engine::Engine(models::LoadedModel& model, ops::Backend& backend, const EngineOptions& options)
    : model_(model),
      backend_(backend),
      options_(options),
      policy_(make_policy(options.spec)),
      max_model_len_(resolve_max_model_len(options, model)),
      allocator_(plan_kv_blocks(model, backend, options, max_model_len_)),
      collapse_alarm_(spec::CollapseAlarm::Options{.window = options.spec.collapse_window}) {
  if (options_.spec.enabled) {
    if (!model_.draft)
      fail("speculative decoding needs an MTP/NextN layer, but {} has none{}", model_.checkpoint->dir().string(),
           model_.checkpoint_has_mtp ? " loaded" : "");
    if (options_.spec.num_steps < 1 || options_.spec.num_steps > spec::kMaxDraftTokens)
      fail("--speculative-num-steps must be in [1, {}], got {}", spec::kMaxDraftTokens, options_.spec.num_steps);
    for (int k : options_.spec.scripted_k)
      TANDEM_CHECK(k >= 0 && k <= spec::kMaxDraftTokens, "scripted K {} out of range", k);
    for (double a : options_.spec.synthetic_acceptance)
      if (!(a >= 0.0 && a <= 1.0)) fail("--speculative-synthetic-acceptance: {} is not a probability in [0, 1]", a);
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
  std::optional<ModelRunner::DraftSetup> draft_setup;
  const int k_max = spec_enabled_ ? spec::max_draft_length(policy_) : 0;
  if (spec_enabled_) {
    const auto& a = model_.draft->layer_options().attn;
    draft_setup = ModelRunner::DraftSetup{.cache = kv::KvCacheShape{.n_layers = model_.draft->n_kv_layers(),
                                                                    .n_blocks = allocator_.num_total(),
                                                                    .block_size = options_.block_size,
                                                                    .n_kv_heads = a.n_kv_heads,
                                                                    .head_dim = a.head_dim,
                                                                    .dtype = options_.kv_cache_dtype,
                                                                    .fp8_scales = std::move(scales.draft)},
                                          .stash_slots = options_.max_running_requests,
                                          .stash_deferred_rows = kStashDeferredRows,
                                          .stash_extra_rows = k_max + 1};
  }
  if (options_.enable_prefix_caching) {
    // The salt covers what else decides a block's bits in this process: the KV dtype and the block size.
    const uint64_t salt = (static_cast<uint64_t>(options_.kv_cache_dtype) << 32) ^ static_cast<uint64_t>(options_.block_size);
    prefix_cache_ = std::make_unique<kv::PrefixCache>(allocator_, options_.block_size, salt,
                                                      backend_.prefill_linear_differs());
  }
  scheduler_ = std::make_unique<Scheduler>(
      SchedulerOptions{.max_running_requests = options_.max_running_requests,
                       .max_batch_tokens = options_.max_batch_tokens,
                       .draft_lookahead = k_max,
                       .prefer_prefix_over_draft = options_.spec.policy == SpecPolicyKind::kAdaptive &&
                                                   options_.spec.scripted_k.empty()},
      allocator_, prefix_cache_.get());
  runner_ = std::make_unique<ModelRunner>(model_, backend_, target_shape, draft_setup,
                                          spec::ProposerHooks{.before_forward = options_.before_draft_forward});
  if (spec_enabled_ && std::holds_alternative<spec::AdaptiveK>(policy_)) {
    spec::CostTable costs = options_.spec.costs;
    if (costs.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      costs = calibrate_step_costs(*runner_, allocator_,
                                   {.max_batch = options_.max_running_requests, .k_max = k_max,
                                    .block_size = options_.block_size});
      log::info("adaptive speculation: step costs measured in {:.2f} s on {}:\n{}",
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), backend_.name(),
                costs.format());
    }
    TANDEM_CHECK(costs.k_max() >= k_max, "the cost table covers K <= {}, the policy needs {}", costs.k_max(), k_max);
    adaptive_.emplace(std::get<spec::AdaptiveK>(policy_), std::move(costs));
  }
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
  if (const uint64_t want = flush_requests_.load(); want != flushes_done_.load()) {
    if (prefix_cache_) {
      const int64_t n = prefix_cache_->num_blocks();
      prefix_cache_->flush();
      log::info("prefix cache flushed ({} blocks)", n);
    }
    flushes_done_.store(want);
  }
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
  out.cached_tokens = s.cached_tokens;
  out.completion_tokens = s.n_output();
  out.spec = s.spec;
  if (s.callback) s.callback(out);
  retire(s);
}

void Engine::publish_prefix(Sequence& s) {
  if (prefix_cache_)
    prefix_cache_->publish(s.prefix, s.blocks.blocks(), s.tokens, s.n_prompt, s.n_cached, s.n_draft_cached);
}

void Engine::retire(Sequence& s) {
  publish_prefix(s);
  if (s.stash_slot >= 0 && runner_->stash()) runner_->stash()->release(s.stash_slot);
  s.stash_slot = -1;
  s.n_stashed = 0;
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
  out.cached_tokens = s.cached_tokens;
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
    if (sc.decode) {  // the scheduler's decode pass comes first: its rows are a prefix of the batch
      TANDEM_CHECK(sc.row_begin == b.decode_rows, "assemble: decode rows of a sequence at row {} after {} decode rows",
                   sc.row_begin, b.decode_rows);
      b.decode_rows += sc.n_rows;
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
  // A step of decode rows only times the cost table's parts: its verify by the K all its requests verified (when
  // they agree), its draft by the K the policy drafts next.
  const auto t0 = std::chrono::steady_clock::now();
  const bool all_decode = std::all_of(sched.seqs.begin(), sched.seqs.end(), [](const ScheduledSeq& sc) {
    return sc.seq->n_output() > 0 && sc.samples && sc.n_rows == 1 + static_cast<int64_t>(sc.seq->drafts.size());
  });
  int verified_k = all_decode ? static_cast<int>(sched.seqs.front().seq->drafts.size()) : -1;
  for (const ScheduledSeq& sc : sched.seqs)
    if (static_cast<int>(sc.seq->drafts.size()) != verified_k) verified_k = -1;
  runner_->begin_step();
  const bool any_spec = std::any_of(sched.seqs.begin(), sched.seqs.end(), [](const ScheduledSeq& x) {
    return x.seq->speculative && !x.seq->draft_dropped;
  });
  TargetStep target;
  try {
    target = runner_->run_target(models::ForwardInput{.tokens = batch.tokens,
                                                      .positions = batch.positions,
                                                      .seqs = batch.slices,
                                                      .logit_rows = batch.logit_rows,
                                                      .decode_rows = batch.decode_rows,
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

  const auto t1 = std::chrono::steady_clock::now();
  const int64_t batch_seqs = static_cast<int64_t>(sched.seqs.size());
  const bool refine = adaptive_ && options_.spec.refine_costs;
  if (refine && verified_k >= 0)
    adaptive_->record_part(spec::CostTable::kVerify, batch_seqs, verified_k,
                           std::chrono::duration<double>(t1 - t0).count());
  if (any_spec) {
    try {
      const int next_k = run_draft(sched, target.fwd.hidden, pair_rows);
      if (refine && all_decode && next_k >= 0)
        adaptive_->record_part(spec::CostTable::kDraft, batch_seqs, next_k,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
    } catch (const std::exception& e) {
      log::error("draft forward failed: {}; failing the speculative requests of this batch", e.what());
      for (auto& sc : sched.seqs)
        if (sc.seq->speculative && sc.seq->callback)
          finish(*sc.seq, FinishReason::kError, std::string("draft forward failed: ") + e.what());
    }
  }
  for (const ScheduledSeq& sc : sched.seqs)
    if (sc.seq->callback) publish_prefix(*sc.seq);  // finished ones published when they retired
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
  const bool plain_step = !sc.verify && s.n_output() > 0;  // a decode step that verified no draft
  if (sc.verify) {
    spec::VerifyResult vr;
    if (options_.spec.synthetic_acceptance.empty()) {
      auto row_fn = [&](int j, std::span<const int32_t> so_far) {
        return processed_logits(s, base + static_cast<int64_t>(j) * V, so_far);
      };
      vr = spec::verify_chain(row_fn, s.drafts, s.req.sampling, s.rng, s.n_output());
    } else {
      vr = synthetic_verify(s, base);
    }
    emitted = vr.tokens;
    accepted = vr.accepted;
    s.accept.record(drafted, accepted);
    if (adaptive_) adaptive_->record_verify(drafted, accepted);
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
  if (s.speculative && plain_step) s.spec.record_plain_step();
  else if (s.speculative) counters_.spec_completion_tokens += static_cast<int64_t>(out.size());
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
  if (reason != FinishReason::kNone) retire(s);
  return committed_rows;
}

spec::VerifyResult Engine::synthetic_verify(Sequence& s, const float* base) {
  const auto& rates = options_.spec.synthetic_acceptance;
  const int64_t V = model_.config.vocab_size;
  spec::VerifyResult vr;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  while (vr.accepted < static_cast<int>(s.drafts.size()) &&
         u(synthetic_rng_) < rates[std::min<size_t>(vr.accepted, rates.size() - 1)]) {
    vr.tokens.push_back(s.drafts[vr.accepted]);
    ++vr.accepted;
  }
  const std::vector<float> row = processed_logits(s, base + static_cast<int64_t>(vr.accepted) * V, vr.tokens);
  vr.tokens.push_back(sampling::sample(row, s.req.sampling, s.rng.uniform(s.n_output() + vr.accepted)));
  return vr;
}

int Engine::wanted_drafts(Sequence& s, int batch_k) {
  const int64_t n = s.draft_decisions++;
  if (const auto* f = std::get_if<spec::FixedK>(&policy_)) return f->k;
  if (const auto* sk = std::get_if<spec::ScriptedK>(&policy_)) return sk->ks[static_cast<size_t>(n) % sk->ks.size()];
  if (s.probe) {
    s.probe = false;
    return std::max(batch_k, 1);
  }
  return batch_k;
}

int Engine::run_draft(const Schedule& sched, const Tensor& target_hidden, const std::vector<int64_t>& pair_rows) {
  // The adaptive policy's K for this batch, from the estimates of the requests about to draft.
  int batch_k = -1;
  if (adaptive_) {
    std::vector<const spec::AcceptanceEstimate*> drafting;
    int64_t decoding = 0;
    for (size_t k = 0; k < sched.seqs.size(); ++k) {
      const Sequence& s = *sched.seqs[k].seq;
      if (!s.callback || !sched.seqs[k].samples) continue;
      ++decoding;
      if (s.speculative && !s.draft_dropped && pair_rows[k] > 0) drafting.push_back(&s.accept);
    }
    if (!drafting.empty()) batch_k = adaptive_->choose(drafting, decoding);
  }
  HiddenStash* stash = runner_->stash();
  std::vector<spec::ExtendSeq> items;
  std::vector<Sequence*> owners;
  std::vector<HiddenStash::Copy> copies;
  for (size_t k = 0; k < sched.seqs.size(); ++k) {
    const ScheduledSeq& sc = sched.seqs[k];
    Sequence& s = *sc.seq;
    if (!s.callback || !s.speculative || s.draft_dropped || pair_rows[k] == 0) continue;  // finished or plain
    // Adaptive: when the policy drafts nothing, a new request runs without a draft state (no extend of its prompt:
    // a draft layer over every prompt row), except one in admit_probe_every, which drafts at least once so the
    // acceptance estimates stay fresh.
    if (adaptive_ && !s.draft_decided) {
      s.draft_decided = true;
      if (batch_k == 0) {
        s.probe = ++admitted_while_paused_ % adaptive_->params().admit_probe_every == 0;
        if (!s.probe) {
          s.draft_dropped = true;
          continue;
        }
      }
    }
    // Propose once the whole pending input is committed (end of prefill, or after a verify), as many drafts
    // as the policy gives within max_tokens and the context. Grow the block table first: the slice keeps a
    // pointer into it, and the next verify needs tokens + k positions.
    const int64_t n_tokens = static_cast<int64_t>(s.tokens.size());
    int k_drafts = 0;
    if (sc.samples) {
      k_drafts = spec::cap_draft_length(wanted_drafts(s, batch_k),
                                        spec::DraftBudget{.remaining_tokens = s.req.max_tokens - s.n_output(),
                                                          .context_left = max_model_len_ - n_tokens});
      if (k_drafts > 0 && !s.blocks.ensure(allocator_, n_tokens + k_drafts)) k_drafts = 0;
    }
    const int64_t pairs = pair_rows[k];
    // Paused (K = 0) after a decode step: keep the pairs' hidden rows and defer the draft's extend, unless the
    // request's stash slot is full (then the extend runs now, over everything kept).
    const bool decode = sc.samples && s.n_output() > 1;
    if (k_drafts == 0 && decode && s.stash_slot < 0 && stash) s.stash_slot = stash->acquire();
    const bool defer = k_drafts == 0 && decode && s.stash_slot >= 0 && s.n_stashed + pairs <= stash->deferred_rows();
    // Adaptive: a request paused for a whole stash drops its draft state rather than pay the extend (on a CPU the
    // draft layer costs per row whether deferred or not); it decodes plainly from here on.
    if (adaptive_ && k_drafts == 0 && decode && !defer) {
      s.draft_dropped = true;
      s.n_stashed = 0;
      stash->release(s.stash_slot);
      s.stash_slot = -1;
      continue;
    }
    const bool from_stash = s.n_stashed > 0;
    TANDEM_CHECK(!from_stash || pairs <= spec::max_draft_length(policy_) + 1, "{} pairs after a paused step", pairs);
    if (defer || from_stash)
      copies.push_back({.src_row = sc.row_begin, .dst_row = stash->slot_row(s.stash_slot) + s.n_stashed, .n = pairs});
    if (defer) {
      s.n_stashed += pairs;
      continue;
    }
    const int64_t first_pos = s.n_draft_cached;
    const int64_t n = s.n_stashed + pairs;
    items.push_back(spec::ExtendSeq{
        .next_tokens = std::span<const int32_t>(s.tokens.data() + first_pos + 1, static_cast<size_t>(n)),
        .first_pos = first_pos,
        .hidden_row = from_stash ? stash->slot_row(s.stash_slot) : sc.row_begin,
        .from_stash = from_stash,
        .block_table = s.blocks.blocks().data(),
        .k = k_drafts});
    owners.push_back(&s);
    s.n_draft_cached = first_pos + n;
    s.n_stashed = 0;
  }
  if (!copies.empty()) runner_->stash_hidden(target_hidden, copies);
  if (items.empty()) return batch_k;
  std::vector<std::vector<int32_t>> drafts = runner_->run_draft(target_hidden, items);
  for (size_t i = 0; i < owners.size(); ++i) owners[i]->drafts = std::move(drafts[i]);
  return batch_k;
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
  counters_.prefix_cache_query_tokens = scheduler_->prefix_counters().query_tokens;
  counters_.prefix_cache_hit_tokens = scheduler_->prefix_counters().hit_tokens;
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_.running = scheduler_->num_running();
  snapshot_.waiting = scheduler_->num_waiting();
  snapshot_.kv_blocks_used = allocator_.num_used();
  snapshot_.kv_blocks_cached = allocator_.num_cached();
  snapshot_.counters = counters_;
}

EngineSnapshot Engine::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

}  // namespace tandem::engine
