// CPU backend ops against naive references written here (double accumulation), on every ISA path this
// machine can run, with odd sizes that exercise vector tails.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "common/random_data.h"
#include "ops/cpu/cpu_backend.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/probe.h"

namespace tandem::ops {
namespace {

using cpu::Isa;

// ---------------------------------------------------------------------------------------------------------
// Test data helpers

using test::HostData;
using test::random_data;
using test::Rng;

Tensor view(std::vector<float>& v, Shape s) {
  return Tensor{v.data(), s, DType::kF32};
}

/// A LinearWeight with its dequantised reference matrix.
struct TestLinear {
  HostData w;
  HostData scale;
  HostData bias;
  LinearWeight lw;
  int64_t out = 0, in = 0;
  std::vector<double> deq;       // [out, in]
  std::vector<double> bias_ref;  // [out] or empty

  double at(int64_t o, int64_t i) const { return deq[o * in + i]; }
};

struct LinearSpec {
  DType w_dtype = DType::kBF16;
  WeightQuant quant = WeightQuant::kNone;
  int block_out = 0, block_in = 0;
  bool has_bias = false;
  DType bias_dtype = DType::kF32;
  DType scale_dtype = DType::kF32;
};

TestLinear make_linear(Rng& rng, int64_t out, int64_t in, const LinearSpec& spec) {
  TestLinear t;
  t.out = out;
  t.in = in;
  t.w = random_data(rng, out * in, spec.w_dtype);
  t.lw.weight = t.w.tensor({out, in});
  t.lw.quant = spec.quant;
  t.deq = t.w.value;
  if (spec.quant != WeightQuant::kNone) {
    int64_t rows = 1, cols = 1;
    if (spec.quant == WeightQuant::kFp8Channel) rows = out;
    if (spec.quant == WeightQuant::kFp8Block) {
      rows = (out + spec.block_out - 1) / spec.block_out;
      cols = (in + spec.block_in - 1) / spec.block_in;
      t.lw.block_out = spec.block_out;
      t.lw.block_in = spec.block_in;
    }
    t.scale = random_data(rng, rows * cols, spec.scale_dtype, 0.001f, 0.05f);
    t.lw.scale = t.scale.tensor(spec.quant == WeightQuant::kFp8Channel ? Shape{out, 1} : Shape{rows, cols});
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        int64_t si = 0;
        if (spec.quant == WeightQuant::kFp8Channel) si = o;
        if (spec.quant == WeightQuant::kFp8Block) si = (o / spec.block_out) * cols + i / spec.block_in;
        t.deq[o * in + i] *= t.scale.value[si];
      }
  }
  if (spec.has_bias) {
    t.bias = random_data(rng, out, spec.bias_dtype);
    t.lw.bias = t.bias.tensor({out});
    t.bias_ref = t.bias.value;
  }
  return t;
}

/// y = x @ deq^T + b in double; mag = the same with absolute values (the scale of rounding error).
void reference_linear(const TestLinear& w, const std::vector<float>& x, int64_t T, std::vector<double>& y,
                      std::vector<double>& mag) {
  y.assign(static_cast<size_t>(T * w.out), 0.0);
  mag.assign(static_cast<size_t>(T * w.out), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < w.out; ++o) {
      double s = w.bias_ref.empty() ? 0.0 : w.bias_ref[o];
      double m = std::abs(s);
      for (int64_t i = 0; i < w.in; ++i) {
        const double p = static_cast<double>(x[t * w.in + i]) * w.at(o, i);
        s += p;
        m += std::abs(p);
      }
      y[t * w.out + o] = s;
      mag[t * w.out + o] = m;
    }
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want,
                  const std::vector<double>& mag, double rel, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = rel * mag[i] + 1e-30;
    if (!(std::abs(got[i] - want[i]) <= tol) && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " got " << got[i] << " want " << want[i] << " (tol "
                    << tol << ")";
  }
}

std::vector<Isa> all_isas() {
  return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
}

class CpuOps : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    if (!cpu::isa_supported(GetParam())) GTEST_SKIP() << "machine lacks " << cpu::isa_name(GetParam());
    backend_ = cpu::make_cpu_backend_for_isa(GetParam(), 2);
    single_ = cpu::make_cpu_backend_for_isa(GetParam(), 1);
    many_ = cpu::make_cpu_backend_for_isa(GetParam(), 3);
  }
  std::unique_ptr<Backend> backend_, single_, many_;
};

INSTANTIATE_TEST_SUITE_P(Isas, CpuOps, ::testing::ValuesIn(all_isas()),
                         [](const auto& info) { return std::string(cpu::isa_name(info.param)); });

std::string spec_name(const LinearSpec& s) {
  std::string n(dtype_name(s.w_dtype));
  switch (s.quant) {
    case WeightQuant::kNone:
      break;
    case WeightQuant::kFp8Tensor:
      n += "/tensor";
      break;
    case WeightQuant::kFp8Channel:
      n += "/channel";
      break;
    case WeightQuant::kFp8Block:
      n += fmt::format("/block{}x{}", s.block_out, s.block_in);
      break;
  }
  if (s.has_bias) n += fmt::format("/bias-{}", dtype_name(s.bias_dtype));
  if (s.scale_dtype != DType::kF32) n += fmt::format("/scale-{}", dtype_name(s.scale_dtype));
  return n;
}

std::vector<LinearSpec> linear_specs() {
  return {
      {.w_dtype = DType::kBF16, .has_bias = true, .bias_dtype = DType::kBF16},
      {.w_dtype = DType::kF16},
      {.w_dtype = DType::kF32, .has_bias = true},
      {.w_dtype = DType::kF8E4M3, .quant = WeightQuant::kFp8Tensor},
      {.w_dtype = DType::kF8E4M3,
       .quant = WeightQuant::kFp8Channel,
       .has_bias = true,
       .bias_dtype = DType::kF16},
      {.w_dtype = DType::kF8E4M3, .quant = WeightQuant::kFp8Block, .block_out = 16, .block_in = 128},
      // Block sizes that are not multiples of the vector width, and a bf16-stored scale.
      {.w_dtype = DType::kF8E4M3,
       .quant = WeightQuant::kFp8Block,
       .block_out = 5,
       .block_in = 7,
       .scale_dtype = DType::kBF16},
  };
}

// ---------------------------------------------------------------------------------------------------------
// linear

TEST_P(CpuOps, LinearMatchesReferenceForEveryDtypeAndOddShape) {
  Rng rng(1);
  for (const LinearSpec& spec : linear_specs())
    for (int64_t in : {1, 7, 33, 257, 1000})
      for (int64_t T : {1, 2, 3, 17}) {  // token tiles of 1, 2, 3 and 4 (+1)
        const int64_t out = 37;
        TestLinear w = make_linear(rng, out, in, spec);
        std::vector<float> x = rng.vec(T * in), y(static_cast<size_t>(T * out));
        backend_->linear(view(x, {T, in}), w.lw, view(y, {T, out}));
        std::vector<double> ref, mag;
        reference_linear(w, x, T, ref, mag);
        expect_close(y, ref, mag, 1e-5, fmt::format("{} in={} T={}", spec_name(spec), in, T));
      }
}

// fp8 block quantisation where out and in are not multiples of the block (partial last blocks).
TEST_P(CpuOps, LinearFp8BlockWithPartialBlocks) {
  Rng rng(2);
  const LinearSpec spec{.w_dtype = DType::kF8E4M3,
                        .quant = WeightQuant::kFp8Block,
                        .block_out = 128,
                        .block_in = 128,
                        .has_bias = true};
  TestLinear w = make_linear(rng, 300, 333, spec);  // scale [3, 3], last blocks 44 x 77
  ASSERT_EQ(w.lw.scale.numel(), 9);
  for (int64_t T : {1, 5}) {
    std::vector<float> x = rng.vec(T * 333), y(static_cast<size_t>(T * 300));
    backend_->linear(view(x, {T, 333}), w.lw, view(y, {T, 300}));
    std::vector<double> ref, mag;
    reference_linear(w, x, T, ref, mag);
    expect_close(y, ref, mag, 1e-5, fmt::format("block 128x128 T={}", T));
  }
}

// The result for a token must not depend on the thread count or on which other tokens share the batch.
TEST_P(CpuOps, LinearIsIdenticalAcrossThreadsAndBatchSizes) {
  Rng rng(3);
  for (const LinearSpec& spec : linear_specs()) {
    const int64_t out = 203, in = 1100, T = 9;
    TestLinear w = make_linear(rng, out, in, spec);
    std::vector<float> x = rng.vec(T * in), y1(static_cast<size_t>(T * out)), y3(y1.size()), yt(y1.size());
    single_->linear(view(x, {T, in}), w.lw, view(y1, {T, out}));
    many_->linear(view(x, {T, in}), w.lw, view(y3, {T, out}));
    for (int64_t t = 0; t < T; ++t)
      many_->linear(Tensor{x.data() + t * in, {1, in}, DType::kF32}, w.lw,
                    Tensor{yt.data() + t * out, {1, out}, DType::kF32});
    EXPECT_EQ(0, std::memcmp(y1.data(), y3.data(), y1.size() * 4)) << spec_name(spec) << ": 1 vs 3 threads";
    EXPECT_EQ(0, std::memcmp(y1.data(), yt.data(), y1.size() * 4))
        << spec_name(spec) << ": batch vs per token";
  }
}

// Several projections of one x in one pass (q/k/v) give the bits of separate linear calls.
TEST_P(CpuOps, LinearsEqualSeparateLinears) {
  Rng rng(5);
  for (const LinearSpec& spec : linear_specs()) {
    const int64_t in = 300;
    TestLinear a = make_linear(rng, 70, in, spec), b = make_linear(rng, 16, in, spec), c = make_linear(rng, 5, in, spec);
    for (int64_t T : {1, 6}) {
      std::vector<float> x = rng.vec(T * in);
      std::vector<float> ya(T * 70), yb(T * 16), yc(T * 5), ra(ya.size()), rb(yb.size()), rc(yc.size());
      const LinearWeight* ws[] = {&a.lw, &b.lw, &c.lw};
      const Tensor ys[] = {view(ya, {T, 70}), view(yb, {T, 16}), view(yc, {T, 5})};
      for (Backend* be : {single_.get(), many_.get()}) {
        be->linears(view(x, {T, in}), ws, ys);
        backend_->linear(view(x, {T, in}), a.lw, view(ra, {T, 70}));
        backend_->linear(view(x, {T, in}), b.lw, view(rb, {T, 16}));
        backend_->linear(view(x, {T, in}), c.lw, view(rc, {T, 5}));
        EXPECT_EQ(0, std::memcmp(ya.data(), ra.data(), ya.size() * 4)) << spec_name(spec) << " T=" << T;
        EXPECT_EQ(0, std::memcmp(yb.data(), rb.data(), yb.size() * 4)) << spec_name(spec) << " T=" << T;
        EXPECT_EQ(0, std::memcmp(yc.data(), rc.data(), yc.size() * 4)) << spec_name(spec) << " T=" << T;
      }
    }
  }
}

// Batches whose staged x exceeds the per-thread bound run in token groups, each streaming the weights
// again; every token still gets the bits of a single-token call.
TEST_P(CpuOps, LinearLargeBatchesRunInTokenGroupsWithSameBits) {
  Rng rng(6);
  for (const LinearSpec& spec : linear_specs()) {
    const int64_t in = 1100, out = 11, T = 1000;  // T * in > 2^20 staged floats
    TestLinear w = make_linear(rng, out, in, spec);
    std::vector<float> x = rng.vec(T * in), y(static_cast<size_t>(T * out)), yt(y.size());
    many_->linear(view(x, {T, in}), w.lw, view(y, {T, out}));
    for (int64_t t = 0; t < T; t += 97)
      many_->linear(Tensor{x.data() + t * in, {1, in}, DType::kF32}, w.lw,
                    Tensor{yt.data() + t * out, {1, out}, DType::kF32});
    for (int64_t t = 0; t < T; t += 97)
      EXPECT_EQ(0, std::memcmp(y.data() + t * out, yt.data() + t * out, out * 4)) << spec_name(spec) << " t=" << t;
    std::vector<double> ref, mag;
    reference_linear(w, std::vector<float>(x.begin(), x.begin() + 3 * in), 3, ref, mag);
    expect_close(std::vector<float>(y.begin(), y.begin() + 3 * out), ref, mag, 1e-5, spec_name(spec));
  }
}

TEST_P(CpuOps, LinearAcceptsHigherRankActivations) {
  Rng rng(4);
  TestLinear w = make_linear(rng, 12, 20, {.w_dtype = DType::kBF16});
  std::vector<float> x = rng.vec(2 * 4 * 5), y(2 * 12);
  backend_->linear(view(x, {2, 4, 5}), w.lw, view(y, {2, 3, 4}));
  std::vector<double> ref, mag;
  reference_linear(w, x, 2, ref, mag);
  expect_close(y, ref, mag, 1e-5, "x [2, 4, 5] -> y [2, 3, 4]");
}

TEST_P(CpuOps, LinearRejectsMismatchedInputs) {
  Rng rng(5);
  TestLinear w = make_linear(rng, 8, 16, {.w_dtype = DType::kBF16});
  std::vector<float> x = rng.vec(2 * 16), y(2 * 8), bad(2 * 9);
  EXPECT_THROW(backend_->linear(view(x, {2, 16}), w.lw, view(bad, {2, 9})), Error);
  EXPECT_THROW(backend_->linear(view(x, {4, 8}), w.lw, view(y, {2, 8})), Error);
  LinearWeight fp8_as_plain = w.lw;
  fp8_as_plain.quant = WeightQuant::kFp8Channel;  // bf16 weight claimed as fp8
  EXPECT_THROW(backend_->linear(view(x, {2, 16}), fp8_as_plain, view(y, {2, 8})), Error);
  TestLinear f8 = make_linear(rng, 8, 16, {.w_dtype = DType::kF8E4M3, .quant = WeightQuant::kFp8Channel});
  f8.lw.scale = f8.scale.tensor({4});  // wrong scale length
  EXPECT_THROW(backend_->linear(view(x, {2, 16}), f8.lw, view(y, {2, 8})), Error);
  f8.lw.quant = WeightQuant::kNone;  // fp8 weight without quantisation
  f8.lw.scale = Tensor{};
  EXPECT_THROW(backend_->linear(view(x, {2, 16}), f8.lw, view(y, {2, 8})), Error);
}

/// A host vector of ids as an [n] i32 tensor (the CPU backend's "device" memory is host memory).
Tensor i32_view(const std::vector<int32_t>& v) {
  return Tensor{const_cast<int32_t*>(v.data()), Shape{static_cast<int64_t>(v.size())}, DType::kI32};
}

/// The StepState of a batch of slices (positions start_pos + j), as the engine's begin_step builds it.
StepState step_of(Backend& be, Arena& arena, std::span<const SeqSlice> seqs, int block_size) {
  std::vector<int32_t> pos;
  for (const SeqSlice& s : seqs)
    for (int32_t j = 0; j < s.n_tokens; ++j) pos.push_back(s.start_pos + j);
  return be.begin_step(BatchDesc{.positions = pos, .seqs = seqs, .block_size = block_size}, arena);
}

// ---------------------------------------------------------------------------------------------------------
// embedding, rms_norm, rope, silu_mul, add

TEST_P(CpuOps, EmbeddingGathersRowsOfEveryDtype) {
  Rng rng(6);
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    const int64_t V = 11, H = 19;
    HostData table = random_data(rng, V * H, dt);
    const std::vector<int32_t> ids = {3, 0, 10, 3};
    std::vector<float> out(ids.size() * H);
    backend_->embedding(i32_view(ids), table.tensor({V, H}), view(out, {4, H}));
    for (size_t i = 0; i < ids.size(); ++i)
      for (int64_t j = 0; j < H; ++j)
        ASSERT_EQ(out[i * H + j], static_cast<float>(table.value[ids[i] * H + j])) << dtype_name(dt);
    const std::vector<int32_t> bad = {1, 11};
    try {
      backend_->embedding(i32_view(bad), table.tensor({V, H}), view(out, {2, H}));
      ADD_FAILURE() << "id 11 of 11 accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("token id 11"), std::string::npos) << e.what();
    }
  }
}

TEST_P(CpuOps, RmsNormOnRowsAndHeadsWithAndWithoutUnitOffset) {
  Rng rng(7);
  struct Case {
    int64_t rows, D;
  };
  for (Case c : {Case{3, 33}, Case{5 * 4, 16}, Case{2, 1000}})
    for (bool unit_offset : {false, true})
      for (DType wdt : {DType::kF32, DType::kBF16}) {
        std::vector<float> x = rng.vec(c.rows * c.D, -3.0f, 3.0f), out(x.size());
        HostData w = random_data(rng, c.D, wdt, -0.5f, 1.5f);
        const float eps = 1e-5f;
        backend_->rms_norm(view(x, {c.rows, c.D}), w.tensor({c.D}), eps, unit_offset,
                           view(out, {c.rows, c.D}));
        std::vector<double> ref(x.size()), mag(x.size());
        for (int64_t r = 0; r < c.rows; ++r) {
          double ss = 0;
          for (int64_t i = 0; i < c.D; ++i) ss += double(x[r * c.D + i]) * x[r * c.D + i];
          const double inv = 1.0 / std::sqrt(ss / c.D + eps);
          for (int64_t i = 0; i < c.D; ++i) {
            const double wi = unit_offset ? 1.0 + w.value[i] : w.value[i];
            ref[r * c.D + i] = x[r * c.D + i] * inv * wi;
            mag[r * c.D + i] = std::abs(ref[r * c.D + i]) + 1e-6;
          }
        }
        expect_close(out, ref, mag, 1e-5, fmt::format("rows {} D {} offset {}", c.rows, c.D, unit_offset));
        // In place (out aliases x) gives the same values.
        backend_->rms_norm(view(x, {c.rows, c.D}), w.tensor({c.D}), eps, unit_offset, view(x, {c.rows, c.D}));
        EXPECT_EQ(0, std::memcmp(x.data(), out.data(), x.size() * 4));
      }
}

TEST_P(CpuOps, RopeNeoxRotatesFirstRotDimsOnly) {
  Rng rng(8);
  const int64_t T = 4, heads = 3, D = 20;
  const int rot_dim = 12, half = 6;
  const float theta = 1e6f;
  const std::vector<int32_t> pos = {0, 1, 777, 131071};
  std::vector<float> x = rng.vec(T * heads * D), orig = x;
  backend_->rope_neox(view(x, {T, heads, D}), i32_view(pos), rot_dim, theta);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float* o = orig.data() + (t * heads + h) * D;
      const float* v = x.data() + (t * heads + h) * D;
      for (int j = 0; j < half; ++j) {
        // HF: inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim), angle = pos * inv_freq, all fp32.
        const float inv_freq =
            1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(rot_dim));
        const float angle = static_cast<float>(pos[t]) * inv_freq;
        const double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
        const double a = o[j], b = o[j + half];
        EXPECT_NEAR(v[j], a * c - b * s, 2e-6) << "t " << t << " h " << h << " j " << j;
        EXPECT_NEAR(v[j + half], b * c + a * s, 2e-6) << "t " << t << " h " << h << " j " << j;
      }
      for (int64_t j = rot_dim; j < D; ++j) EXPECT_EQ(v[j], o[j]) << "dim " << j << " must stay untouched";
    }
}

TEST_P(CpuOps, SiluMulAndAdd) {
  Rng rng(9);
  for (int64_t n : {1, 7, 33, 4097}) {
    std::vector<float> g = rng.vec(n, -20.0f, 20.0f), u = rng.vec(n), out(n);
    backend_->silu_mul(view(g, {1, n}), view(u, {1, n}), view(out, {1, n}));
    std::vector<double> ref(n), mag(n);
    for (int64_t i = 0; i < n; ++i) {
      ref[i] = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
      mag[i] = std::abs(ref[i]) + 1e-30;
    }
    expect_close(out, ref, mag, 1e-5, fmt::format("silu_mul n={}", n));
    backend_->silu_mul(view(g, {1, n}), view(u, {1, n}), view(g, {1, n}));  // out aliases gate
    EXPECT_EQ(0, std::memcmp(g.data(), out.data(), n * 4));

    std::vector<float> a = rng.vec(n), b = rng.vec(n), sum(n);
    backend_->add(view(a, {n}), view(b, {n}), view(sum, {n}));
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(sum[i], a[i] + b[i]);
    backend_->add(view(a, {n}), view(b, {n}), view(a, {n}));
    EXPECT_EQ(0, std::memcmp(a.data(), sum.data(), n * 4));
  }
}

// ---------------------------------------------------------------------------------------------------------
// kv_store + attention

/// What a cache element of `dtype` holds after kv_store(x) with fp8 scale `s`, read back as a value: the
/// reference both for the stored bits and for attention (which must read elements exactly).
float stored_value(float x, DType dtype, float s) {
  switch (dtype) {
    case DType::kBF16: return bf16_to_f32(f32_to_bf16(x));
    case DType::kF8E4M3: return f8e4m3_to_f32(f32_to_f8e4m3(x / s)) * s;
    default: return x;
  }
}

/// The bytes kv_store must write for one row of values (per kv head scales for fp8).
std::vector<uint8_t> stored_bytes(const float* x, int64_t n, int64_t d, DType dtype, const float* scales) {
  std::vector<uint8_t> out(static_cast<size_t>(n) * dtype_size(dtype));
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(&out[i * 4], &x[i], 4);
    } else if (dtype == DType::kBF16) {
      const uint16_t b = f32_to_bf16(x[i]);
      std::memcpy(&out[i * 2], &b, 2);
    } else {
      out[i] = f32_to_f8e4m3(x[i] / scales[i / d]);
    }
  }
  return out;
}

struct PagedCase {
  static constexpr int kBlocks = 12, kBlockSize = 4, kHkv = 2, kHq = 6;
  static constexpr uint8_t kSentinel = 0xa5;  // bytes of slots nobody writes must stay untouched
  int d = 20;  // head_dim: 20 takes the generic kernels, 64 and 128 the register-blocked ones
  DType dtype = DType::kF32;
  std::vector<uint8_t> k_cache, v_cache;
  std::vector<float> k_scale = {1.0f, 1.0f}, v_scale = {1.0f, 1.0f};  // [kHkv]
  KvLayerView kv;
  // Three sequences: a prefill from 0, a decode step with 9 cached tokens, a 3-token verify after 6.
  std::vector<std::vector<int32_t>> tables = {{7, 2}, {5, 0, 11}, {1, 9, 3}};
  std::vector<SeqSlice> seqs;
  std::vector<std::vector<float>> k_logical, v_logical;  // per sequence: [pos, Hkv, D]
  int64_t T = 0;

  explicit PagedCase(int head_dim = 20, DType kv_dtype = DType::kF32) : d(head_dim), dtype(kv_dtype) {
    const size_t n = size_t{kBlocks} * kBlockSize * kHkv * d * dtype_size(dtype);
    k_cache.assign(n, kSentinel);
    v_cache.assign(n, kSentinel);
    kv = {.k = k_cache.data(),
          .v = v_cache.data(),
          .n_blocks = kBlocks,
          .block_size = kBlockSize,
          .n_kv_heads = kHkv,
          .head_dim = d,
          .dtype = dtype,
          .k_scale = k_scale.data(),
          .v_scale = v_scale.data()};
    const int32_t starts[] = {0, 9, 6}, counts[] = {5, 1, 3};
    for (int s = 0; s < 3; ++s) {
      seqs.push_back({T, counts[s], starts[s], tables[s].data()});
      T += counts[s];
    }
  }
  int64_t row_bytes() const { return int64_t{kHkv} * d * static_cast<int64_t>(dtype_size(dtype)); }
  uint8_t* slot(std::vector<uint8_t>& cache, int s, int64_t pos) const {
    const int64_t blk = tables[s][pos / kBlockSize];
    return cache.data() + (blk * kBlockSize + pos % kBlockSize) * row_bytes();
  }
  /// Logical rows of every sequence; the cached prefix is written straight into the pages as an earlier
  /// step would have. Returns this batch's new k and v rows [T, Hkv, D].
  std::pair<std::vector<float>, std::vector<float>> fill(Rng& rng) {
    const int64_t row = int64_t{kHkv} * d;
    for (int s = 0; s < 3; ++s) {
      const int64_t total = seqs[s].start_pos + seqs[s].n_tokens;
      k_logical.push_back(rng.vec(total * row));
      v_logical.push_back(rng.vec(total * row));
      for (int64_t p = 0; p < seqs[s].start_pos; ++p) {
        const auto kb = stored_bytes(&k_logical[s][p * row], row, d, dtype, k_scale.data());
        const auto vb = stored_bytes(&v_logical[s][p * row], row, d, dtype, v_scale.data());
        std::memcpy(slot(k_cache, s, p), kb.data(), kb.size());
        std::memcpy(slot(v_cache, s, p), vb.data(), vb.size());
      }
    }
    std::vector<float> k(T * row), v(T * row);
    for (int s = 0; s < 3; ++s)
      for (int64_t j = 0; j < seqs[s].n_tokens; ++j) {
        const int64_t p = seqs[s].start_pos + j, t = seqs[s].token_begin + j;
        std::memcpy(&k[t * row], &k_logical[s][p * row], row * 4);
        std::memcpy(&v[t * row], &v_logical[s][p * row], row * 4);
      }
    return {std::move(k), std::move(v)};
  }
};

std::vector<DType> kv_dtypes() {
  return {DType::kF32, DType::kBF16, DType::kF8E4M3};
}

TEST_P(CpuOps, KvStoreAndPagedAttentionMatchReference) {
  Rng rng(10);
  for (DType dtype : kv_dtypes())
    for (int head_dim : {20, 64, 128}) {
      SCOPED_TRACE(fmt::format("{} head_dim {}", dtype_name(dtype), head_dim));
      PagedCase pc(head_dim, dtype);
      if (dtype == DType::kF8E4M3) {  // non-trivial per-head scales
        pc.k_scale = {0.75f, 0.0625f};
        pc.v_scale = {0.005f, 1.5f};
      }
      const int64_t row = PagedCase::kHkv * pc.d;
      auto [k, v] = pc.fill(rng);
      Arena arena(backend_->allocator());
      const StepState step = step_of(*backend_, arena, pc.seqs, PagedCase::kBlockSize);
      backend_->kv_store(view(k, {pc.T, PagedCase::kHkv, pc.d}), view(v, {pc.T, PagedCase::kHkv, pc.d}), pc.kv,
                         step);
      // Every position of every sequence now reads back through the block tables, each element converted on
      // its own; other slots keep the sentinel.
      std::vector<bool> used(pc.k_cache.size() / pc.row_bytes(), false);
      for (int s = 0; s < 3; ++s)
        for (int64_t p = 0; p < pc.seqs[s].start_pos + pc.seqs[s].n_tokens; ++p) {
          const auto kb = stored_bytes(&pc.k_logical[s][p * row], row, pc.d, dtype, pc.k_scale.data());
          const auto vb = stored_bytes(&pc.v_logical[s][p * row], row, pc.d, dtype, pc.v_scale.data());
          EXPECT_EQ(0, std::memcmp(pc.slot(pc.k_cache, s, p), kb.data(), kb.size())) << s << "," << p;
          EXPECT_EQ(0, std::memcmp(pc.slot(pc.v_cache, s, p), vb.data(), vb.size())) << s << "," << p;
          used[(pc.slot(pc.k_cache, s, p) - pc.k_cache.data()) / pc.row_bytes()] = true;
        }
      for (size_t i = 0; i < used.size(); ++i)
        if (!used[i]) {
          EXPECT_EQ(pc.k_cache[i * pc.row_bytes()], PagedCase::kSentinel) << "slot " << i << " was written";
        }

      const int64_t Hq = PagedCase::kHq, D = pc.d, group = Hq / PagedCase::kHkv;
      std::vector<float> q = rng.vec(pc.T * Hq * D, -2.0f, 2.0f), out(q.size()), out1(q.size());
      const float scale = 1.0f / std::sqrt(float(D));
      backend_->attention(view(q, {pc.T, Hq, D}), pc.kv, step, scale, view(out, {pc.T, Hq, D}));
      single_->attention(view(q, {pc.T, Hq, D}), pc.kv, step, scale, view(out1, {pc.T, Hq, D}));
      EXPECT_EQ(0, std::memcmp(out.data(), out1.data(), out.size() * 4)) << "1 vs 2 threads";

      // Reference in double over the values the cache holds (stored_value), so it checks the kernels'
      // reading of bf16 / fp8 elements and scales, not the rounding of the store.
      std::vector<double> ref(q.size()), mag(q.size());
      for (int s = 0; s < 3; ++s)
        for (int64_t j = 0; j < pc.seqs[s].n_tokens; ++j) {
          const int64_t t = pc.seqs[s].token_begin + j, n_ctx = pc.seqs[s].start_pos + j + 1;
          for (int64_t h = 0; h < Hq; ++h) {
            const int64_t g = h / group;
            auto kval = [&](int64_t p, int64_t i) {
              return double(stored_value(pc.k_logical[s][(p * 2 + g) * D + i], dtype, pc.k_scale[g]));
            };
            auto vval = [&](int64_t p, int64_t i) {
              return double(stored_value(pc.v_logical[s][(p * 2 + g) * D + i], dtype, pc.v_scale[g]));
            };
            std::vector<double> sc(n_ctx);
            double mx = -1e300, total = 0;
            for (int64_t p = 0; p < n_ctx; ++p) {
              double dot = 0;
              for (int64_t i = 0; i < D; ++i) dot += double(q[(t * Hq + h) * D + i]) * kval(p, i);
              sc[p] = dot * scale;
              mx = std::max(mx, sc[p]);
            }
            for (double& x : sc) total += x = std::exp(x - mx);
            for (int64_t i = 0; i < D; ++i) {
              double o = 0, m = 0;
              for (int64_t p = 0; p < n_ctx; ++p) {
                o += sc[p] / total * vval(p, i);
                m += sc[p] / total * std::abs(vval(p, i));
              }
              ref[(t * Hq + h) * D + i] = o;
              mag[(t * Hq + h) * D + i] = m;
            }
          }
        }
      expect_close(out, ref, mag, 1e-5, "attention");

      // The decode sequence alone (T = 1) on 3 threads splits its q-head group across threads: same bits.
      SeqSlice decode = pc.seqs[1];
      const int64_t row_b = decode.token_begin;
      decode.token_begin = 0;
      std::vector<float> qb(q.begin() + row_b * Hq * D, q.begin() + (row_b + 1) * Hq * D), ob(Hq * D);
      const StepState decode_step = step_of(*many_, arena, std::span<const SeqSlice>(&decode, 1),
                                             PagedCase::kBlockSize);
      many_->attention(view(qb, {1, Hq, D}), pc.kv, decode_step, scale, view(ob, {1, Hq, D}));
      EXPECT_EQ(0, std::memcmp(ob.data(), out.data() + row_b * Hq * D, ob.size() * 4))
          << "decode alone, 3 threads";
    }
}

// bf16 and fp8 elements are read exactly: attention over a bf16 / fp8 cache gives the same bits as over an f32
// cache holding the dequantized values (fp8 scales that are powers of two keep the dequantized product exact,
// so the two orders of applying them round identically).
TEST_P(CpuOps, QuantizedKvCacheReadsAsItsExactValues) {
  Rng rng(12);
  for (DType dtype : {DType::kBF16, DType::kF8E4M3})
    for (int head_dim : {20, 64, 128}) {
      SCOPED_TRACE(fmt::format("{} head_dim {}", dtype_name(dtype), head_dim));
      PagedCase pq(head_dim, dtype), pf(head_dim, DType::kF32);
      if (dtype == DType::kF8E4M3) {
        pq.k_scale = {0.5f, 4.0f};
        pq.v_scale = {0.125f, 2.0f};
      }
      auto [k, v] = pq.fill(rng);
      Arena arena(backend_->allocator());
      const StepState step = step_of(*backend_, arena, pq.seqs, PagedCase::kBlockSize);
      backend_->kv_store(view(k, {pq.T, PagedCase::kHkv, pq.d}), view(v, {pq.T, PagedCase::kHkv, pq.d}), pq.kv,
                         step);
      // The f32 cache gets the dequantized values of every position.
      const int64_t row = PagedCase::kHkv * pq.d;
      for (int s = 0; s < 3; ++s)
        for (int64_t p = 0; p < pq.seqs[s].start_pos + pq.seqs[s].n_tokens; ++p)
          for (int64_t i = 0; i < row; ++i) {
            const int64_t g = i / pq.d;
            const float kx = stored_value(pq.k_logical[s][p * row + i], dtype, pq.k_scale[g]);
            const float vx = stored_value(pq.v_logical[s][p * row + i], dtype, pq.v_scale[g]);
            std::memcpy(pf.slot(pf.k_cache, s, p) + i * 4, &kx, 4);
            std::memcpy(pf.slot(pf.v_cache, s, p) + i * 4, &vx, 4);
          }
      const int64_t Hq = PagedCase::kHq, D = pq.d;
      std::vector<float> q = rng.vec(pq.T * Hq * D, -2.0f, 2.0f), oq(q.size()), of(q.size());
      const float scale = 1.0f / std::sqrt(float(D));
      backend_->attention(view(q, {pq.T, Hq, D}), pq.kv, step, scale, view(oq, {pq.T, Hq, D}));
      backend_->attention(view(q, {pq.T, Hq, D}), pf.kv, step, scale, view(of, {pq.T, Hq, D}));
      EXPECT_EQ(0, std::memcmp(oq.data(), of.data(), oq.size() * 4));
    }
}

TEST_P(CpuOps, KvStoreRoundsToNearestEvenAndSaturatesFp8) {
  // One token, one kv head of 8: ties, values beyond e4m3's 448 and a NaN-free saturation, subnormals.
  PagedCase pb(8, DType::kBF16), p8(8, DType::kF8E4M3);
  const float bf16_tie = bf16_to_f32(0x3f80) + std::ldexp(1.0f, -8);  // exactly between 1.0 and 1.0078125
  std::vector<float> kb = {bf16_tie, -bf16_tie, 3.0f, 1e-30f, -0.0f, 65504.0f, 1.00390625f, 7.0f};
  const std::vector<float> k8 = {1.0625f, 1.1875f, 1000.0f, -1000.0f, 0.0009765625f, 0.0029296875f, 17.0f, -0.0f};
  const SeqSlice one{.token_begin = 0, .n_tokens = 1, .start_pos = 0, .block_table = pb.tables[0].data()};
  Arena arena(backend_->allocator());
  const StepState step = step_of(*backend_, arena, std::span<const SeqSlice>(&one, 1), PagedCase::kBlockSize);
  for (PagedCase* pc : {&pb, &p8}) {
    std::vector<float> x(2 * 8, 0.0f);
    std::copy(pc == &pb ? kb.begin() : k8.begin(), pc == &pb ? kb.end() : k8.end(), x.begin());
    backend_->kv_store(view(x, {1, 2, 8}), view(x, {1, 2, 8}), pc->kv, step);
    const auto want = stored_bytes(x.data(), 16, 8, pc->dtype, pc->k_scale.data());
    EXPECT_EQ(0, std::memcmp(pc->slot(pc->k_cache, 0, 0), want.data(), want.size())) << dtype_name(pc->dtype);
  }
  // Spot values: ties go to even, fp8 saturates to +-448 (0x7e / 0xfe) rather than NaN.
  uint16_t b0 = 0;
  std::memcpy(&b0, pb.slot(pb.k_cache, 0, 0), 2);
  EXPECT_EQ(b0, 0x3f80);  // 1.00390625 rounds to even 1.0
  const uint8_t* f = p8.slot(p8.k_cache, 0, 0);
  EXPECT_EQ(f[0], 0x38);  // 1.0625 is a tie between 1.0 (mantissa 0) and 1.125 (1): even -> 1.0
  EXPECT_EQ(f[1], 0x3a);  // 1.1875 is a tie between 1.125 (1) and 1.25 (2): even -> 1.25
  EXPECT_EQ(f[2], 0x7e);
  EXPECT_EQ(f[3], 0xfe);
}

// kv_store's fp8 encoder is bit for bit core's f32_to_f8e4m3 (checked on every float once, offline; here on
// every sign / exponent / top-7-mantissa-bit pattern with low bits that make exact values, ties and near-ties).
TEST(KvFp8Encoding, MatchesTheCoreConversionBitForBit) {
  int bad = 0;
  for (uint32_t hi = 0; hi < 0x10000u; ++hi)
    for (uint32_t lo : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x5a5au}) {
      const float f = std::bit_cast<float>(hi << 16 | lo);
      if (cpu::kv_f32_to_f8e4m3(f) != f32_to_f8e4m3(f) && ++bad <= 5)
        ADD_FAILURE() << std::hex << (hi << 16 | lo) << ": " << int(cpu::kv_f32_to_f8e4m3(f)) << " vs "
                      << int(f32_to_f8e4m3(f));
    }
}

TEST_P(CpuOps, AttentionRejectsBadBlockTables) {
  PagedCase pc;
  pc.tables[1][2] = PagedCase::kBlocks;  // one past the last block
  std::vector<float> q(pc.T * PagedCase::kHq * pc.d), out(q.size());
  Arena arena(backend_->allocator());
  const StepState step = step_of(*backend_, arena, pc.seqs, PagedCase::kBlockSize);
  EXPECT_THROW(backend_->attention(view(q, {pc.T, PagedCase::kHq, pc.d}), pc.kv, step, 1.0f,
                                   view(out, {pc.T, PagedCase::kHq, pc.d})),
               Error);
}

TEST_P(CpuOps, AttentionRejectsFp8ViewWithoutScalesAndOtherDtypes) {
  PagedCase pc(20, DType::kF8E4M3);
  std::vector<float> q(pc.T * PagedCase::kHq * pc.d), out(q.size());
  Arena arena(backend_->allocator());
  const StepState step = step_of(*backend_, arena, pc.seqs, PagedCase::kBlockSize);
  KvLayerView no_scales = pc.kv;
  no_scales.v_scale = nullptr;
  EXPECT_THROW(backend_->attention(view(q, {pc.T, PagedCase::kHq, pc.d}), no_scales, step, 1.0f,
                                   view(out, {pc.T, PagedCase::kHq, pc.d})),
               Error);
  KvLayerView f16 = pc.kv;
  f16.dtype = DType::kF16;
  EXPECT_THROW(backend_->attention(view(q, {pc.T, PagedCase::kHq, pc.d}), f16, step, 1.0f,
                                   view(out, {pc.T, PagedCase::kHq, pc.d})),
               Error);
}

// ---------------------------------------------------------------------------------------------------------
// moe_route

/// Independent router reference (double precision; ids ordered by choice score, ties to the lower index).
void reference_route(const std::vector<float>& logits, const std::vector<float>* bias, const MoeRouting& r,
                     int64_t T, int64_t E, std::vector<int32_t>& ids, std::vector<double>& w) {
  ids.clear();
  w.clear();
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> p(E), choice(E);
    if (r.scoring == MoeScoring::kSigmoid) {
      for (int64_t e = 0; e < E; ++e) p[e] = 1.0 / (1.0 + std::exp(-double(logits[t * E + e])));
    } else {
      double mx = -1e300, s = 0;
      for (int64_t e = 0; e < E; ++e) mx = std::max(mx, double(logits[t * E + e]));
      for (int64_t e = 0; e < E; ++e) s += p[e] = std::exp(logits[t * E + e] - mx);
      for (double& x : p) x /= s;
    }
    for (int64_t e = 0; e < E; ++e) choice[e] = p[e] + (bias ? (*bias)[e] : 0.0);
    auto better = [](const std::vector<double>& v) {
      return [&v](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
    };
    if (r.n_group > 1) {
      const int64_t gs = E / r.n_group;
      std::vector<double> gscore(r.n_group);
      for (int g = 0; g < r.n_group; ++g) {
        std::vector<double> members(choice.begin() + g * gs, choice.begin() + (g + 1) * gs);
        std::sort(members.rbegin(), members.rend());
        gscore[g] = members[0] + members[1];
      }
      std::vector<int> gorder(r.n_group);
      std::iota(gorder.begin(), gorder.end(), 0);
      std::sort(gorder.begin(), gorder.end(), better(gscore));
      std::vector<bool> keep(r.n_group, false);
      for (int i = 0; i < r.topk_group; ++i) keep[gorder[i]] = true;
      for (int64_t e = 0; e < E; ++e)
        if (!keep[e / gs]) choice[e] = 0.0;
    }
    std::vector<int> order(E);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), better(choice));
    double total = 0;
    for (int k = 0; k < r.top_k; ++k) total += p[order[k]];
    for (int k = 0; k < r.top_k; ++k) {
      double wk = p[order[k]];
      if (r.norm_topk_prob) wk /= r.scoring == MoeScoring::kSigmoid ? total + 1e-20 : total;
      ids.push_back(order[k]);
      w.push_back(wk * r.routed_scaling_factor);
    }
  }
}

struct RouteResult {
  std::vector<int32_t> ids;
  std::vector<float> w;
};

RouteResult route(Backend& be, std::vector<float>& logits, std::vector<float>* bias, const MoeRouting& r,
                  int64_t T, int64_t E) {
  RouteResult res{std::vector<int32_t>(T * r.top_k), std::vector<float>(T * r.top_k)};
  const Tensor b = bias ? view(*bias, {E}) : Tensor{};
  be.moe_route(view(logits, {T, E}), b, r, Tensor{res.ids.data(), {T, r.top_k}, DType::kI32},
               view(res.w, {T, r.top_k}));
  return res;
}

void expect_route(Backend& be, std::vector<float>& logits, std::vector<float>* bias, const MoeRouting& r,
                  int64_t T, int64_t E, const std::string& what) {
  const RouteResult got = route(be, logits, bias, r, T, E);
  std::vector<int32_t> ids;
  std::vector<double> w;
  reference_route(logits, bias, r, T, E, ids, w);
  EXPECT_EQ(got.ids, ids) << what;
  for (size_t i = 0; i < w.size(); ++i)
    EXPECT_NEAR(got.w[i], w[i], 1e-6 * std::max(1.0, std::abs(w[i]))) << what;
}

TEST_P(CpuOps, MoeRouteSigmoidGroupedNormScaled) {
  Rng rng(11);
  const int64_t T = 17, E = 16;
  std::vector<float> logits = rng.vec(T * E, -4.0f, 4.0f), bias = rng.vec(E, -0.3f, 0.3f);
  for (bool norm : {true, false})
    for (float scaling : {1.0f, 2.5f}) {
      MoeRouting r{.top_k = 4,
                   .n_group = 4,
                   .topk_group = 2,
                   .norm_topk_prob = norm,
                   .routed_scaling_factor = scaling,
                   .scoring = MoeScoring::kSigmoid};
      expect_route(*backend_, logits, &bias, r, T, E, fmt::format("grouped norm {} scale {}", norm, scaling));
      r.n_group = 1;
      r.topk_group = 1;
      expect_route(*backend_, logits, &bias, r, T, E,
                   fmt::format("ungrouped norm {} scale {}", norm, scaling));
      expect_route(*backend_, logits, nullptr, r, T, E,
                   fmt::format("no bias norm {} scale {}", norm, scaling));
    }
}

TEST_P(CpuOps, MoeRouteBiasSteersSelectionButNotWeights) {
  std::vector<float> logits = {2.0f, 1.0f, 0.0f, -1.0f, -2.0f, -3.0f};  // one token, E = 6
  std::vector<float> bias = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.9f};
  const MoeRouting r{.top_k = 2, .norm_topk_prob = false, .routed_scaling_factor = 1.0f};
  const RouteResult plain = route(*backend_, logits, nullptr, r, 1, 6);
  const RouteResult biased = route(*backend_, logits, &bias, r, 1, 6);
  EXPECT_EQ(plain.ids, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(biased.ids, (std::vector<int32_t>{5, 0}));  // sigmoid(-3) + 0.9 = 0.947 > sigmoid(2) = 0.881
  EXPECT_NEAR(biased.w[0], 1.0 / (1.0 + std::exp(3.0)), 1e-7) << "weight must be the unbiased sigmoid";
  EXPECT_NEAR(biased.w[1], 1.0 / (1.0 + std::exp(-2.0)), 1e-7);
  expect_route(*backend_, logits, &bias, r, 1, 6, "bias example");
}

// HF masks experts of dropped groups to 0.0, not -inf: when every kept score is negative they win.
TEST_P(CpuOps, MoeRouteMasksDroppedGroupsToZeroLikeHf) {
  std::vector<float> logits = {3.0f, 2.0f, 1.0f, 0.0f, -1.0f, -2.0f, -3.0f, -4.0f};  // E = 8, 2 groups of 4
  std::vector<float> bias(8, -5.0f);
  const MoeRouting r{
      .top_k = 2, .n_group = 2, .topk_group = 1, .norm_topk_prob = true, .routed_scaling_factor = 2.5f};
  const RouteResult got = route(*backend_, logits, &bias, r, 1, 8);
  EXPECT_EQ(got.ids, (std::vector<int32_t>{4, 5}));  // group 0 kept, yet masked zeros beat its -4.x scores
  expect_route(*backend_, logits, &bias, r, 1, 8, "masked groups");
}

TEST_P(CpuOps, MoeRouteSoftmaxAndTies) {
  Rng rng(12);
  const int64_t T = 5, E = 10;
  std::vector<float> logits = rng.vec(T * E, -3.0f, 3.0f);
  for (bool norm : {true, false}) {
    const MoeRouting r{.top_k = 3, .norm_topk_prob = norm, .scoring = MoeScoring::kSoftmax};
    expect_route(*backend_, logits, nullptr, r, T, E, fmt::format("softmax norm {}", norm));
  }
  std::vector<float> flat(E, 0.5f);
  const RouteResult tie =
      route(*backend_, flat, nullptr, {.top_k = 3, .scoring = MoeScoring::kSoftmax}, 1, E);
  EXPECT_EQ(tie.ids, (std::vector<int32_t>{0, 1, 2}));
  for (float w : tie.w) EXPECT_NEAR(w, 1.0f / 3.0f, 1e-7);
}

// ---------------------------------------------------------------------------------------------------------
// moe_experts

struct TestExperts {
  std::vector<TestLinear> gate, up, down;
  std::vector<MlpWeights> mlp;
  int64_t H = 0, I = 0;
};

TestExperts make_experts(Rng& rng, int64_t E, int64_t H, int64_t I, const LinearSpec& spec) {
  TestExperts ex;
  ex.H = H;
  ex.I = I;
  for (int64_t e = 0; e < E; ++e) {
    ex.gate.push_back(make_linear(rng, I, H, spec));
    ex.up.push_back(make_linear(rng, I, H, spec));
    ex.down.push_back(make_linear(rng, H, I, spec));
  }
  for (int64_t e = 0; e < E; ++e) ex.mlp.push_back({ex.gate[e].lw, ex.up[e].lw, ex.down[e].lw});
  return ex;
}

/// out0 + sum_k w * down(silu(gate x) * up x) in double, with the error scale of each element.
void reference_moe(const TestExperts& ex, const std::vector<float>& x, const std::vector<int32_t>& ids,
                   const std::vector<float>& w, int K, const std::vector<float>& out0,
                   std::vector<double>& ref, std::vector<double>& mag) {
  const int64_t H = ex.H, I = ex.I, T = static_cast<int64_t>(x.size()) / H;
  ref.assign(out0.begin(), out0.end());
  mag.assign(out0.size(), 0.0);
  for (int64_t i = 0; i < T * H; ++i) mag[i] = std::abs(out0[i]);
  for (int64_t t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k) {
      const int e = ids[t * K + k];
      std::vector<double> h(I), hmag(I);
      for (int64_t i = 0; i < I; ++i) {
        double g = 0, u = 0, gm = 0, um = 0;
        for (int64_t j = 0; j < H; ++j) {
          g += x[t * H + j] * ex.gate[e].at(i, j);
          u += x[t * H + j] * ex.up[e].at(i, j);
          gm += std::abs(x[t * H + j] * ex.gate[e].at(i, j));
          um += std::abs(x[t * H + j] * ex.up[e].at(i, j));
        }
        const double silu = g / (1.0 + std::exp(-g));
        h[i] = silu * u;
        hmag[i] = std::abs(silu) * um + gm * std::abs(u);  // first-order error scale of h
      }
      for (int64_t o = 0; o < H; ++o) {
        double s = 0, m = 0;
        for (int64_t i = 0; i < I; ++i) {
          s += h[i] * ex.down[e].at(o, i);
          m += (std::abs(h[i]) + hmag[i]) * std::abs(ex.down[e].at(o, i));
        }
        ref[t * H + o] += w[t * K + k] * s;
        mag[t * H + o] += std::abs(w[t * K + k]) * m;
      }
    }
}

TEST_P(CpuOps, MoeExpertsMatchReference) {
  Rng rng(13);
  const int64_t E = 6, H = 33, I = 20;
  const int K = 2;
  for (const LinearSpec& spec :
       {LinearSpec{.w_dtype = DType::kBF16},
        LinearSpec{
            .w_dtype = DType::kF8E4M3, .quant = WeightQuant::kFp8Block, .block_out = 16, .block_in = 16}}) {
    TestExperts ex = make_experts(rng, E, H, I, spec);
    for (int64_t T : {1, 3, 17}) {
      std::vector<float> x = rng.vec(T * H), w = rng.vec(T * K, 0.1f, 1.0f), out = rng.vec(T * H);
      std::vector<int32_t> ids(T * K);
      for (int64_t t = 0; t < T; ++t) {  // K distinct experts per token
        ids[t * K] = rng.integer(0, E - 1);
        ids[t * K + 1] = (ids[t * K] + rng.integer(1, E - 1)) % E;
      }
      const std::vector<float> out0 = out;
      const Tensor id_t{ids.data(), {T, K}, DType::kI32};
      backend_->moe_experts(view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, nullptr, view(out, {T, H}));
      std::vector<double> ref, mag;
      reference_moe(ex, x, ids, w, K, out0, ref, mag);
      expect_close(out, ref, mag, 1e-5, fmt::format("{} T={}", spec_name(spec), T));

      // Same bits with 1 thread, 3 threads, one token at a time, and in 2-token chunks.
      std::vector<float> o1 = out0, o3 = out0, ot = out0, oc = out0;
      single_->moe_experts(view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, nullptr, view(o1, {T, H}));
      many_->moe_experts(view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, nullptr, view(o3, {T, H}));
      for (int64_t t = 0; t < T; ++t)
        many_->moe_experts(Tensor{x.data() + t * H, {1, H}, DType::kF32},
                           Tensor{ids.data() + t * K, {1, K}, DType::kI32},
                           Tensor{w.data() + t * K, {1, K}, DType::kF32}, ex.mlp, nullptr,
                           Tensor{ot.data() + t * H, {1, H}, DType::kF32});
      ThreadPool pool(2);
      const cpu::CpuContext ctx{&pool, &cpu::kernel_table(GetParam())};
      cpu::moe_experts(ctx, view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, nullptr, view(oc, {T, H}), 2 * K * I);
      EXPECT_EQ(0, std::memcmp(out.data(), o1.data(), out.size() * 4)) << "1 thread, T=" << T;
      EXPECT_EQ(0, std::memcmp(out.data(), o3.data(), out.size() * 4)) << "3 threads, T=" << T;
      EXPECT_EQ(0, std::memcmp(out.data(), ot.data(), out.size() * 4)) << "per token, T=" << T;
      EXPECT_EQ(0, std::memcmp(out.data(), oc.data(), out.size() * 4)) << "2-token chunks, T=" << T;
    }
  }
}

// Shared experts fused into the routed pass: every token takes them with weight 1, added after the routed
// sum, with the same bits as a second call that routes every token to them.
TEST_P(CpuOps, MoeExpertsWithSharedExpertsAddThemLast) {
  Rng rng(15);
  const int64_t E = 5, H = 40, I = 24, Is = 36;
  const int K = 2;
  TestExperts ex = make_experts(rng, E, H, I, {.w_dtype = DType::kBF16});
  TestExperts sh = make_experts(rng, 1, H, Is, {.w_dtype = DType::kBF16, .has_bias = false});
  for (int64_t T : {1, 6}) {
    std::vector<float> x = rng.vec(T * H), w = rng.vec(T * K, 0.1f, 1.0f), out0 = rng.vec(T * H);
    std::vector<int32_t> ids(T * K), ids0(T, 0);
    for (int64_t t = 0; t < T; ++t) {
      ids[t * K] = rng.integer(0, E - 1);
      ids[t * K + 1] = (ids[t * K] + rng.integer(1, E - 1)) % E;
    }
    std::vector<float> ones(T, 1.0f);
    const Tensor id_t{ids.data(), {T, K}, DType::kI32}, id0{ids0.data(), {T, 1}, DType::kI32};
    std::vector<float> fused = out0, two = out0;
    backend_->moe_experts(view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, &sh.mlp[0], view(fused, {T, H}));
    backend_->moe_experts(view(x, {T, H}), id_t, view(w, {T, K}), ex.mlp, nullptr, view(two, {T, H}));
    backend_->moe_experts(view(x, {T, H}), id0, view(ones, {T, 1}), sh.mlp, nullptr, view(two, {T, H}));
    EXPECT_EQ(0, std::memcmp(fused.data(), two.data(), fused.size() * 4)) << "T=" << T;

    std::vector<double> ref1, mag1, ref, mag;
    reference_moe(ex, x, ids, w, K, out0, ref1, mag1);
    const std::vector<float> mid(ref1.begin(), ref1.end());
    reference_moe(sh, x, ids0, ones, 1, mid, ref, mag);
    for (size_t i = 0; i < mag.size(); ++i) mag[i] += mag1[i];
    expect_close(fused, ref, mag, 1e-5, fmt::format("shared T={}", T));
  }
}

// The fused MLP (one pass per weight, silu inside) gives the bits of the composition linear, linear,
// silu_mul, linear, and matches a double reference.
TEST_P(CpuOps, MlpEqualsItsCompositionAndReference) {
  Rng rng(16);
  for (const LinearSpec& spec :
       {LinearSpec{.w_dtype = DType::kBF16, .has_bias = false},
        LinearSpec{.w_dtype = DType::kF8E4M3, .quant = WeightQuant::kFp8Block, .block_out = 16, .block_in = 16}}) {
    const int64_t H = 45, I = 70;
    TestExperts m = make_experts(rng, 1, H, I, spec);
    for (int64_t T : {1, 7}) {
      std::vector<float> x = rng.vec(T * H), fused = rng.vec(T * H), composed(fused.size());
      backend_->mlp(view(x, {T, H}), m.mlp[0], view(fused, {T, H}));
      backend_->Backend::mlp(view(x, {T, H}), m.mlp[0], view(composed, {T, H}));
      EXPECT_EQ(0, std::memcmp(fused.data(), composed.data(), fused.size() * 4)) << spec_name(spec) << " T=" << T;
      std::vector<int32_t> ids(T, 0);
      std::vector<float> ones(T, 1.0f), zeros(T * H, 0.0f);
      std::vector<double> ref, mag;
      reference_moe(m, x, ids, ones, 1, zeros, ref, mag);
      expect_close(fused, ref, mag, 1e-5, fmt::format("mlp {} T={}", spec_name(spec), T));
    }
  }
}

TEST_P(CpuOps, MoeExpertsRejectsUnknownExpert) {
  Rng rng(14);
  TestExperts ex = make_experts(rng, 2, 8, 4, {.w_dtype = DType::kF32});
  std::vector<float> x(8), w = {1.0f}, out(8);
  std::vector<int32_t> ids = {2};
  EXPECT_THROW(backend_->moe_experts(view(x, {1, 8}), Tensor{ids.data(), {1, 1}, DType::kI32},
                                     view(w, {1, 1}), ex.mlp, nullptr, view(out, {1, 8})),
               Error);
}

// ---------------------------------------------------------------------------------------------------------
// Backend surface and probe

TEST(CpuBackend, DefaultBackendUsesBestIsaAndFillZeroClears) {
  auto be = make_cpu_backend(2);
  EXPECT_EQ(be->name(), fmt::format("cpu-{}", cpu::isa_name(cpu::best_isa())));
  EXPECT_EQ(be->device(), Device::host());
  Buffer b = be->alloc(DType::kF32, {3, 5});  // uninitialised
  for (int i = 0; i < 15; ++i) b.ptr<float>()[i] = 1.0f + i;
  be->fill_zero(b.view());
  for (int i = 0; i < 15; ++i) EXPECT_EQ(b.ptr<float>()[i], 0.0f);
  for (WeightQuant q :
       {WeightQuant::kNone, WeightQuant::kFp8Tensor, WeightQuant::kFp8Channel, WeightQuant::kFp8Block})
    EXPECT_TRUE(be->supports(q));
}

// Smoke test only: the probe runs and returns positive finite numbers. It cannot tell a wrong measurement
// from a right one (bandwidth and FLOP/s depend on the machine and its load); bench/ is where the numbers are
// judged.
TEST(CpuProbeSmoke, ReturnsPositiveFiniteCeilings) {
  ThreadPool pool(2);
  const double copy = cpu::measure_copy_bandwidth_gbs(pool, size_t{32} << 20);
  const double read = cpu::measure_read_bandwidth_gbs(pool, size_t{32} << 20);
  const double flops = cpu::measure_peak_gflops(pool);
  for (double v : {copy, read, flops}) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GT(v, 0.1);
  }
}

}  // namespace
}  // namespace tandem::ops
