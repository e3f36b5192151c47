#include "spec_flags.h"

#include <algorithm>

#include "models/config_overrides.h"

namespace tandem::app {

void ModelFlags::add(CLI::App& cmd) {
  cmd.add_option("--model,--model-path", model, "Hugging Face checkpoint folder")->capture_default_str();
  cmd.add_option("--threads", threads, "CPU threads (0: all)")->capture_default_str();
  cmd.add_option("--device", device, "Backend: auto (the first GPU when there is one, else cpu), cpu, cuda, cuda:N, or fake (CPU kernels "
                 "behind device-only memory, for CI)")
      ->capture_default_str();
  cmd.add_option("--speculative-algorithm", spec_algorithm, "NEXTN (aliases EAGLE, MTP): draft with the MTP layer");
  cmd.add_option("--speculative-num-steps", spec_num_steps,
                 "draft tokens per verify step (K); with the adaptive policy, the largest K it may pick")
      ->capture_default_str();
  cmd.add_option("--speculative-policy", spec_policy,
                 "adaptive: pick K in 0..num-steps each step from measured acceptance and step costs; fixed: always K")
      ->check(CLI::IsMember({"adaptive", "fixed"}))
      ->capture_default_str();
  cmd.add_option("--speculative-synthetic-acceptance", synthetic_acceptance,
                 "bench only: accept draft j with probability a_j (a1,a2,...; the last repeats) instead of verifying")
      ->delimiter(',');
  cmd.add_option("--speculative-eagle-topk", spec_eagle_topk, "draft branching; 1 = chain")->capture_default_str();
  cmd.add_option("--speculative-num-draft-tokens", spec_num_draft_tokens, "tokens per verify pass (chain: K + 1)");
  cmd.add_option("--speculative-draft-model-quantization", draft_quant,
                 "auto | unquant | fp8 | compressed-tensors")
      ->capture_default_str();
  cmd.add_option("--load-format", load_format,
                 "auto: read the checkpoint's weights; dummy: --model needs only config.json, every weight is made "
                 "on the device at its real shape and dtype with seeded pseudo-random values (for benchmarks)")
      ->capture_default_str();
  cmd.add_option("--json-model-override-args", model_overrides,
                 "JSON object merged over config.json before it is parsed, e.g. '{\"num_hidden_layers\": 8}' "
                 "(only keys tandem reads)");
}

void ModelFlags::validate() const {
  if (speculative()) {
    std::string a = spec_algorithm;
    std::transform(a.begin(), a.end(), a.begin(), ::toupper);
    if (a != "NEXTN" && a != "EAGLE" && a != "MTP")
      fail("--speculative-algorithm {}: tandem implements NEXTN (aliases EAGLE, MTP)", spec_algorithm);
  }
  if (spec_eagle_topk != 1)
    fail("--speculative-eagle-topk {}: only 1 (a chain of drafts) is implemented; tree drafting is not", spec_eagle_topk);
  if (spec_num_steps < 1 || spec_num_steps > 16) fail("--speculative-num-steps must be in [1, 16], got {}", spec_num_steps);
  if (spec_num_draft_tokens != 0 && spec_num_draft_tokens != spec_num_steps + 1)
    fail("--speculative-num-draft-tokens {} must equal --speculative-num-steps + 1 = {} for a chain",
         spec_num_draft_tokens, spec_num_steps + 1);
  models::mtp::DraftQuantRequest::parse(draft_quant);
  models::parse_load_format(load_format);
  (void)models::parse_config_overrides(model_overrides);
  for (double a : synthetic_acceptance)
    if (!(a >= 0.0 && a <= 1.0)) fail("--speculative-synthetic-acceptance: {} is not a probability in [0, 1]", a);
}

void ModelFlags::refuse_bench_only(std::string_view command) const {
  if (!synthetic_acceptance.empty())
    fail("--speculative-synthetic-acceptance is for `tandem bench` only: it accepts drafts without verifying them, "
         "so `{}` would not return the model's output", command);
}

models::LoadOptions ModelFlags::load_options() const {
  return models::LoadOptions{.with_draft = speculative(),
                             .draft_quant = models::mtp::DraftQuantRequest::parse(draft_quant),
                             .load_format = models::parse_load_format(load_format),
                             .config_overrides = models::parse_config_overrides(model_overrides)};
}

engine::SpecOptions ModelFlags::spec_options() const {
  return engine::SpecOptions{
      .enabled = speculative(),
      .num_steps = spec_num_steps,
      .policy = spec_policy == "fixed" ? engine::SpecPolicyKind::kFixed : engine::SpecPolicyKind::kAdaptive,
      .synthetic_acceptance = synthetic_acceptance};
}

}  // namespace tandem::app
