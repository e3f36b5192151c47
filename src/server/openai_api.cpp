#include "server/openai_api.h"

#include <fmt/format.h>

#include "core/log.h"
#include "server/chat_output.h"
#include "server/errors.h"
#include "server/generation.h"
#include "server/logprobs.h"
#include "server/openai_request.h"
#include "server/sse.h"

namespace tandem::server {

namespace {

constexpr auto kPoll = std::chrono::milliseconds(100);

nlohmann::json usage_json(int64_t prompt_tokens, const Generation& g) {
  const int64_t completion = g.completion_tokens();
  nlohmann::json u = {{"prompt_tokens", prompt_tokens},
                      {"completion_tokens", completion},
                      {"total_tokens", prompt_tokens + completion},
                      {"prompt_tokens_details", {{"cached_tokens", g.cached_prompt_tokens()}}}};
  if (nlohmann::json spec = g.spec_json(); !spec.is_null()) u["spec"] = spec;
  return u;
}

nlohmann::json stop_reason(const ChoiceState& s) { return s.finish_reason == "stop" ? s.matched : nlohmann::json(); }

/// A choice that failed inside the engine fails the whole non-streaming response with 500.
void throw_if_failed(const Generation& g) {
  if (std::string e = g.first_error(); !e.empty())
    throw ApiError(500, fmt::format("generation failed: {}", e), "", "internal_error");
}

void log_start(const std::string& id, std::string_view route, size_t choices, int64_t prompt_tokens, int max_tokens,
               bool stream) {
  log::info("request {} {} choices={} prompt_tokens={} max_tokens={} stream={}", id, route, choices, prompt_tokens,
            max_tokens, stream);
}

void log_finish(const Generation& g, int64_t prompt_tokens) {
  std::string reasons;
  for (int i = 0; i < g.size(); ++i) reasons += (i ? "," : "") + g.choice(i).finish_reason;
  const double e2e = std::chrono::duration<double>(Clock::now() - g.arrival()).count();
  log::info("request {} finished finish={} prompt_tokens={} completion_tokens={} e2e_s={:.3f}", g.id(), reasons,
            prompt_tokens, g.completion_tokens(), e2e);
}

// ---------------------------------------------------------------------------------------------------------
// /v1/completions

struct CompletionShared {
  std::string id;
  std::string model;
  int64_t created = 0;
  int64_t prompt_tokens = 0;  // each prompt once, however many samples (vLLM's accounting)
  CompletionRequest req;
};

nlohmann::json completion_chunk(const CompletionShared& c, nlohmann::json choices) {
  nlohmann::json j = {{"id", c.id},           {"object", "text_completion"}, {"created", c.created},
                      {"model", c.model},     {"choices", std::move(choices)}};
  return j;
}

class CompletionStream : public EventStream {
 public:
  CompletionStream(ServerContext& ctx, std::shared_ptr<CompletionShared> c, std::unique_ptr<Generation> g)
      : ctx_(ctx), c_(std::move(c)), g_(std::move(g)), offsets_(g_->size(), 0), started_(g_->size(), false) {}

  ~CompletionStream() override { log_finish(*g_, c_->prompt_tokens); }

  bool next(std::string& out) override {
    if (ended_) return false;
    std::vector<ChoiceDelta> deltas;
    g_->wait(deltas, kPoll);
    for (const auto& d : deltas) {
      const ChoiceState& s = g_->choice(d.choice);
      if (s.finish_reason == "error") continue;  // reported once below, as an error event
      std::string text = d.text;
      if (!started_[d.choice] && c_->req.echo) text = c_->req.prompt_texts[d.choice / c_->req.n] + text;
      started_[d.choice] = true;
      nlohmann::json lp = nullptr;
      if (c_->req.logprobs >= 0 && d.token_end > d.token_begin)
        lp = completion_logprobs(ctx_.tokenizer(),
                                 std::span(s.logprobs).subspan(d.token_begin, d.token_end - d.token_begin),
                                 offsets_[d.choice]);
      if (text.empty() && lp.is_null() && !d.finished) continue;
      nlohmann::json choice = {{"index", d.choice},
                               {"text", text},
                               {"logprobs", lp},
                               {"finish_reason", d.finished ? nlohmann::json(s.finish_reason) : nlohmann::json()},
                               {"stop_reason", d.finished ? stop_reason(s) : nlohmann::json()}};
      nlohmann::json chunk = completion_chunk(*c_, nlohmann::json::array({choice}));
      add_usage(chunk);
      out += sse_event(chunk);
    }
    if (!g_->done()) return true;
    if (std::string e = g_->first_error(); !e.empty())
      out += sse_event(ApiError(500, fmt::format("generation failed: {}", e), "", "internal_error").to_json());
    if (c_->req.stream.include_usage) {
      nlohmann::json chunk = completion_chunk(*c_, nlohmann::json::array());
      chunk["usage"] = usage_json(c_->prompt_tokens, *g_);
      out += sse_event(chunk);
    }
    out += kSseDone;
    ended_ = true;
    return false;
  }

 private:
  void add_usage(nlohmann::json& chunk) const {
    if (!c_->req.stream.include_usage) return;
    chunk["usage"] = c_->req.stream.continuous_usage_stats ? usage_json(c_->prompt_tokens, *g_) : nlohmann::json();
  }

  ServerContext& ctx_;
  std::shared_ptr<CompletionShared> c_;
  std::unique_ptr<Generation> g_;
  std::vector<size_t> offsets_;
  std::vector<bool> started_;
  bool ended_ = false;
};

}  // namespace

Reply handle_completions(ServerContext& ctx, const std::string& body, Clock::time_point arrival) {
  auto c = std::make_shared<CompletionShared>();
  c->req = parse_completion_request(ctx, parse_body(body));
  c->id = ctx.new_id("cmpl-");
  c->model = ctx.options().served_model_name;
  c->created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
  for (const auto& p : c->req.prompts) c->prompt_tokens += static_cast<int64_t>(p.size());
  log_start(c->id, "/v1/completions", c->req.choices.size(), c->prompt_tokens,
            c->req.choices.front().request.max_tokens, c->req.stream.stream);
  auto g = std::make_unique<Generation>(ctx, c->id, std::move(c->req.choices), arrival);
  // With echo, a choice's first chunk carries the prompt text.
  if (c->req.stream.stream) return Reply::events(std::make_unique<CompletionStream>(ctx, c, std::move(g)));
  g->wait_all();
  log_finish(*g, c->prompt_tokens);
  throw_if_failed(*g);
  nlohmann::json choices = nlohmann::json::array();
  for (int i = 0; i < g->size(); ++i) {
    const ChoiceState& s = g->choice(i);
    const std::string echo = c->req.echo ? c->req.prompt_texts[i / c->req.n] : "";
    size_t offset = echo.size();
    choices.push_back({{"index", i},
                       {"text", echo + s.text},
                       {"logprobs", c->req.logprobs >= 0
                                        ? completion_logprobs(ctx.tokenizer(), s.logprobs, offset)
                                        : nlohmann::json()},
                       {"finish_reason", s.finish_reason},
                       {"stop_reason", stop_reason(s)}});
  }
  nlohmann::json j = completion_chunk(*c, std::move(choices));
  j["usage"] = usage_json(c->prompt_tokens, *g);
  return Reply::json(j);
}

// -------------------------------------------------------------------------------------------------------------
// /v1/chat/completions

namespace {

struct ChatShared {
  std::string id;
  std::string model;
  int64_t created = 0;
  ChatRequest req;
};

nlohmann::json chat_chunk(const ChatShared& c, nlohmann::json choices) {
  return {{"id", c.id},       {"object", "chat.completion.chunk"}, {"created", c.created},
          {"model", c.model}, {"choices", std::move(choices)}};
}

/// Seeds the ids of a choice's tool calls: unique per response and choice.
std::string call_id_seed(const ChatShared& c, int choice) { return c.id + "/" + std::to_string(choice); }

class ChatStream : public EventStream {
 public:
  ChatStream(ServerContext& ctx, std::shared_ptr<ChatShared> c, std::unique_ptr<Generation> g)
      : ctx_(ctx), c_(std::move(c)), g_(std::move(g)) {
    outputs_.reserve(g_->size());
    for (int i = 0; i < g_->size(); ++i) outputs_.emplace_back(c_->req.output, call_id_seed(*c_, i));
  }

  ~ChatStream() override { log_finish(*g_, static_cast<int64_t>(c_->req.prompt.size())); }

  bool next(std::string& out) override {
    if (ended_) return false;
    if (!opened_) {
      // OpenAI opens every choice with the assistant role and empty content, before any token.
      for (int i = 0; i < g_->size(); ++i) {
        nlohmann::json choice = {{"index", i},
                                 {"delta", {{"role", "assistant"}, {"content", ""}}},
                                 {"logprobs", nullptr},
                                 {"finish_reason", nullptr}};
        out += event(nlohmann::json::array({choice}));
      }
      opened_ = true;
      return true;
    }
    std::vector<ChoiceDelta> deltas;
    g_->wait(deltas, kPoll);
    for (const auto& d : deltas) {
      const ChoiceState& s = g_->choice(d.choice);
      if (s.finish_reason == "error") continue;
      nlohmann::json lp = nullptr;
      if (c_->req.logprobs && d.token_end > d.token_begin)
        lp = chat_logprobs(ctx_.tokenizer(), std::span(s.logprobs).subspan(d.token_begin, d.token_end - d.token_begin));
      // One chunk per delta of the parsed text (content, reasoning, a call's start, argument fragments); the
      // tokens' logprobs ride on the first, finish_reason only on a choice's last chunk (an empty delta when the
      // text ended with nothing new).
      ChatChoiceOutput& output = outputs_[d.choice];
      std::vector<nlohmann::json> parts = output.push(d.text, d.finished);
      if (parts.empty() && (!lp.is_null() || d.finished)) parts.push_back(nlohmann::json::object());
      for (size_t k = 0; k < parts.size(); ++k) {
        const bool last = d.finished && k + 1 == parts.size();
        nlohmann::json choice = {
            {"index", d.choice},
            {"delta", std::move(parts[k])},
            {"logprobs", k == 0 ? lp : nlohmann::json()},
            {"finish_reason", last ? nlohmann::json(output.finish_reason(s.finish_reason)) : nlohmann::json()},
            {"stop_reason", last ? stop_reason(s) : nlohmann::json()}};
        out += event(nlohmann::json::array({choice}));
      }
    }
    if (!g_->done()) return true;
    if (std::string e = g_->first_error(); !e.empty())
      out += sse_event(ApiError(500, fmt::format("generation failed: {}", e), "", "internal_error").to_json());
    if (c_->req.stream.include_usage) {
      nlohmann::json chunk = chat_chunk(*c_, nlohmann::json::array());
      chunk["usage"] = usage_json(static_cast<int64_t>(c_->req.prompt.size()), *g_);
      out += sse_event(chunk);
    }
    out += kSseDone;
    ended_ = true;
    return false;
  }

 private:
  std::string event(nlohmann::json choices) const {
    nlohmann::json chunk = chat_chunk(*c_, std::move(choices));
    if (c_->req.stream.include_usage)
      chunk["usage"] = c_->req.stream.continuous_usage_stats
                           ? usage_json(static_cast<int64_t>(c_->req.prompt.size()), *g_)
                           : nlohmann::json();
    return sse_event(chunk);
  }

  ServerContext& ctx_;
  std::shared_ptr<ChatShared> c_;
  std::unique_ptr<Generation> g_;
  std::vector<ChatChoiceOutput> outputs_;  // per choice
  bool opened_ = false;
  bool ended_ = false;
};

}  // namespace

Reply handle_chat_completions(ServerContext& ctx, const std::string& body, Clock::time_point arrival) {
  auto c = std::make_shared<ChatShared>();
  c->req = parse_chat_request(ctx, parse_body_ordered(body));
  c->id = ctx.new_id("chatcmpl-");
  c->model = ctx.options().served_model_name;
  c->created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count();
  const int64_t prompt_tokens = static_cast<int64_t>(c->req.prompt.size());
  log_start(c->id, "/v1/chat/completions", c->req.choices.size(), prompt_tokens,
            c->req.choices.front().request.max_tokens, c->req.stream.stream);
  auto g = std::make_unique<Generation>(ctx, c->id, std::move(c->req.choices), arrival);
  if (c->req.stream.stream) return Reply::events(std::make_unique<ChatStream>(ctx, c, std::move(g)));
  g->wait_all();
  log_finish(*g, prompt_tokens);
  throw_if_failed(*g);
  nlohmann::json choices = nlohmann::json::array();
  for (int i = 0; i < g->size(); ++i) {
    const ChoiceState& s = g->choice(i);
    ChatChoiceOutput output(c->req.output, call_id_seed(*c, i));  // the stream's parse, in one piece
    (void)output.push(s.text, /*last=*/true);
    choices.push_back({{"index", i},
                       {"message", output.message()},
                       {"logprobs", c->req.logprobs ? chat_logprobs(ctx.tokenizer(), s.logprobs) : nlohmann::json()},
                       {"finish_reason", output.finish_reason(s.finish_reason)},
                       {"stop_reason", stop_reason(s)}});
  }
  nlohmann::json j = {{"id", c->id},       {"object", "chat.completion"}, {"created", c->created},
                      {"model", c->model}, {"choices", std::move(choices)}};
  j["usage"] = usage_json(prompt_tokens, *g);
  return Reply::json(j);
}

// -------------------------------------------------------------------------------------------------------------
// /v1/models

Reply handle_models(ServerContext& ctx, std::string_view id) {
  const std::string& name = ctx.options().served_model_name;
  const nlohmann::json card = {{"id", name},
                               {"object", "model"},
                               {"created", ctx.created()},
                               {"owned_by", "tandem"},
                               {"root", ctx.options().model_path},
                               {"parent", nullptr},
                               {"max_model_len", ctx.max_model_len()}};
  if (!id.empty()) {
    if (id != name)
      throw ApiError(404, fmt::format("The model `{}` does not exist; this server serves `{}`", id, name), "model",
                     "model_not_found");
    return Reply::json(card);
  }
  return Reply::json({{"object", "list"}, {"data", nlohmann::json::array({card})}});
}

}  // namespace tandem::server
