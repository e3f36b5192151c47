// `tandem generate`: one request through the engine, printed as text or as one JSON object.
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <sstream>

#include "ops/backends.h"
#include "commands.h"
#include "core/log.h"
#include "engine/engine.h"
#include "kv_flags.h"
#include "prompt.h"
#include "tokenizer/detokenizer.h"
#include "spec_flags.h"

namespace tandem::app {

namespace {

struct GenerateFlags {
  ModelFlags model;
  KvFlags kv;  // --kv-cache-dtype
  std::string prompt;
  std::string prompt_ids;
  std::string chat;
  int max_tokens = 64;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  int64_t seed = -1;
  int top_logprobs = -1;
  bool json = false;
  bool ignore_eos = false;
  bool skip_special_tokens = true;
};

nlohmann::json spec_json(const engine::SpecStats& s, int64_t completion_tokens) {
  return {{"verify_steps", s.verify_steps},
          {"draft_tokens", s.draft_tokens},
          {"accepted_tokens", s.accepted_tokens},
          {"accepted_per_step_hist", s.accepted_hist},
          {"mean_accept_length", spec::accept_length(completion_tokens, s.verify_steps)}};
}

int run_generate(const GenerateFlags& f) {
  f.model.validate();
  f.model.refuse_bench_only("generate");
  f.kv.validate();
  auto backend = ops::make_backend(f.model.device, f.model.threads);
  auto model = models::load_model(f.model.model, f.model.load_options(), *backend);
  if (model->draft)
    log::info("draft: {} (stored {}): {}", model->draft_precision.running, model->draft_precision.stored,
              model->draft_precision.reason);
  const PromptInput input{.text = f.prompt, .ids = f.prompt_ids, .chat = f.chat};
  const Prompt prompt = build_prompt(*model, input);

  engine::EngineOptions eo;
  eo.max_running_requests = 1;
  eo.spec = f.model.spec_options();
  eo.max_model_len = std::min<int64_t>(model->config.max_position_embeddings,
                                       static_cast<int64_t>(prompt.ids.size()) + f.max_tokens + 1);
  eo.kv_cache_tokens = eo.max_model_len + eo.spec.num_steps + 1;
  f.kv.apply(eo);
  engine::Engine eng(*model, *backend, eo);

  engine::GenerateRequest req;
  req.prompt = prompt.ids;
  req.max_tokens = f.max_tokens;
  req.sampling.temperature = f.temperature;
  req.sampling.top_p = f.top_p;
  req.sampling.top_k = f.top_k;
  req.sampling.min_p = f.min_p;
  if (f.seed >= 0) req.sampling.seed = static_cast<uint64_t>(f.seed);
  req.top_logprobs = f.top_logprobs;
  req.ignore_eos = f.ignore_eos;

  std::vector<int32_t> out_ids;
  std::vector<engine::TokenLogprob> lps;
  engine::RequestOutput last;
  auto detok = prompt.tokenizer ? std::make_unique<tokenizer::IncrementalDetokenizer>(*prompt.tokenizer,
                                                                                       f.skip_special_tokens)
                                : nullptr;
  eng.submit(req, [&](const engine::RequestOutput& o) {
    out_ids.insert(out_ids.end(), o.new_tokens.begin(), o.new_tokens.end());
    lps.insert(lps.end(), o.logprobs.begin(), o.logprobs.end());
    if (!f.json && detok) std::cout << detok->push(o.new_tokens) << std::flush;
    if (o.finished()) last = o;
  });
  eng.run_until_idle();
  if (last.finish == engine::FinishReason::kError) fail("generation failed: {}", last.error);

  const std::string text = prompt.tokenizer ? prompt.tokenizer->decode(out_ids, f.skip_special_tokens) : "";
  if (!f.json) {
    if (detok) std::cout << detok->finish() << "\n";
    else {
      for (size_t i = 0; i < out_ids.size(); ++i) std::cout << (i ? "," : "") << out_ids[i];
      std::cout << "\n";
    }
    if (model->draft && eng.speculative())
      log::info("speculative: {} verify steps, mean accept length {:.3f}", last.spec.verify_steps,
                last.spec.verify_steps ? double(last.completion_tokens) / last.spec.verify_steps : 0.0);
    return 0;
  }
  nlohmann::json j;
  j["output_ids"] = out_ids;
  j["text"] = text;
  j["finish_reason"] = engine::finish_reason_name(last.finish);
  j["usage"] = {{"prompt_tokens", last.prompt_tokens}, {"completion_tokens", last.completion_tokens}};
  if (f.top_logprobs >= 0) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : lps) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [id, lp] : e.top) top.push_back({id, lp});
      arr.push_back({{"id", e.id}, {"logprob", e.logprob}, {"top", top}});
    }
    j["logprobs"] = arr;
  }
  if (model->draft) j["draft"] = model->draft_precision.to_json();
  if (eng.speculative()) {
    j["spec"] = spec_json(last.spec, last.completion_tokens);
    j["spec"]["num_steps"] = f.model.spec_num_steps;
  }
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace

Run add_generate(CLI::App& app) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* cmd = app.add_subcommand("generate", "generate from a prompt");
  f->model.add(*cmd);
  f->kv.add_dtype(*cmd);
  auto* p = cmd->add_option("--prompt", f->prompt, "prompt text (tokenized with the checkpoint's tokenizer)");
  auto* pi = cmd->add_option("--prompt-ids", f->prompt_ids, "prompt token ids, comma separated");
  auto* pc = cmd->add_option("--chat", f->chat, "messages as a JSON list, rendered with the chat template");
  p->excludes(pi)->excludes(pc);
  pi->excludes(pc);
  cmd->add_option("--max-tokens", f->max_tokens, "tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", f->temperature, "0 = greedy")->capture_default_str();
  cmd->add_option("--top-p", f->top_p)->capture_default_str();
  cmd->add_option("--top-k", f->top_k, "0 = off")->capture_default_str();
  cmd->add_option("--min-p", f->min_p)->capture_default_str();
  cmd->add_option("--seed", f->seed, "sampling seed (-1: random)")->capture_default_str();
  cmd->add_option("--top-logprobs", f->top_logprobs, "return logprobs with the top K alternatives");
  cmd->add_flag("--json", f->json, "print one JSON object");
  cmd->add_flag("--ignore-eos", f->ignore_eos, "do not stop at eos tokens");
  return [f] { return run_generate(*f); };
}

}  // namespace tandem::app
