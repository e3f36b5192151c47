// CPU op benchmarks: weight streaming rate of linear (GEMV at T = 1..8, where the weight is read once per
// call so time should stay flat), prefill GEMM FLOP/s, MoE experts, paged decode attention, and the
// machine ceilings from ops/cpu/probe.h to compare against. All on every hardware thread.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/thread_pool.h"
#include "ops/cpu/probe.h"
#include "ops/ops.h"

namespace tandem::ops {
namespace {

// The machine is shared and noisy: run with --benchmark_repetitions=N. Statistics apply to every column, so
// read the time from the "_min" row and the rates (GB/s, GFLOP/s) from the "_max" row.
double best_of(const std::vector<double>& v) {
  return *std::min_element(v.begin(), v.end());
}
double most_of(const std::vector<double>& v) {
  return *std::max_element(v.begin(), v.end());
}

Backend& backend() {
  static std::unique_ptr<Backend> be = make_cpu_backend(0);
  return *be;
}

/// Fills a buffer with a deterministic spread of byte values (finite for every float dtype and e4m3).
void fill(const Buffer& b, uint32_t seed) {
  auto* p = static_cast<uint8_t*>(b.view().data);
  uint32_t s = seed;
  for (size_t i = 0; i < b.view().nbytes(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<uint8_t>((s >> 24) & 0x3b);  // small exponents: no inf/NaN in any dtype
  }
}

void fill_f32(const Buffer& b, uint32_t seed) {
  float* p = b.ptr<float>();
  uint32_t s = seed;
  for (int64_t i = 0; i < b.view().numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = static_cast<float>(s >> 8) / 16777216.0f - 0.5f;
  }
}

struct Linear {
  Buffer w, scale;
  LinearWeight lw;
  Linear(int64_t out, int64_t in, DType dt, uint32_t seed) : w(dt, {out, in}) {
    fill(w, seed);
    lw.weight = w.view();
    if (dt == DType::kF8E4M3) {  // DeepSeek-style 128 x 128 blocks
      scale = Buffer(DType::kF32, {(out + 127) / 128, (in + 127) / 128});
      for (int64_t i = 0; i < scale.view().numel(); ++i) scale.ptr<float>()[i] = 0.01f;
      lw.scale = scale.view();
      lw.quant = WeightQuant::kFp8Block;
      lw.block_out = lw.block_in = 128;
    }
  }
};

// GEMV / small-T linear on a weight far larger than the 32 MiB LLC. Bytes are weight bytes per call.
void BM_Linear(benchmark::State& state, DType dt, int64_t out, int64_t in) {
  const int64_t T = state.range(0);
  Linear l(out, in, dt, 1);
  Buffer x(DType::kF32, {T, in}), y(DType::kF32, {T, out});
  fill_f32(x, 2);
  for (auto _ : state) {
    backend().linear(x.view(), l.lw, y.view());
    benchmark::DoNotOptimize(y.ptr<float>());
  }
  const double bytes = static_cast<double>(l.lw.nbytes());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["weight_GBps"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * T * out * in * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_Linear, bf16_8192x8192, DType::kBF16, 8192, 8192)
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);
BENCHMARK_CAPTURE(BM_Linear, fp8_block_8192x8192, DType::kF8E4M3, 8192, 8192)
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);
// Prefill-sized GEMM: compute bound, read the GFLOPs counter.
BENCHMARK_CAPTURE(BM_Linear, bf16_gemm_4096x4096, DType::kBF16, 4096, 4096)
    ->Arg(128)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);
BENCHMARK_CAPTURE(BM_Linear, fp8_gemm_4096x4096, DType::kF8E4M3, 4096, 4096)
    ->Arg(128)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);

// GEMV over many distinct small weights (the shapes of a decode step: q/o, experts, shared experts) whose
// total, 384 MiB, is far above the LLC, one call per weight as a decode step issues them. Per-call costs
// (thread wake-up, prefetch ramp, horizontal sums) show here and not in the single large GEMV above.
void BM_LinearMany(benchmark::State& state, int64_t out, int64_t in) {
  const int64_t n = (int64_t{384} << 20) / (out * in * 2);
  std::vector<Linear> ws;
  ws.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ws.emplace_back(out, in, DType::kBF16, static_cast<uint32_t>(100 + i));
  Buffer x(DType::kF32, {1, in}), y(DType::kF32, {1, out});
  fill_f32(x, 2);
  for (auto _ : state) {
    for (const Linear& l : ws) backend().linear(x.view(), l.lw, y.view());
    benchmark::DoNotOptimize(y.ptr<float>());
  }
  const double bytes = static_cast<double>(n * out * in * 2);
  state.counters["calls"] = static_cast<double>(n);
  state.counters["weight_GBps"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_LinearMany, bf16_512x1024, 512, 1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);
BENCHMARK_CAPTURE(BM_LinearMany, bf16_1024x512, 1024, 512)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);
BENCHMARK_CAPTURE(BM_LinearMany, bf16_2048x1024, 2048, 1024)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);

// Routed experts of a GLM-4.5-Air-like layer scaled down: 32 experts of H 2048, I 768 in bf16, top-8.
void BM_MoeExperts(benchmark::State& state) {
  const int64_t T = state.range(0), E = 32, H = 2048, I = 768;
  const int K = 8;
  std::vector<Linear> lin;
  lin.reserve(3 * E);
  std::vector<MlpWeights> experts;
  for (int64_t e = 0; e < E; ++e) {
    lin.emplace_back(I, H, DType::kBF16, 10 + 3 * e);
    lin.emplace_back(I, H, DType::kBF16, 11 + 3 * e);
    lin.emplace_back(H, I, DType::kBF16, 12 + 3 * e);
  }
  for (int64_t e = 0; e < E; ++e) experts.push_back({lin[3 * e].lw, lin[3 * e + 1].lw, lin[3 * e + 2].lw});
  Buffer x(DType::kF32, {T, H}), out(DType::kF32, {T, H}), ids(DType::kI32, {T, K}), w(DType::kF32, {T, K});
  fill_f32(x, 3);
  std::vector<bool> used(E, false);
  for (int64_t t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {  // distinct experts per token, overlapping between tokens
      const int32_t e = static_cast<int32_t>((t * 3 + k * 5) % E);
      ids.ptr<int32_t>()[t * K + k] = e;
      w.ptr<float>()[t * K + k] = 0.1f;
      used[e] = true;
    }
  double bytes = 0;
  for (int64_t e = 0; e < E; ++e)
    if (used[e]) bytes += static_cast<double>(lin[3 * e].lw.nbytes() * 3);
  for (auto _ : state) {
    backend().moe_experts(x.view(), ids.view(), w.view(), experts, nullptr, out.view());
    benchmark::DoNotOptimize(out.ptr<float>());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["experts"] = static_cast<double>(std::count(used.begin(), used.end(), true));
  state.counters["weight_GBps"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MoeExperts)
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);

// One decode token per sequence over a paged cache: GLM-like heads (96 q / 8 kv, D 128), context N.
void BM_AttentionDecode(benchmark::State& state) {
  const int64_t n_ctx = state.range(0), n_seqs = state.range(1);
  const int Hq = 96, Hkv = 8, D = 128, block = 16;
  const int64_t blocks_per_seq = (n_ctx + block - 1) / block, n_blocks = blocks_per_seq * n_seqs;
  Buffer k(DType::kF32, {n_blocks, block, Hkv, D}), v(DType::kF32, {n_blocks, block, Hkv, D});
  fill_f32(k, 4);
  fill_f32(v, 5);
  KvLayerView kv{k.ptr<float>(), v.ptr<float>(), n_blocks, block, Hkv, D};
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) table[b] = static_cast<int32_t>((b * 7) % n_blocks);  // scattered
  std::vector<SeqSlice> seqs;
  for (int64_t s = 0; s < n_seqs; ++s)
    seqs.push_back({s, 1, static_cast<int32_t>(n_ctx - 1), table.data() + s * blocks_per_seq});
  Buffer q(DType::kF32, {n_seqs, Hq, D}), o(DType::kF32, {n_seqs, Hq, D});
  fill_f32(q, 6);
  std::vector<int32_t> pos(static_cast<size_t>(n_seqs), static_cast<int32_t>(n_ctx - 1));
  Arena arena(backend().allocator());
  const StepState step = backend().begin_step(BatchDesc{.positions = pos, .seqs = seqs, .block_size = block}, arena);
  for (auto _ : state) {
    backend().attention(q.view(), kv, step, 0.088f, o.view());
    benchmark::DoNotOptimize(o.ptr<float>());
  }
  const double bytes = 2.0 * n_seqs * n_ctx * Hkv * D * sizeof(float);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["kv_GBps"] =
      benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionDecode)
    ->Args({4096, 1})
    ->Args({1024, 4})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->ComputeStatistics("min", best_of)
    ->ComputeStatistics("max", most_of);

// The machine's own ceilings (what `tandem bench` compares decode against).
void BM_Probe(benchmark::State& state) {
  ThreadPool pool(0);
  double copy = 0, read = 0, flops = 0;
  for (auto _ : state) {
    copy = cpu::measure_copy_bandwidth_gbs(pool, size_t{1} << 30);
    read = cpu::measure_read_bandwidth_gbs(pool, size_t{1} << 30);
    flops = cpu::measure_peak_gflops(pool);
  }
  state.counters["copy_GBps(r+w)"] = copy;
  state.counters["read_GBps"] = read;
  state.counters["peak_GFLOPs"] = flops;
}
BENCHMARK(BM_Probe)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tandem::ops
