// `tandem bench --model DIR`: prefill and decode throughput of one model on this machine, against the
// machine's own measured ceilings (copy bandwidth, FMA rate), with and without speculation.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "ops/backends.h"
#include "commands.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "kv/block_table.h"
#include "kv/kv_dtype.h"
#include "kv_flags.h"
#include "models/memory_plan.h"
#include "ops/cpu/probe.h"
#include "spec_flags.h"
#include "bench_decode.h"

namespace tandem::app {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct BenchFlags {
  ModelFlags model;
  KvFlags kv;  // --kv-cache-dtype
  int prompt_len = 128;
  int decode_tokens = 64;
  int repeats = 3;
  bool json = false;
  bool curve = false;                    // --speculative-curve
  std::vector<double> acceptance_sweep;  // --speculative-acceptance-sweep
};

/// Seconds for one target forward of `rows` new tokens after a cached context of `ctx` tokens.
double time_forward(models::LoadedModel& m, ops::Backend& be, int ctx, int rows, int repeats, DType kv_dtype) {
  kv::BlockAllocator alloc(1024);
  kv::KvCache cache(be, {.n_layers = m.target->n_kv_layers(), .n_blocks = 1024, .block_size = 16,
                         .n_kv_heads = m.config.num_key_value_heads, .head_dim = m.config.head_dim,
                         .dtype = kv_dtype});
  kv::BlockTable table(16);
  table.ensure(alloc, ctx + rows);
  std::vector<int32_t> toks(rows), pos(rows), logit_rows(rows);
  std::iota(pos.begin(), pos.end(), ctx);
  std::iota(logit_rows.begin(), logit_rows.end(), 0);
  for (int i = 0; i < rows; ++i) toks[i] = (17 * i + 3) % m.config.vocab_size;
  const ops::SeqSlice s{.token_begin = 0, .n_tokens = rows, .start_pos = ctx, .block_table = table.blocks().data()};
  std::vector<float> logits(static_cast<size_t>(rows) * m.config.vocab_size);
  double best = 1e30;
  Arena arena(be.allocator());
  for (int r = 0; r < repeats + 1; ++r) {
    arena.reset();
    const auto t0 = Clock::now();
    const models::ForwardOutput out =
        m.target->forward(be, arena, cache, {.tokens = toks, .positions = pos, .seqs = {&s, 1}, .logit_rows = logit_rows});
    be.to_host(out.logits, logits.data());  // a device backend runs asynchronously: the read is the step's end
    if (r > 0) best = std::min(best, seconds_since(t0));  // first run warms caches and pages
  }
  return best;
}

/// A linear's shape as a prefill GEMM sees it: out x in.
struct LinearShape {
  const char* name = "";
  int64_t out = 0, in = 0;
};

/// The largest linear a prefill runs through Backend::linear: the attention projections and, in the dense layers,
/// the MLP (routed and shared experts run in moe_experts; lm_head sees only the logit rows).
LinearShape largest_prefill_linear(const models::glm4_moe::Glm4MoeConfig& c) {
  const int64_t H = c.hidden_size, QD = int64_t{c.num_attention_heads} * c.head_dim;
  std::vector<LinearShape> shapes = {{"self_attn.q_proj", QD, H}, {"self_attn.o_proj", H, QD}};
  if (c.first_k_dense_replace > 0)
    shapes.insert(shapes.end(), {{"mlp.gate_proj", c.intermediate_size, H}, {"mlp.down_proj", H, c.intermediate_size}});
  return *std::max_element(shapes.begin(), shapes.end(),
                           [](const LinearShape& a, const LinearShape& b) { return a.out * a.in < b.out * b.in; });
}

int run_bench(const BenchFlags& f) {
  f.model.validate();
  engine::EngineOptions kv_opts;
  f.kv.apply(kv_opts);
  const DType kv_dtype = kv_opts.kv_cache_dtype;
  const int threads = f.model.threads > 0 ? f.model.threads : static_cast<int>(std::thread::hardware_concurrency());
  auto be = ops::make_backend(f.model.device, threads);
  models::LoadOptions lo = f.model.load_options();
  lo.with_draft = true;
  auto m = models::load_model(f.model.model, lo, *be);

  // The roofline of the device the model runs on, measured in this run. The read-bandwidth and FMA probes are
  // the CPU's (for a GPU backend they are not measured: NaN, printed as n/a).
  const bool host = be->device().kind != DeviceKind::kCuda;
  const double copy_gbs = be->measure_copy_bandwidth_gbs();
  double read_gbs = std::nan(""), peak_gflops = std::nan("");
  if (host) {
    ThreadPool pool(threads);
    read_gbs = ops::cpu::measure_read_bandwidth_gbs(pool, size_t(1) << 30);
    peak_gflops = ops::cpu::measure_peak_gflops(pool);
  }

  const size_t bytes_per_token = m->target->active_bytes_per_token();
  const double prefill_s = time_forward(*m, *be, 0, f.prompt_len, f.repeats, kv_dtype);
  const double prefill_tps = f.prompt_len / prefill_s;
  // FLOPs of a prefill: 2 per weight element read per token (attention scores excluded, stated).
  const double prefill_gflops = 2.0 * (bytes_per_token / 2.0) * f.prompt_len / prefill_s / 1e9;
  // Against the backend's own prefill GEMM (cuBLASLt on a GPU; NaN on the CPU) on the model's largest prefill
  // linear with prompt_len rows, measured now. Prefill FLOPs here: 2 per active parameter per token (any weight
  // dtype; attention scores excluded, lm_head included for every token although only the last row needs it).
  const LinearShape gemm_shape = largest_prefill_linear(m->config);
  const double gemm_tflops = be->measure_gemm_tflops(f.prompt_len, gemm_shape.out, gemm_shape.in);
  const int64_t active_params = models::plan_memory(m->config, m->quant, {}).target_active_params;
  const double prefill_tflops = 2.0 * static_cast<double>(active_params) * f.prompt_len / prefill_s / 1e12;

  const int K = f.model.spec_num_steps;
  const double step1 = time_forward(*m, *be, 64, 1, 5 * f.repeats, kv_dtype);
  const double stepk = time_forward(*m, *be, 64, K + 1, 5 * f.repeats, kv_dtype);

  const auto prompts = bench_prompts(*m, 8, f.prompt_len);
  const DecodeResult plain =
      run_decode(*m, *be, {.enabled = false, .num_steps = K}, prompts, f.decode_tokens, kv_dtype);
  DecodeResult spec;
  engine::SpecOptions spec_opts = f.model.spec_options();  // --speculative-policy, synthetic acceptance
  spec_opts.enabled = true;
  if (m->draft) spec = run_decode(*m, *be, spec_opts, prompts, f.decode_tokens, kv_dtype);
  // The speculation curve: plain, each fixed K and the adaptive policy, interleaved, per acceptance profile.
  const bool want_curve = m->draft && (f.curve || !f.acceptance_sweep.empty() || !f.model.synthetic_acceptance.empty());
  CurveOptions curve_opts{.k_max = K, .rounds = f.repeats};
  if (!f.model.synthetic_acceptance.empty()) curve_opts.acceptance.push_back(f.model.synthetic_acceptance);
  for (double a : f.acceptance_sweep) curve_opts.acceptance.push_back({a});

  const double achieved_gbs = bytes_per_token * plain.tokens_per_s / 1e9;
  nlohmann::ordered_json j;
  j["model"] = m->checkpoint->dir().string();
  j["load_format"] = std::string(models::load_format_name(m->load_format));
  if (!lo.config_overrides.is_null()) j["config_overrides"] = lo.config_overrides;
  j["backend"] = std::string(be->name());
  j["threads"] = threads;
  j["kv_cache_dtype"] = kv::kv_cache_dtype_name(kv_dtype);
  j["machine"] = {{"copy_bandwidth_gbs", copy_gbs}, {"read_bandwidth_gbs", read_gbs}, {"peak_fma_gflops", peak_gflops}};
  j["weights_bytes_per_token"] = bytes_per_token;
  j["prefill"] = {{"tokens", f.prompt_len}, {"tokens_per_s", prefill_tps}, {"gflops", prefill_gflops},
                  {"fraction_of_peak", prefill_gflops / peak_gflops}, {"tflops", prefill_tflops},
                  {"active_params", active_params},
                  {"gemm", {{"linear", gemm_shape.name}, {"m", f.prompt_len}, {"n", gemm_shape.out},
                            {"k", gemm_shape.in}, {"tflops", gemm_tflops}}},
                  {"fraction_of_gemm", prefill_tflops / gemm_tflops}};
  j["decode"] = {{"tokens_per_s", plain.tokens_per_s}, {"achieved_gbs", achieved_gbs},
                 {"fraction_of_copy_bandwidth", achieved_gbs / copy_gbs},
                 {"fraction_of_read_bandwidth", achieved_gbs / read_gbs}};
  j["verify_cost"] = {{"one_token_ms", step1 * 1e3}, {"k_plus_1_tokens_ms", stepk * 1e3}, {"k", K},
                      {"ratio", stepk / step1}};
  if (m->draft)
    j["speculative"] = {{"num_steps", K}, {"policy", f.model.spec_policy}, {"mean_k", spec.mean_k()},
                        {"tokens_per_s", spec.tokens_per_s},
                        {"mean_accept_length", spec.mean_accept_length},
                        {"speedup", spec.tokens_per_s / plain.tokens_per_s},
                        {"draft", m->draft_precision.to_json()}};
  if (f.json) {
    if (want_curve) j["speculation_curve"] = speculation_curve(*m, *be, curve_opts, prompts, f.decode_tokens, kv_dtype, true);
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model            {}{} (backend {}, {} threads, KV cache {})\n", j["model"].get<std::string>(),
                           m->load_format == models::LoadFormat::kDummy ? " [dummy weights]" : "", be->name(), threads,
                           kv::kv_cache_dtype_name(kv_dtype));
  std::cout << fmt::format("machine          copy {:.1f} GB/s, read {:.1f} GB/s, FMA peak {:.1f} GFLOP/s\n", copy_gbs,
                           read_gbs, peak_gflops);
  std::cout << fmt::format("prefill          {} tokens: {:.1f} tok/s, {:.1f} GFLOP/s ({:.0f}% of peak)\n", f.prompt_len,
                           prefill_tps, prefill_gflops, 100 * prefill_gflops / peak_gflops);
  if (std::isfinite(gemm_tflops))
    std::cout << fmt::format("prefill vs GEMM   {:.1f} TFLOP/s ({:.2f}B active params) vs {:.1f} TFLOP/s of a bf16 GEMM "
                             "{}x{}x{} ({}): {:.0f}%\n",
                             prefill_tflops, active_params / 1e9, gemm_tflops, f.prompt_len, gemm_shape.out,
                             gemm_shape.in, gemm_shape.name, 100 * prefill_tflops / gemm_tflops);
  std::cout << fmt::format("decode (batch 1) {:.1f} tok/s, {:.2f} MB/token -> {:.1f} GB/s ({:.0f}% of copy, {:.0f}% of read)\n",
                           plain.tokens_per_s, bytes_per_token / 1e6, achieved_gbs, 100 * achieved_gbs / copy_gbs,
                           100 * achieved_gbs / read_gbs);
  std::cout << fmt::format("verify cost      1 token {:.3f} ms, {} tokens {:.3f} ms (x{:.2f})\n", step1 * 1e3, K + 1,
                           stepk * 1e3, stepk / step1);
  if (m->draft)
    std::cout << fmt::format("speculative      {} K<={}: {:.1f} tok/s, mean K {:.2f}, mean accept length {:.3f}, speedup "
                             "x{:.2f} (draft {})\n",
                             f.model.spec_policy, K, spec.tokens_per_s, spec.mean_k(), spec.mean_accept_length,
                             spec.tokens_per_s / plain.tokens_per_s, m->draft_precision.running);
  if (want_curve) {
    std::cout << fmt::format("\nspeculation curve (tok/s, batch 1, median of {} interleaved rounds):\n", curve_opts.rounds);
    (void)speculation_curve(*m, *be, curve_opts, prompts, f.decode_tokens, kv_dtype, false);
  }
  return 0;
}

}  // namespace

Run add_bench(CLI::App& app) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "measure a model's prefill and decode speed on this machine");
  f->model.add(*cmd);
  f->kv.add_dtype(*cmd);
  cmd->add_option("--prompt-len", f->prompt_len, "prefill length (random ids)")->capture_default_str();
  cmd->add_option("--decode-tokens", f->decode_tokens, "tokens per decode request")->capture_default_str();
  cmd->add_option("--repeats", f->repeats)->capture_default_str();
  cmd->add_flag("--json", f->json, "print JSON");
  cmd->add_flag("--speculative-curve", f->curve,
                "also decode with plain, each fixed K up to --speculative-num-steps and the adaptive policy, "
                "interleaved over --repeats rounds");
  cmd->add_option("--speculative-acceptance-sweep", f->acceptance_sweep,
                  "the curve at these synthetic acceptance rates (each the same at every draft position)")
      ->delimiter(',');
  Run serve = add_bench_serve(*cmd);
  return [f, cmd, serve] { return cmd->got_subcommand("serve") ? serve() : run_bench(*f); };
}

}  // namespace tandem::app
