#include "server/generation.h"

#include <fmt/format.h>

#include <array>

#include "core/error.h"
#include "core/log.h"
#include "server/errors.h"

namespace tandem::server {

Generation::Generation(ServerContext& ctx, std::string id, std::vector<Choice> choices, Clock::time_point arrival)
    : ctx_(ctx), id_(std::move(id)), arrival_(arrival), queue_(std::make_shared<OutputQueue>()) {
  choices_.reserve(choices.size());
  for (auto& c : choices) {
    Slot s;
    s.detok = std::make_unique<tokenizer::IncrementalDetokenizer>(ctx_.tokenizer(), c.text.skip_special_tokens);
    s.stop = std::make_unique<tokenizer::StopStringMatcher>(c.text.stop);
    s.state.prompt_tokens = static_cast<int64_t>(c.request.prompt.size());
    s.spec = std::move(c);
    choices_.push_back(std::move(s));
  }
  ctx_.generation_started();
  size_t submitted = 0;
  auto undo = [&] {
    for (size_t j = 0; j < submitted; ++j) ctx_.loop().abort(choices_[j].state.engine_id);
    ctx_.generation_finished();  // the destructor will not run
  };
  try {
    for (; submitted < choices_.size(); ++submitted)
      choices_[submitted].state.engine_id =
          ctx_.loop().submit(choices_[submitted].spec.request, queue_, static_cast<int>(submitted), arrival_);
  } catch (const Error& e) {
    undo();
    throw ApiError(400, e.what(), "", "invalid_request");
  } catch (...) {
    undo();
    throw;
  }
}

Generation::~Generation() {
  for (auto& s : choices_)
    if (!s.state.finished) {
      ctx_.loop().abort(s.state.engine_id);
      finish_choice(s, "abort");
    }
  ctx_.generation_finished();
}

void Generation::finish_choice(Slot& s, const std::string& reason) {
  s.state.finished = true;
  s.state.finish_reason = reason;
  ++n_finished_;
  ctx_.metrics().count_finished(reason);
  ctx_.metrics().observe_e2e(std::chrono::duration<double>(Clock::now() - arrival_).count());
}

void Generation::consume(int index, const engine::RequestOutput& out, std::vector<ChoiceDelta>& deltas) {
  Slot& s = choices_[index];
  ChoiceState& st = s.state;
  if (st.finished) return;  // e.g. the abort that follows a stop-string match
  ChoiceDelta d;
  d.choice = index;
  d.token_begin = st.tokens.size();
  st.spec = out.spec;
  st.engine_completion_tokens = out.completion_tokens;
  if (out.prompt_tokens > 0) st.prompt_tokens = out.prompt_tokens;
  st.cached_tokens = out.cached_tokens;
  const bool want_lp = s.spec.request.top_logprobs >= 0;
  bool stopped = false;
  for (size_t j = 0; j < out.new_tokens.size() && !stopped; ++j) {
    const int32_t t = out.new_tokens[j];
    st.tokens.push_back(t);
    if (want_lp && j < out.logprobs.size()) st.logprobs.push_back(out.logprobs[j]);
    const bool stop_token = j + 1 == out.new_tokens.size() && out.finish == engine::FinishReason::kStop;
    if (stop_token && !s.spec.text.include_stop_str) {
      st.matched = t;  // an eos / stop_token_ids token: its text is not part of the output
      break;
    }
    const auto r = s.stop->push(s.detok->push(std::vector<int32_t>{t}));
    d.text += r.emit;
    if (r.stopped) {
      stopped = true;
      st.matched = r.matched;
      if (s.spec.text.include_stop_str) d.text += r.matched;
    } else if (stop_token) {
      st.matched = t;
    }
  }
  if (stopped) {
    ctx_.loop().abort(st.engine_id);  // frees its KV at the next step
    finish_choice(s, "stop");
  } else if (out.finished()) {
    // Flush held-back bytes and any partial stop-string match: the output is over, so they are text.
    const auto r = s.stop->push(s.detok->finish());
    d.text += r.emit;
    if (r.stopped) {
      st.matched = r.matched;
      if (s.spec.text.include_stop_str) d.text += r.matched;
      finish_choice(s, "stop");
    } else {
      d.text += s.stop->finish();
      switch (out.finish) {
        case engine::FinishReason::kStop: finish_choice(s, "stop"); break;
        case engine::FinishReason::kLength: finish_choice(s, "length"); break;
        case engine::FinishReason::kError:
          st.error = out.error;
          finish_choice(s, "error");
          log::error("request {} choice {} failed: {}", id_, index, out.error);
          break;
        default: finish_choice(s, "abort"); break;
      }
    }
  }
  st.text += d.text;
  d.token_end = st.tokens.size();
  d.finished = st.finished;
  if (!d.text.empty() || d.token_end > d.token_begin || d.finished) deltas.push_back(std::move(d));
}

bool Generation::wait(std::vector<ChoiceDelta>& deltas, std::chrono::milliseconds timeout) {
  if (done()) return false;
  std::vector<TaggedOutput> outs;
  if (!queue_->pop_all(outs, timeout)) return true;
  for (const auto& o : outs) consume(o.choice, o.out, deltas);
  return true;
}

void Generation::wait_all() {
  std::vector<ChoiceDelta> deltas;
  while (wait(deltas, std::chrono::milliseconds(1000))) deltas.clear();
}

int64_t Generation::completion_tokens() const {
  int64_t n = 0;
  for (const auto& s : choices_) n += static_cast<int64_t>(s.state.tokens.size());
  return n;
}

int64_t Generation::cached_prompt_tokens() const {
  int64_t n = 0;
  for (size_t i = 0; i < choices_.size(); ++i) {
    const auto& prompt = choices_[i].spec.request.prompt;
    bool first = true;  // each prompt once, as prompt_tokens counts it: its first choice's hit
    for (size_t j = 0; j < i && first; ++j) first = choices_[j].spec.request.prompt != prompt;
    if (first) n += choices_[i].state.cached_tokens;
  }
  return n;
}

nlohmann::json Generation::spec_json() const {
  if (!ctx_.loop().engine().speculative()) return nullptr;
  int64_t steps = 0, drafts = 0, accepted = 0, generated = 0;
  std::array<int64_t, spec::kMaxDraftTokens + 1> k_used{};
  for (const auto& s : choices_) {
    steps += s.state.spec.verify_steps;
    drafts += s.state.spec.draft_tokens;
    accepted += s.state.spec.accepted_tokens;
    generated += s.state.spec.speculative_tokens(s.state.engine_completion_tokens);
    for (size_t k = 0; k < k_used.size(); ++k) k_used[k] += s.state.spec.drafted_hist[k];
  }
  // The draft length each decode step used ({"K": steps}, "0": plain steps the adaptive policy chose), non-zero
  // entries only: the policy varies K, and K is capped near max_tokens and the context end (spec/policy.h).
  nlohmann::ordered_json per_step = nlohmann::ordered_json::object();
  for (size_t k = 0; k < k_used.size(); ++k)
    if (k_used[k] > 0) per_step[std::to_string(k)] = k_used[k];
  return {{"verify_steps", steps},
          {"draft_tokens", drafts},
          {"accepted_tokens", accepted},
          {"mean_accept_length", spec::accept_length(generated, steps)},
          {"drafts_per_step", per_step}};
}

std::string Generation::first_error() const {
  for (const auto& s : choices_)
    if (s.state.finish_reason == "error") return s.state.error;
  return "";
}

}  // namespace tandem::server
