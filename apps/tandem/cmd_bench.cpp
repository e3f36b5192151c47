// `tandem bench --model DIR`: prefill and decode throughput of one model on this machine, against the
// machine's own measured ceilings (copy bandwidth, FMA rate), with and without speculation.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <random>
#include <thread>

#include "ops/backends.h"
#include "commands.h"
#include "core/thread_pool.h"
#include "engine/engine.h"
#include "kv/block_table.h"
#include "kv/kv_dtype.h"
#include "kv_flags.h"
#include "ops/cpu/probe.h"
#include "spec_flags.h"

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
};

/// Prompts for the decode runs: the model's held-out evaluation prompts when it ships them (eval.json),
/// else random ids. Acceptance length is only meaningful on real text.
std::vector<std::vector<int32_t>> bench_prompts(const models::LoadedModel& m, int n, int len) {
  std::vector<std::vector<int32_t>> out;
  std::ifstream f(m.checkpoint->dir() / "eval.json");
  if (f) {
    const auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_object() && j.contains("prompts"))
      for (const auto& p : j["prompts"]) {
        if (static_cast<int>(out.size()) == n) break;
        out.push_back(p.get<std::vector<int32_t>>());
      }
  }
  std::mt19937 rng(1234);
  while (static_cast<int>(out.size()) < n) {
    std::vector<int32_t> p(len);
    for (auto& t : p) t = static_cast<int32_t>(rng() % m.config.vocab_size);
    out.push_back(p);
  }
  return out;
}

struct DecodeResult {
  double tokens_per_s = 0;
  double mean_accept_length = 0;
  int64_t tokens = 0;
};

DecodeResult run_decode(models::LoadedModel& m, ops::Backend& be, const engine::SpecOptions& spec,
                        const std::vector<std::vector<int32_t>>& prompts, int decode_tokens, DType kv_dtype) {
  engine::EngineOptions eo{.max_running_requests = 1, .kv_cache_tokens = 8192, .kv_cache_dtype = kv_dtype};
  eo.spec = spec;
  engine::Engine eng(m, be, eo);
  DecodeResult r;
  double decode_time = 0;
  int64_t verify = 0, completion = 0;
  for (const auto& p : prompts) {
    engine::GenerateRequest req;
    req.prompt = p;
    req.max_tokens = decode_tokens;
    req.sampling.temperature = 0.0f;
    req.ignore_eos = true;
    Clock::time_point first;
    bool got_first = false;
    engine::RequestOutput last;
    eng.submit(req, [&](const engine::RequestOutput& o) {
      if (!got_first && !o.new_tokens.empty()) {
        first = Clock::now();  // decode time excludes the prefill that produced the first token
        got_first = true;
      }
      if (o.finished()) last = o;
    });
    eng.run_until_idle();
    decode_time += seconds_since(first);
    r.tokens += last.completion_tokens - 1;
    verify += last.spec.verify_steps;
    completion += last.completion_tokens;
  }
  r.tokens_per_s = r.tokens / decode_time;
  r.mean_accept_length = spec::accept_length(completion, verify);
  return r;
}

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

  const int K = f.model.spec_num_steps;
  const double step1 = time_forward(*m, *be, 64, 1, 5 * f.repeats, kv_dtype);
  const double stepk = time_forward(*m, *be, 64, K + 1, 5 * f.repeats, kv_dtype);

  const auto prompts = bench_prompts(*m, 8, f.prompt_len);
  const DecodeResult plain =
      run_decode(*m, *be, {.enabled = false, .num_steps = K}, prompts, f.decode_tokens, kv_dtype);
  DecodeResult spec;
  if (m->draft) spec = run_decode(*m, *be, {.enabled = true, .num_steps = K}, prompts, f.decode_tokens, kv_dtype);

  const double achieved_gbs = bytes_per_token * plain.tokens_per_s / 1e9;
  nlohmann::ordered_json j;
  j["model"] = m->checkpoint->dir().string();
  j["backend"] = std::string(be->name());
  j["threads"] = threads;
  j["kv_cache_dtype"] = kv::kv_cache_dtype_name(kv_dtype);
  j["machine"] = {{"copy_bandwidth_gbs", copy_gbs}, {"read_bandwidth_gbs", read_gbs}, {"peak_fma_gflops", peak_gflops}};
  j["weights_bytes_per_token"] = bytes_per_token;
  j["prefill"] = {{"tokens", f.prompt_len}, {"tokens_per_s", prefill_tps}, {"gflops", prefill_gflops},
                  {"fraction_of_peak", prefill_gflops / peak_gflops}};
  j["decode"] = {{"tokens_per_s", plain.tokens_per_s}, {"achieved_gbs", achieved_gbs},
                 {"fraction_of_copy_bandwidth", achieved_gbs / copy_gbs},
                 {"fraction_of_read_bandwidth", achieved_gbs / read_gbs}};
  j["verify_cost"] = {{"one_token_ms", step1 * 1e3}, {"k_plus_1_tokens_ms", stepk * 1e3}, {"k", K},
                      {"ratio", stepk / step1}};
  if (m->draft)
    j["speculative"] = {{"num_steps", K}, {"tokens_per_s", spec.tokens_per_s},
                        {"mean_accept_length", spec.mean_accept_length},
                        {"speedup", spec.tokens_per_s / plain.tokens_per_s},
                        {"draft", m->draft_precision.to_json()}};
  if (f.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("model            {} (backend {}, {} threads, KV cache {})\n", j["model"].get<std::string>(),
                           be->name(), threads, kv::kv_cache_dtype_name(kv_dtype));
  std::cout << fmt::format("machine          copy {:.1f} GB/s, read {:.1f} GB/s, FMA peak {:.1f} GFLOP/s\n", copy_gbs,
                           read_gbs, peak_gflops);
  std::cout << fmt::format("prefill          {} tokens: {:.1f} tok/s, {:.1f} GFLOP/s ({:.0f}% of peak)\n", f.prompt_len,
                           prefill_tps, prefill_gflops, 100 * prefill_gflops / peak_gflops);
  std::cout << fmt::format("decode (batch 1) {:.1f} tok/s, {:.2f} MB/token -> {:.1f} GB/s ({:.0f}% of copy, {:.0f}% of read)\n",
                           plain.tokens_per_s, bytes_per_token / 1e6, achieved_gbs, 100 * achieved_gbs / copy_gbs,
                           100 * achieved_gbs / read_gbs);
  std::cout << fmt::format("verify cost      1 token {:.3f} ms, {} tokens {:.3f} ms (x{:.2f})\n", step1 * 1e3, K + 1,
                           stepk * 1e3, stepk / step1);
  if (m->draft)
    std::cout << fmt::format("speculative K={}  {:.1f} tok/s, mean accept length {:.3f}, speedup x{:.2f} (draft {})\n", K,
                             spec.tokens_per_s, spec.mean_accept_length, spec.tokens_per_s / plain.tokens_per_s,
                             m->draft_precision.running);
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
  Run serve = add_bench_serve(*cmd);
  return [f, cmd, serve] { return cmd->got_subcommand("serve") ? serve() : run_bench(*f); };
}

}  // namespace tandem::app
