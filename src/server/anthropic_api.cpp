#include "server/anthropic_api.h"

#include <fmt/format.h>

#include <memory>
#include <optional>

#include "core/log.h"
#include "server/anthropic_output.h"
#include "server/anthropic_request.h"
#include "server/errors.h"
#include "server/generation.h"
#include "server/json_fields.h"
#include "server/sse.h"

namespace tandem::server {
namespace {

using OJson = nlohmann::ordered_json;

constexpr auto kPoll = std::chrono::milliseconds(100);

struct MessagesShared {
  std::string id;
  std::string model;
  MessagesRequest req;
};

OJson usage_json(const Generation& g, int64_t prompt_tokens) {
  const int64_t cached = g.cached_prompt_tokens();
  OJson u = {{"input_tokens", prompt_tokens - cached},
             {"cache_creation_input_tokens", 0},
             {"cache_read_input_tokens", cached},
             {"output_tokens", g.completion_tokens()}};
  if (nlohmann::json spec = g.spec_json(); !spec.is_null()) u["spec"] = OJson(spec);
  return u;
}

OJson message_json(const MessagesShared& c, OJson content, const AnthropicStop& stop, OJson usage) {
  return {{"id", c.id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", c.model},
          {"content", std::move(content)},
          {"stop_reason", stop.reason.empty() ? OJson() : OJson(stop.reason)},
          {"stop_sequence", stop.sequence},
          {"usage", std::move(usage)}};
}

/// The error a finished choice carries, if it did not end with a stop or the token limit.
std::optional<ApiError> failure(const ChoiceState& s) {
  if (s.finish_reason == "error") return ApiError(500, fmt::format("generation failed: {}", s.error));
  if (s.finish_reason == "abort") return ApiError(503, "the generation was aborted (the server is stopping)");
  return std::nullopt;
}

std::string error_event(const ApiError& e) {
  return sse_event("error", error_body(e, ErrorShape::kAnthropic));
}

void log_finish(const Generation& g, int64_t prompt_tokens) {
  const double e2e = std::chrono::duration<double>(Clock::now() - g.arrival()).count();
  log::info("request {} finished finish={} prompt_tokens={} completion_tokens={} e2e_s={:.3f}", g.id(),
            g.choice(0).finish_reason, prompt_tokens, g.completion_tokens(), e2e);
}

class MessagesStream : public EventStream {
 public:
  MessagesStream(std::shared_ptr<MessagesShared> c, std::unique_ptr<Generation> g)
      : c_(std::move(c)), g_(std::move(g)), content_(c_->req.output, c_->id) {}

  ~MessagesStream() override { log_finish(*g_, prompt_tokens()); }

  bool next(std::string& out) override {
    if (ended_) return false;
    try {
      return step(out);
    } catch (const std::exception& e) {
      log::error("request {}: stream failed: {}", c_->id, e.what());
      out += error_event(ApiError(500, fmt::format("stream failed: {}", e.what())));
      ended_ = true;
      return false;
    }
  }

 private:
  int64_t prompt_tokens() const { return static_cast<int64_t>(c_->req.prompt.size()); }

  bool step(std::string& out) {
    std::vector<ChoiceDelta> deltas;
    g_->wait(deltas, kPoll);
    if (!started_) {
      // message_start carries the prompt's usage, cache hit included: known once the engine admitted the
      // prompt, which its first output (or the end of the request) shows.
      if (deltas.empty() && !g_->done()) return true;
      OJson message = message_json(*c_, OJson::array(), {}, usage_json(*g_, prompt_tokens()));
      message["usage"]["output_tokens"] = 0;
      message["usage"].erase("spec");
      out += sse_event("message_start", {{"type", "message_start"}, {"message", std::move(message)}});
      started_ = true;
    }
    const ChoiceState& s = g_->choice(0);
    for (const ChoiceDelta& d : deltas) {
      if (s.finish_reason == "error" || s.finish_reason == "abort") continue;  // reported below
      for (OJson& e : content_.push(d.text, d.finished)) {
        const std::string type = e["type"];
        out += sse_event(type, e);
      }
    }
    if (!g_->done()) return true;
    ended_ = true;
    if (const auto err = failure(s)) {
      out += error_event(*err);
      return false;
    }
    const AnthropicStop stop = anthropic_stop(s, content_.called_tools());
    out += sse_event("message_delta",
                     {{"type", "message_delta"},
                      {"delta", {{"stop_reason", stop.reason}, {"stop_sequence", stop.sequence}}},
                      {"usage", usage_json(*g_, prompt_tokens())}});
    out += sse_event("message_stop", {{"type", "message_stop"}});
    return false;
  }

  std::shared_ptr<MessagesShared> c_;
  std::unique_ptr<Generation> g_;
  AnthropicContent content_;
  bool started_ = false;
  bool ended_ = false;
};

}  // namespace

Reply handle_messages(ServerContext& ctx, const std::string& body, Clock::time_point arrival) {
  auto c = std::make_shared<MessagesShared>();
  c->req = parse_messages_request(ctx, parse_body_ordered(body));
  c->id = ctx.new_id("msg_");
  c->model = ctx.options().served_model_name;
  const int64_t prompt_tokens = static_cast<int64_t>(c->req.prompt.size());
  log::info("request {} /v1/messages prompt_tokens={} max_tokens={} stream={}", c->id, prompt_tokens,
            c->req.choice.request.max_tokens, c->req.stream);
  std::vector<Generation::Choice> choices;
  choices.push_back(std::move(c->req.choice));
  auto g = std::make_unique<Generation>(ctx, c->id, std::move(choices), arrival);
  if (c->req.stream) return Reply::events(std::make_unique<MessagesStream>(c, std::move(g)));
  g->wait_all();
  log_finish(*g, prompt_tokens);
  const ChoiceState& s = g->choice(0);
  if (const auto err = failure(s)) throw *err;
  AnthropicContent content(c->req.output, c->id);  // the stream's parse, in one piece
  (void)content.push(s.text, /*last=*/true);
  const OJson message = message_json(*c, content.content(), anthropic_stop(s, content.called_tools()),
                                     usage_json(*g, prompt_tokens));
  return Reply::text(dump_json(message), "application/json");
}

Reply handle_count_tokens(ServerContext& ctx, const std::string& body) {
  const int64_t n = count_message_tokens(ctx, parse_body_ordered(body));
  return Reply::json({{"input_tokens", n}});
}

}  // namespace tandem::server
