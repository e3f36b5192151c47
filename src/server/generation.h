// One HTTP request's generation: its choices (n per prompt) as engine requests, and the text-level logic the
// engine knows nothing about — incremental detokenization, stop strings (which may straddle tokens, or
// complete in the middle of a speculative multi-token step), and finish bookkeeping.
//
// Tokens are consumed one at a time even when a verify step commits several, so a stop string that ends at
// token j of a step drops tokens j+1.. exactly as a non-speculative run would never have produced them:
// output with and without speculation is identical at temperature 0.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/request.h"
#include "server/engine_loop.h"
#include "server/server_context.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/stop_strings.h"

namespace tandem::server {

/// Text-level settings of a choice.
struct TextOptions {
  std::vector<std::string> stop;   // stop strings; the text before the first match is returned
  bool skip_special_tokens = true;
  bool include_stop_str = false;   // keep the matched stop string (vLLM include_stop_str_in_output)
};

/// The state of one choice; complete once `finished`.
struct ChoiceState {
  uint64_t engine_id = 0;
  std::string text;                           // emitted text (what the client sees)
  std::vector<int32_t> tokens;                // tokens consumed (stop-token included, tokens after a stop dropped)
  std::vector<engine::TokenLogprob> logprobs; // aligned with tokens when logprobs were requested
  bool finished = false;
  std::string finish_reason;                  // "stop", "length", "abort", "error"
  nlohmann::json matched;                     // the stop string or stop token id; null otherwise
  std::string error;                          // with "error"
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;                  // prompt tokens the prefix cache held at admission
  engine::SpecStats spec;                     // cumulative, as of the last engine output consumed
  int64_t engine_completion_tokens = 0;       // tokens the engine generated (>= tokens.size())
};

/// What changed for one choice in one wait(): new text, the tokens consumed [token_begin, token_end) and
/// whether the choice finished with this update.
struct ChoiceDelta {
  int choice = 0;
  std::string text;
  size_t token_begin = 0;
  size_t token_end = 0;
  bool finished = false;
};

class Generation {
 public:
  struct Choice {
    engine::GenerateRequest request;
    TextOptions text;
  };

  /// Submits every choice. On a rejected request, aborts those already submitted and throws ApiError 400.
  /// Counts as an in-flight generation of `ctx` until destroyed.
  Generation(ServerContext& ctx, std::string id, std::vector<Choice> choices, Clock::time_point arrival);
  /// Aborts choices still running (a client that went away) and records them as "abort".
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  /// Waits up to `timeout` for engine output and appends the resulting deltas (one per changed choice).
  /// Returns false once every choice has finished and all deltas were handed out.
  bool wait(std::vector<ChoiceDelta>& deltas, std::chrono::milliseconds timeout);
  /// Runs every choice to completion (non-streaming responses).
  void wait_all();

  bool done() const { return n_finished_ == static_cast<int>(choices_.size()); }
  int size() const { return static_cast<int>(choices_.size()); }
  const ChoiceState& choice(int i) const { return choices_[i].state; }
  const std::string& id() const { return id_; }
  Clock::time_point arrival() const { return arrival_; }

  /// Totals over choices: completion tokens, and speculative statistics as a JSON object
  /// {verify_steps, draft_tokens, accepted_tokens, mean_accept_length} (null when not speculative).
  int64_t completion_tokens() const;
  /// Prompt tokens found in the prefix cache, each distinct prompt once (its first choice's).
  int64_t cached_prompt_tokens() const;
  nlohmann::json spec_json() const;

  /// The first error message of a choice that finished with "error", or "".
  std::string first_error() const;

 private:
  struct Slot {
    Choice spec;
    ChoiceState state;
    std::unique_ptr<tokenizer::IncrementalDetokenizer> detok;
    std::unique_ptr<tokenizer::StopStringMatcher> stop;
  };

  void consume(int index, const engine::RequestOutput& out, std::vector<ChoiceDelta>& deltas);
  void finish_choice(Slot& s, const std::string& reason);

  ServerContext& ctx_;
  std::string id_;
  Clock::time_point arrival_;
  std::shared_ptr<OutputQueue> queue_;
  std::vector<Slot> choices_;
  int n_finished_ = 0;
};

}  // namespace tandem::server
