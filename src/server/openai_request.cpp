#include "server/openai_request.h"

#include <fmt/format.h>

#include "core/error.h"
#include "parsers/reasoning_parser.h"
#include "server/chat_messages.h"
#include "server/errors.h"
#include "tokenizer/chat.h"

namespace tandem::server {

namespace {

constexpr int kMaxLogprobs = 20;   // OpenAI's and vLLM's limit
constexpr int kMaxChoices = 128;   // n per request (OpenAI allows up to 128)
constexpr int kMaxStops = 16;

/// Sampling fields common to both endpoints (OpenAI's plus the vLLM / SGLang extensions).
void read_sampling(const ServerContext& ctx, const JsonFields& f, engine::GenerateRequest& r, TextOptions& t) {
  auto& s = r.sampling;
  if (auto v = f.number("temperature")) {
    if (*v < 0) bad_request(f.name("temperature"), fmt::format("'temperature' must be >= 0, got {}", *v));
    s.temperature = static_cast<float>(*v);
  }
  if (auto v = f.number("top_p")) {
    f.check_range("top_p", *v, 0.0, 1.0, /*lo_open=*/true);
    s.top_p = static_cast<float>(*v);
  }
  if (auto v = f.integer("top_k")) {
    if (*v < -1) bad_request(f.name("top_k"), fmt::format("'top_k' must be -1 (off), 0 (off) or >= 1, got {}", *v));
    s.top_k = *v < 0 ? 0 : static_cast<int>(std::min<int64_t>(*v, INT32_MAX));
  }
  if (auto v = f.number("min_p")) {
    f.check_range("min_p", *v, 0.0, 1.0);
    s.min_p = static_cast<float>(*v);
  }
  if (auto v = f.integer("seed")) s.seed = static_cast<uint64_t>(*v);
  if (auto v = f.number("presence_penalty")) {
    f.check_range("presence_penalty", *v, -2.0, 2.0);
    s.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = f.number("frequency_penalty")) {
    f.check_range("frequency_penalty", *v, -2.0, 2.0);
    s.frequency_penalty = static_cast<float>(*v);
  }
  if (auto v = f.number("repetition_penalty")) {
    if (*v <= 0) bad_request(f.name("repetition_penalty"), fmt::format("'repetition_penalty' must be > 0, got {}", *v));
    s.repetition_penalty = static_cast<float>(*v);
  }
  if (const auto bad = s.invalid_param()) bad_request(f.name(bad->field), bad->reason);  // e.g. 1e39 -> float inf
  t.stop = f.string_or_list("stop");
  if (static_cast<int>(t.stop.size()) > kMaxStops)
    bad_request(f.name("stop"), fmt::format("at most {} stop strings are allowed, got {}", kMaxStops, t.stop.size()));
  if (auto ids = f.int_list("stop_token_ids", 0, ctx.model().config.vocab_size - 1)) r.stop_token_ids = *ids;
  if (auto v = f.boolean("ignore_eos")) r.ignore_eos = *v;
  // Extension: false runs this request without the draft on a speculative server (same output, no drafts).
  if (auto v = f.boolean("speculative")) r.speculative = *v;
  if (auto v = f.boolean("skip_special_tokens")) t.skip_special_tokens = *v;
  if (auto v = f.boolean("include_stop_str_in_output")) t.include_stop_str = *v;
  if (const nlohmann::json* lb = f.raw("logit_bias")) {
    if (!lb->is_object()) bad_request(f.name("logit_bias"), "'logit_bias' must be an object");
    if (!lb->empty()) bad_request(f.name("logit_bias"), "logit_bias is not supported by this server", "unsupported");
  }
}

int read_n(const JsonFields& f) {
  const int64_t n = f.integer("n").value_or(1);
  if (n < 1 || n > kMaxChoices) bad_request(f.name("n"), fmt::format("'n' must be in [1, {}], got {}", kMaxChoices, n));
  if (auto b = f.integer("best_of"); b && *b != n)
    bad_request(f.name("best_of"), "best_of is not supported (it must be absent or equal to n)", "unsupported");
  return static_cast<int>(n);
}

StreamOptions read_stream(const JsonFields& f) {
  StreamOptions o;
  o.stream = f.boolean("stream").value_or(false);
  if (const nlohmann::json* so = f.raw("stream_options")) {
    const JsonFields sf(*so, f.name("stream_options."), {"include_usage", "continuous_usage_stats"});
    if (!o.stream) bad_request(f.name("stream_options"), "stream_options is only allowed when stream is true");
    o.include_usage = sf.boolean("include_usage").value_or(false);
    o.continuous_usage_stats = sf.boolean("continuous_usage_stats").value_or(false);
  }
  return o;
}

void check_prompt_ids(const ServerContext& ctx, const std::vector<int32_t>& ids, const std::string& param) {
  const int64_t V = ctx.model().config.vocab_size;
  if (ids.empty()) bad_request(param, "the prompt is empty");
  for (int32_t t : ids)
    if (t < 0 || t >= V) bad_request(param, fmt::format("token id {} is outside the vocabulary [0, {})", t, V));
}

std::vector<int32_t> encode(const ServerContext& ctx, const std::string& text, bool add_special,
                            const std::string& param) {
  try {
    return ctx.tokenizer().encode(text, add_special);
  } catch (const Error& e) {
    bad_request(param, fmt::format("could not tokenize the prompt: {}", e.what()));
  }
}

/// One choice per (prompt, sample): seeds differ per sample so n > 1 with a seed gives n different,
/// reproducible samples.
std::vector<Generation::Choice> make_choices(const std::vector<std::vector<int32_t>>& prompts, int n,
                                             const engine::GenerateRequest& base, const TextOptions& text,
                                             const std::vector<int>& max_tokens) {
  std::vector<Generation::Choice> out;
  for (size_t p = 0; p < prompts.size(); ++p)
    for (int j = 0; j < n; ++j) {
      Generation::Choice c{.request = base, .text = text};
      c.request.prompt = prompts[p];
      c.request.max_tokens = max_tokens[p];
      if (base.sampling.seed) c.request.sampling.seed = *base.sampling.seed + static_cast<uint64_t>(j);
      out.push_back(std::move(c));
    }
  return out;
}

}  // namespace

void check_model_name(const ServerContext& ctx, const JsonFields& f) {
  // The --model path is accepted as an alias: vLLM and SGLang serve a model under the path they were given.
  if (auto m = f.string("model"); m && *m != ctx.options().served_model_name && *m != ctx.options().model_path)
    throw ApiError(404, fmt::format("The model `{}` does not exist; this server serves `{}`", *m,
                                    ctx.options().served_model_name),
                   f.name("model"), "model_not_found");
}

int resolve_max_tokens(std::optional<int64_t> requested, int64_t default_tokens, int64_t prompt_len,
                       int64_t max_model_len, const std::string& param) {
  const int64_t room = max_model_len - prompt_len;
  if (room < 1)
    throw ApiError(400,
                   fmt::format("This model's maximum context length is {} tokens. However, your prompt has {} "
                               "tokens, which leaves no room for a completion. Please shorten the prompt.",
                               max_model_len, prompt_len),
                   "prompt", "context_length_exceeded");
  if (requested) {
    if (*requested < 1) bad_request(param, fmt::format("'{}' must be at least 1, got {}", param, *requested));
    if (*requested > room)
      throw ApiError(400,
                     fmt::format("This model's maximum context length is {} tokens. However, you requested {} "
                                 "tokens ({} in the prompt, {} for the completion). Please reduce the prompt or {}.",
                                 max_model_len, prompt_len + *requested, prompt_len, *requested, param),
                     param, "context_length_exceeded");
    return static_cast<int>(*requested);
  }
  return static_cast<int>(default_tokens > 0 ? std::min(default_tokens, room) : room);
}

CompletionRequest parse_completion_request(const ServerContext& ctx, const nlohmann::json& body) {
  const JsonFields f(body, "",
                     {"model", "prompt", "max_tokens", "temperature", "top_p", "n", "stream", "stream_options",
                      "logprobs", "echo", "stop", "presence_penalty", "frequency_penalty", "best_of", "logit_bias",
                      "user", "seed", "suffix", "top_k", "min_p", "repetition_penalty", "ignore_eos",
                      "stop_token_ids", "skip_special_tokens", "include_stop_str_in_output", "speculative"});
  check_model_name(ctx, f);
  CompletionRequest req;
  if (auto s = f.string("suffix"); s && !s->empty())
    bad_request("suffix", "suffix is not supported by this server", "unsupported");

  // prompt: a string, a list of token ids, a list of strings, or a list of token-id lists.
  const nlohmann::json* p = f.raw("prompt");
  if (!p) bad_request("prompt", "'prompt' is required", "missing_required_parameter");
  auto add_text = [&](const std::string& text) {
    req.prompts.push_back(encode(ctx, text, /*add_special=*/true, "prompt"));
    req.prompt_texts.push_back(text);
  };
  auto add_ids = [&](const nlohmann::json& arr) {
    std::vector<int32_t> ids;
    for (const auto& e : arr) {
      if (!e.is_number_integer())
        bad_request("prompt", fmt::format("'prompt' token lists must hold integers, got {}", json_type_name(e)),
                    "invalid_type");
      const int64_t v = e.is_number_unsigned() && e.get<uint64_t>() > INT32_MAX ? INT64_MAX : e.get<int64_t>();
      if (v < 0 || v >= ctx.model().config.vocab_size)
        bad_request("prompt", fmt::format("token id {} is outside the vocabulary [0, {})", v,
                                          ctx.model().config.vocab_size));
      ids.push_back(static_cast<int32_t>(v));
    }
    req.prompts.push_back(std::move(ids));
    req.prompt_texts.push_back("");  // decoded below, once the ids are checked
  };
  if (p->is_string()) {
    add_text(p->get<std::string>());
  } else if (p->is_array()) {
    if (p->empty()) bad_request("prompt", "'prompt' must not be an empty list");
    if ((*p)[0].is_number_integer()) {
      add_ids(*p);
    } else {
      for (const auto& e : *p) {
        if (e.is_string()) add_text(e.get<std::string>());
        else if (e.is_array()) add_ids(e);
        else
          bad_request("prompt",
                      fmt::format("'prompt' list elements must be strings or token-id lists, got {}",
                                  json_type_name(e)),
                      "invalid_type");
      }
    }
  } else {
    bad_request("prompt",
                fmt::format("'prompt' must be a string, a list of token ids, or a list of them, got {}",
                            json_type_name(*p)),
                "invalid_type");
  }
  for (size_t i = 0; i < req.prompts.size(); ++i) {
    check_prompt_ids(ctx, req.prompts[i], "prompt");
    if (req.prompt_texts[i].empty()) req.prompt_texts[i] = ctx.tokenizer().decode(req.prompts[i], false);
  }

  req.n = read_n(f);
  if (req.prompts.size() * static_cast<size_t>(req.n) > static_cast<size_t>(kMaxChoices) * 2)
    bad_request("n", fmt::format("{} prompts x n={} is more than {} choices", req.prompts.size(), req.n, kMaxChoices * 2));
  req.echo = f.boolean("echo").value_or(false);
  if (auto lp = f.integer("logprobs")) {
    if (*lp < 0 || *lp > kMaxLogprobs)
      bad_request("logprobs", fmt::format("'logprobs' must be in [0, {}], got {}", kMaxLogprobs, *lp));
    req.logprobs = static_cast<int>(*lp);
  }
  if (req.echo && req.logprobs >= 0)
    bad_request("echo", "echo with logprobs needs prompt logprobs, which this server does not compute",
                "unsupported");
  req.stream = read_stream(f);

  engine::GenerateRequest base;
  TextOptions text;
  read_sampling(ctx, f, base, text);
  base.top_logprobs = req.logprobs;
  std::vector<int> max_tokens;
  const auto requested = f.integer("max_tokens");
  for (const auto& ids : req.prompts)
    max_tokens.push_back(resolve_max_tokens(requested, 16, static_cast<int64_t>(ids.size()), ctx.max_model_len(),
                                            "max_tokens"));
  req.choices = make_choices(req.prompts, req.n, base, text, max_tokens);
  return req;
}

ChatPrompt render_chat_prompt(const ServerContext& ctx, const nlohmann::ordered_json& body,
                              bool add_generation_prompt) {
  return render_chat_prompt(ctx.tokenizer(), body, add_generation_prompt);
}

ChatPrompt render_chat_prompt(const tokenizer::Tokenizer& tok, const nlohmann::ordered_json& body,
                              bool add_generation_prompt) {
  const nlohmann::ordered_json* msgs = ordered_member(body, "messages");
  if (!msgs) bad_request("messages", "'messages' is required", "missing_required_parameter");
  const nlohmann::ordered_json messages = template_messages(*msgs);
  ChatPrompt p;
  p.tools = read_chat_tools(ordered_member(body, "tools"), ordered_member(body, "tool_choice"));
  nlohmann::ordered_json kwargs = nlohmann::ordered_json::object();
  if (const nlohmann::ordered_json* k = ordered_member(body, "chat_template_kwargs")) {
    if (!k->is_object())
      bad_request("chat_template_kwargs", "'chat_template_kwargs' must be an object", "invalid_type");
    kwargs = *k;
  }
  try {
    p.text = tokenizer::apply_chat_template(tok, messages, p.tools.tools, add_generation_prompt, kwargs);
  } catch (const Error& e) {
    bad_request("messages", fmt::format("the chat template failed: {}", e.what()));
  }
  return p;
}

ChatInput chat_input(const ServerContext& ctx, const ChatPrompt& prompt, const std::string& param) {
  const OutputParsers& chosen = ctx.output_parsers();
  ChatInput in;
  in.output = {.tool_parser = prompt.tools.parse_calls ? chosen.tool_parser : "",
               .reasoning_parser = chosen.reasoning_parser,
               .starts_in_reasoning = parsers::prompt_opens_reasoning(prompt.text),
               .schemas = prompt.tools.schemas};
  in.prompt = encode(ctx, prompt.text, /*add_special=*/false, param);
  check_prompt_ids(ctx, in.prompt, param);
  return in;
}

void keep_parser_tags(const ServerContext& ctx, const ChatOutputOptions& output, TextOptions& text) {
  const bool parsed = !output.tool_parser.empty() || !output.reasoning_parser.empty();
  if (parsed && ctx.output_parsers().keep_special_tokens) text.skip_special_tokens = false;
}

ChatRequest parse_chat_request(const ServerContext& ctx, const nlohmann::ordered_json& body) {
  const nlohmann::json sorted = body;  // for the typed field getters; the template gets `body`'s order
  const JsonFields f(sorted, "",
                     {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
                      "stream", "stream_options", "logprobs", "top_logprobs", "stop", "presence_penalty",
                      "frequency_penalty", "logit_bias", "user", "seed", "tools", "tool_choice",
                      "parallel_tool_calls", "response_format", "top_k", "min_p", "repetition_penalty",
                      "ignore_eos", "stop_token_ids", "skip_special_tokens", "include_stop_str_in_output",
                      "add_generation_prompt", "chat_template_kwargs", "speculative"});
  check_model_name(ctx, f);
  ChatRequest req;
  (void)f.boolean("parallel_tool_calls");  // type-checked; not enforced (see the header)
  if (const nlohmann::json* rf = f.raw("response_format")) {
    if (!rf->is_object() || !rf->contains("type") || (*rf)["type"] != "text")
      bad_request("response_format", "only response_format {\"type\": \"text\"} is supported", "unsupported");
  }
  const ChatPrompt prompt = render_chat_prompt(ctx, body, f.boolean("add_generation_prompt").value_or(true));
  ChatInput input = chat_input(ctx, prompt, "messages");
  req.prompt = std::move(input.prompt);
  req.output = std::move(input.output);

  req.n = read_n(f);
  req.logprobs = f.boolean("logprobs").value_or(false);
  if (auto k = f.integer("top_logprobs")) {
    if (*k < 0 || *k > kMaxLogprobs)
      bad_request("top_logprobs", fmt::format("'top_logprobs' must be in [0, {}], got {}", kMaxLogprobs, *k));
    if (!req.logprobs) bad_request("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    req.top_logprobs = static_cast<int>(*k);
  }
  req.stream = read_stream(f);

  engine::GenerateRequest base;
  TextOptions text;
  read_sampling(ctx, f, base, text);
  keep_parser_tags(ctx, req.output, text);
  base.top_logprobs = req.logprobs ? req.top_logprobs : -1;
  const bool has_mct = f.raw("max_completion_tokens") != nullptr;
  const auto requested = has_mct ? f.integer("max_completion_tokens") : f.integer("max_tokens");
  const int mt = resolve_max_tokens(requested, 0, static_cast<int64_t>(req.prompt.size()), ctx.max_model_len(),
                                    has_mct ? "max_completion_tokens" : "max_tokens");
  req.choices = make_choices({req.prompt}, req.n, base, text, std::vector<int>{mt});
  return req;
}

}  // namespace tandem::server
