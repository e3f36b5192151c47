#include "server/native_api.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "server/errors.h"
#include "server/generation.h"
#include "server/logprobs.h"
#include "server/openai_request.h"
#include "server/sse.h"

namespace tandem::server {

namespace {

struct NativeRequest {
  std::vector<Generation::Choice> choices;
  std::vector<std::string> rids;
  bool batch = false;
  bool stream = false;
  bool return_logprob = false;
};

NativeRequest parse_generate(const ServerContext& ctx, const nlohmann::json& body, const std::string& id) {
  const JsonFields f(body, "",
                     {"text", "input_ids", "sampling_params", "stream", "rid", "return_logprob", "top_logprobs_num",
                      "return_text_in_logprobs", "model"});
  check_model_name(ctx, f);
  NativeRequest req;
  const nlohmann::json* text = f.raw("text");
  const nlohmann::json* ids = f.raw("input_ids");
  if ((text != nullptr) == (ids != nullptr)) bad_request("text", "give exactly one of 'text' and 'input_ids'");
  std::vector<std::vector<int32_t>> prompts;
  const int64_t V = ctx.model().config.vocab_size;
  if (text) {
    auto enc = [&](const nlohmann::json& t) {
      if (!t.is_string()) bad_request("text", fmt::format("'text' must be a string or a list of strings, got {}",
                                                          json_type_name(t)), "invalid_type");
      try {
        prompts.push_back(ctx.tokenizer().encode(t.get<std::string>(), /*add_special_tokens=*/true));
      } catch (const Error& e) {
        bad_request("text", fmt::format("could not tokenize the text: {}", e.what()));
      }
    };
    if (text->is_array()) {
      req.batch = true;
      for (const auto& t : *text) enc(t);
    } else {
      enc(*text);
    }
  } else {
    auto ids_of = [&](const nlohmann::json& a) {
      if (!a.is_array()) bad_request("input_ids", "'input_ids' must be a list of token ids", "invalid_type");
      std::vector<int32_t> out;
      for (const auto& e : a) {
        if (!e.is_number_integer()) bad_request("input_ids", "'input_ids' must hold integers", "invalid_type");
        const int64_t v = e.is_number_unsigned() && e.get<uint64_t>() > INT32_MAX ? INT64_MAX : e.get<int64_t>();
        if (v < 0 || v >= V)
          bad_request("input_ids", fmt::format("token id {} is outside the vocabulary [0, {})", v, V));
        out.push_back(static_cast<int32_t>(v));
      }
      return out;
    };
    if (!ids->is_array()) bad_request("input_ids", "'input_ids' must be a list of token ids", "invalid_type");
    if (!ids->empty() && (*ids)[0].is_array()) {
      req.batch = true;
      for (const auto& a : *ids) prompts.push_back(ids_of(a));
    } else {
      prompts.push_back(ids_of(*ids));
    }
  }
  if (prompts.empty()) bad_request(text ? "text" : "input_ids", "the batch is empty");
  if (prompts.size() > 256) bad_request(text ? "text" : "input_ids", "at most 256 prompts per request");
  for (const auto& p : prompts)
    if (p.empty()) bad_request(text ? "text" : "input_ids", "the prompt is empty");

  req.stream = f.boolean("stream").value_or(false);
  if (req.stream && req.batch) bad_request("stream", "streaming a batch of prompts is not supported", "unsupported");
  req.return_logprob = f.boolean("return_logprob").value_or(false);
  int top_n = 0;
  if (auto k = f.integer("top_logprobs_num")) {
    if (*k < 0 || *k > 20) bad_request("top_logprobs_num", fmt::format("'top_logprobs_num' must be in [0, 20], got {}", *k));
    top_n = static_cast<int>(*k);
  }
  (void)f.boolean("return_text_in_logprobs");

  engine::GenerateRequest base;
  base.top_logprobs = req.return_logprob ? top_n : -1;
  base.sampling.top_k = 0;
  TextOptions topts;
  std::optional<int64_t> max_new;
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json* spj = f.raw("sampling_params");
  const JsonFields sp(spj ? *spj : empty, "sampling_params.",
                      {"max_new_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "stop_token_ids",
                       "ignore_eos", "skip_special_tokens", "no_stop_trim", "presence_penalty", "frequency_penalty",
                       "repetition_penalty", "n", "sampling_seed", "speculative"});
  max_new = sp.integer("max_new_tokens");
  auto& s = base.sampling;
  if (auto v = sp.number("temperature")) {
    if (*v < 0) bad_request(sp.name("temperature"), fmt::format("'{}' must be >= 0, got {}", sp.name("temperature"), *v));
    s.temperature = static_cast<float>(*v);
  }
  if (auto v = sp.number("top_p")) {
    sp.check_range("top_p", *v, 0.0, 1.0, true);
    s.top_p = static_cast<float>(*v);
  }
  if (auto v = sp.integer("top_k")) {
    if (*v < -1 || *v == 0) bad_request(sp.name("top_k"), fmt::format("'{}' must be -1 (off) or >= 1, got {}", sp.name("top_k"), *v));
    s.top_k = *v < 0 ? 0 : static_cast<int>(std::min<int64_t>(*v, INT32_MAX));
  }
  if (auto v = sp.number("min_p")) {
    sp.check_range("min_p", *v, 0.0, 1.0);
    s.min_p = static_cast<float>(*v);
  }
  if (auto v = sp.number("presence_penalty")) {
    sp.check_range("presence_penalty", *v, -2.0, 2.0);
    s.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = sp.number("frequency_penalty")) {
    sp.check_range("frequency_penalty", *v, -2.0, 2.0);
    s.frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = sp.number("repetition_penalty")) {
    if (*v <= 0) bad_request(sp.name("repetition_penalty"), "'sampling_params.repetition_penalty' must be > 0");
    s.repetition_penalty = static_cast<float>(*v);
  }
  if (const auto bad = s.invalid_param()) bad_request(sp.name(bad->field), bad->reason);  // e.g. 1e39 -> float inf
  if (auto v = sp.integer("sampling_seed")) s.seed = static_cast<uint64_t>(*v);
  if (auto n = sp.integer("n"); n && *n != 1)
    bad_request(sp.name("n"), "sampling_params.n must be 1 here; send the request n times or use /v1/completions",
                "unsupported");
  topts.stop = sp.string_or_list("stop");
  if (auto st = sp.int_list("stop_token_ids", 0, V - 1)) base.stop_token_ids = *st;
  if (auto v = sp.boolean("ignore_eos")) base.ignore_eos = *v;
  if (auto v = sp.boolean("speculative")) base.speculative = *v;  // false: no draft for this request
  if (auto v = sp.boolean("skip_special_tokens")) topts.skip_special_tokens = *v;
  if (auto v = sp.boolean("no_stop_trim")) topts.include_stop_str = *v;

  std::vector<std::string> rids;
  if (const nlohmann::json* rid = f.raw("rid")) {
    if (rid->is_string() && !req.batch) rids.push_back(rid->get<std::string>());
    else if (rid->is_array() && req.batch && rid->size() == prompts.size()) {
      for (const auto& r : *rid) {
        if (!r.is_string()) bad_request("rid", "'rid' entries must be strings", "invalid_type");
        rids.push_back(r.get<std::string>());
      }
    } else {
      bad_request("rid", "'rid' must be a string (or a list of one per prompt for a batch)", "invalid_type");
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    Generation::Choice c{.request = base, .text = topts};
    c.request.prompt = prompts[i];
    // SGLang's default max_new_tokens is 128.
    c.request.max_tokens = resolve_max_tokens(max_new, 128, static_cast<int64_t>(prompts[i].size()),
                                              ctx.max_model_len(), "sampling_params.max_new_tokens");
    req.choices.push_back(std::move(c));
    req.rids.push_back(i < rids.size() ? rids[i] : (req.batch ? fmt::format("{}-{}", id, i) : id));
  }
  return req;
}

nlohmann::json finish_reason_json(const ChoiceState& s) {
  if (!s.finished) return nullptr;
  if (s.finish_reason == "stop") {
    nlohmann::json j = {{"type", "stop"}};
    if (!s.matched.is_null()) j["matched"] = s.matched;
    return j;
  }
  if (s.finish_reason == "length") return {{"type", "length"}, {"length", s.tokens.size()}};
  if (s.finish_reason == "error") return {{"type", "abort"}, {"message", s.error}};
  return {{"type", "abort"}, {"message", "aborted"}};
}

nlohmann::json meta_info(const ServerContext& ctx, const Generation& g, int i, const std::string& rid, bool logprob) {
  const ChoiceState& s = g.choice(i);
  nlohmann::json m = {{"id", rid},
                      {"finish_reason", finish_reason_json(s)},
                      {"prompt_tokens", s.prompt_tokens},
                      {"completion_tokens", s.tokens.size()},
                      {"cached_tokens", s.cached_tokens},
                      {"e2e_latency", std::chrono::duration<double>(Clock::now() - g.arrival()).count()}};
  if (ctx.loop().engine().speculative()) {
    const auto& sp = s.spec;
    m["spec_verify_ct"] = sp.verify_steps;
    m["spec_accept_length"] = spec::accept_length(sp.speculative_tokens(s.engine_completion_tokens), sp.verify_steps);
    m["spec_accept_rate"] =
        sp.draft_tokens > 0 ? static_cast<double>(sp.accepted_tokens) / static_cast<double>(sp.draft_tokens) : 0.0;
    m["spec_accept_token_num"] = sp.accepted_tokens;
    m["spec_draft_token_num"] = sp.draft_tokens;
  }
  if (logprob) {
    m["output_token_logprobs"] = native_token_logprobs(ctx.tokenizer(), s.logprobs);
    m["output_top_logprobs"] = native_top_logprobs(ctx.tokenizer(), s.logprobs);
  }
  return m;
}

nlohmann::json result_json(const ServerContext& ctx, const Generation& g, int i, const NativeRequest& r) {
  const ChoiceState& s = g.choice(i);
  return {{"text", s.text}, {"output_ids", s.tokens}, {"meta_info", meta_info(ctx, g, i, r.rids[i], r.return_logprob)}};
}

class GenerateStream : public EventStream {
 public:
  GenerateStream(ServerContext& ctx, NativeRequest req, std::unique_ptr<Generation> g)
      : ctx_(ctx), req_(std::move(req)), g_(std::move(g)) {}

  bool next(std::string& out) override {
    if (ended_) return false;
    std::vector<ChoiceDelta> deltas;
    g_->wait(deltas, std::chrono::milliseconds(100));
    // An event carries the choice's cumulative state (SGLang's framing), so several deltas that arrived
    // together become one event: rendering each of them from the current state would repeat the final
    // text and show finish_reason on an event that is not the last.
    std::vector<int> changed;
    for (const auto& d : deltas) {
      if (g_->choice(d.choice).finish_reason == "error") continue;
      if (d.text.empty() && !d.finished && d.token_end == d.token_begin) continue;
      if (std::find(changed.begin(), changed.end(), d.choice) == changed.end()) changed.push_back(d.choice);
    }
    for (int c : changed) out += sse_event(result_json(ctx_, *g_, c, req_));
    if (!g_->done()) return true;
    if (std::string e = g_->first_error(); !e.empty())
      out += sse_event(ApiError(500, fmt::format("generation failed: {}", e), "", "internal_error").to_json());
    out += kSseDone;
    ended_ = true;
    return false;
  }

 private:
  ServerContext& ctx_;
  NativeRequest req_;
  std::unique_ptr<Generation> g_;
  bool ended_ = false;
};

}  // namespace

Reply handle_generate(ServerContext& ctx, const std::string& body, Clock::time_point arrival) {
  const std::string id = ctx.new_id("gen-");
  NativeRequest req = parse_generate(ctx, parse_body(body), id);
  log::info("request {} /generate prompts={} max_new_tokens={} stream={}", id, req.choices.size(),
            req.choices.front().request.max_tokens, req.stream);
  auto g = std::make_unique<Generation>(ctx, id, req.choices, arrival);
  if (req.stream) return Reply::events(std::make_unique<GenerateStream>(ctx, std::move(req), std::move(g)));
  g->wait_all();
  if (std::string e = g->first_error(); !e.empty())
    throw ApiError(500, fmt::format("generation failed: {}", e), "", "internal_error");
  log::info("request {} finished completion_tokens={}", id, g->completion_tokens());
  if (!req.batch) return Reply::json(result_json(ctx, *g, 0, req));
  nlohmann::json arr = nlohmann::json::array();
  for (int i = 0; i < g->size(); ++i) arr.push_back(result_json(ctx, *g, i, req));
  return Reply::json(arr);
}

Reply handle_tokenize(ServerContext& ctx, const std::string& body) {
  const nlohmann::ordered_json ordered = parse_body_ordered(body);  // messages and tools reach the template as sent
  const nlohmann::json j = ordered;
  const JsonFields f(j, "",
                     {"model", "prompt", "messages", "add_special_tokens", "add_generation_prompt",
                      "return_token_strs", "tools", "chat_template_kwargs"});
  check_model_name(ctx, f);
  const bool has_prompt = f.raw("prompt") != nullptr, has_messages = f.raw("messages") != nullptr;
  if (has_prompt == has_messages) bad_request("prompt", "give exactly one of 'prompt' and 'messages'");
  std::vector<int32_t> ids;
  try {
    if (has_prompt) {
      const std::string prompt = *f.string("prompt");
      ids = ctx.tokenizer().encode(prompt, f.boolean("add_special_tokens").value_or(true));
    } else {
      // The same prompt as /v1/chat/completions renders for these messages and tools.
      const ChatPrompt prompt = render_chat_prompt(ctx, ordered, f.boolean("add_generation_prompt").value_or(true));
      ids = ctx.tokenizer().encode(prompt.text, f.boolean("add_special_tokens").value_or(false));
    }
  } catch (const Error& e) {
    bad_request(has_prompt ? "prompt" : "messages", e.what());
  }
  nlohmann::json out = {{"count", ids.size()}, {"max_model_len", ctx.max_model_len()}, {"tokens", ids},
                        {"token_strs", nullptr}};
  if (f.boolean("return_token_strs").value_or(false)) {
    nlohmann::json strs = nlohmann::json::array();
    for (int32_t t : ids) strs.push_back(token_text(ctx.tokenizer(), t));
    out["token_strs"] = strs;
  }
  return Reply::json(out);
}

Reply handle_detokenize(ServerContext& ctx, const std::string& body) {
  const nlohmann::json j = parse_body(body);
  const JsonFields f(j, "", {"model", "tokens"});
  check_model_name(ctx, f);
  const auto ids = f.int_list("tokens", 0, ctx.model().config.vocab_size - 1);
  if (!ids) bad_request("tokens", "'tokens' is required", "missing_required_parameter");
  return Reply::json({{"prompt", ctx.tokenizer().decode(*ids, /*skip_special_tokens=*/false)}});
}

Reply handle_model_info(ServerContext& ctx) {
  const auto& m = ctx.model();
  return Reply::json({{"model_path", ctx.options().model_path},
                      {"tokenizer_path", ctx.options().model_path},
                      {"served_model_name", ctx.options().served_model_name},
                      {"is_generation", true},
                      {"architecture", "Glm4MoeForCausalLM"},
                      {"vocab_size", m.config.vocab_size},
                      {"max_model_len", ctx.max_model_len()},
                      {"eos_token_ids", ctx.eos_token_ids()},
                      {"has_draft", m.draft != nullptr},
                      {"checkpoint_has_mtp", m.checkpoint_has_mtp},
                      {"weight_version", "default"}});
}

Reply handle_server_info(ServerContext& ctx) {
  const auto& eng = ctx.loop().engine();
  const engine::EngineSnapshot snap = ctx.loop().snapshot();
  nlohmann::ordered_json j = ctx.server_args();
  j["max_total_num_tokens"] = eng.kv_capacity_tokens();
  j["kv_cache_bytes"] = eng.kv_cache_bytes();
  j["max_model_len"] = eng.max_model_len();
  j["speculative"] = eng.speculative();
  const auto& c = snap.counters;
  j["internal_states"] = nlohmann::ordered_json::array(
      {{{"avg_spec_accept_length", mean_accept_length(c)},
        {"spec_num_drafts", c.spec_num_drafts},
        {"spec_num_draft_tokens", c.spec_num_draft_tokens},
        {"spec_num_accepted_tokens", c.spec_num_accepted_tokens},
        {"spec_accepted_per_pos", c.spec_accepted_per_pos},
        {"spec_decode_collapsed", c.spec_collapsed != 0},
        {"spec_window_accept_length", c.spec_window_accept_length},
        {"num_running_reqs", snap.running},
        {"num_waiting_reqs", snap.waiting},
        {"kv_blocks_used", snap.kv_blocks_used},
        {"kv_blocks_total", snap.kv_blocks_total},
        {"prompt_tokens_total", c.prompt_tokens},
        {"generation_tokens_total", c.generation_tokens},
        {"preemptions_total", c.preemptions}}});
  j["draft_precision"] = ctx.model().draft ? nlohmann::ordered_json::parse(ctx.model().draft_precision.to_json().dump())
                                           : nlohmann::ordered_json();
  j["version"] = "tandem 0.1.0";
  return Reply::text(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

}  // namespace tandem::server
