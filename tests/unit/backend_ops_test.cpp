// Every ops::Backend op on every backend compiled into this build, compared with the CPU backend. ops_cpu_test
// checks the CPU against naive double references, so here the CPU backend IS the reference. The model is
// llama.cpp's test-backend-ops: one table of op cases with their shapes, odd sizes included, each run on every
// backend.
//
// A case drives the backend exactly as model code does: host inputs from a seeded std::mt19937 are uploaded into
// alloc() buffers, weights go through load_linear / load_weight, step metadata through begin_step from an Arena
// on the backend's allocator, KV caches are alloc() + fill_zero, and results come back only through to_host. The
// same case on a CPU backend gives the expected outputs. Outputs are compared bit for bit where the op is exact
// (data movement, embedding, add, the bytes kv_store writes, argmax and router ids), else within a per-element
// bound derived from f32 rounding (see "Tolerances").
//
// Tests:
//   BackendOps.MatchesCpu/<case>_on_<backend>     every case of the table on every compiled backend
//   BackendBatchInvariance.<Op>/<backend>         a row's bits do not depend on the rest of its batch (linear and
//                                                 linear_prefill, each at any T)
//   BackendOpsComparator.*                        the comparator catches a deliberate error in every output
// A backend this machine cannot run (cuda without a GPU) is skipped with backend_available's one-line reason: a
// GPU is hardware, not a CI prerequisite.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "core/dtype.h"
#include "common/random_data.h"
#include "ops/backends.h"

namespace tandem::ops {
namespace {

// ---------------------------------------------------------------------------------------------------------
// Tolerances
//
// A float output passes when |got - ref| <= tol[i] for every element. tol is computed on the host in double from
// the case's inputs, so it is the same whichever backend ran. Each bound is a first-order f32 rounding analysis
// of the op for BOTH evaluations (reference and tested), with u = 2^-24:
//   * A dot product of n terms p_k (linear rows, attention scores) evaluated in any order (sequential, blocked,
//     tree, FMA, fp8 block scales applied to partial sums) errs by at most u per addition times the largest
//     partial sum, plus u per product and scale multiply. With the random-sign data used here the partial sums
//     stay within m = sqrt(sum p_k^2), the L2 norm of the terms, so one side errs by at most 2u (n + 1) m and the
//     two sides differ by at most dot_tol(n, m) = 4u (n + 1) m. Typical errors are ~u sqrt(n) m: the bound admits
//     any reduction order, yet a 1% error, or an activation rounded to bf16 (~2^-9 m), exceeds it.
//   * exp, sigmoid, sin and cos: kTransUlps ulp per evaluation on any backend (libm and the CPU's Cephes exp are
//     within 2 ulp; CUDA's fast intrinsics within 2 + 1.2|x| ulp for the |x| <= 30 used here).
//   * Sums of positive terms (rms_norm's sum of squares, softmax denominators) err by at most u per term
//     relative to the total.
//   * Composite ops (mlp, moe_experts, attention, rope) carry these through first derivatives; see each *_tol.
// Calibration (when this was written): the CPU's scalar kernels against its AVX-512 ones, which sum in other
// orders, used at most 0.21 of a bound (linear with in = 7, where the bound is tightest) and under 0.05 for every
// op but linear; a backend that rounds linear's activations to bf16, or runs rms_norm with eps x 100, rope with
// theta x 1.0001, attention with its scale x 1.001 or moe_route with the scaling x 1.0001, failed every case of
// that op.

constexpr double kU = 0x1p-24;
constexpr double kTransUlps = 64;

double dot_tol(int64_t n, double m) { return 4.0 * kU * static_cast<double>(n + 1) * m; }

/// v as the two-term bf16 split of a prefill GEMM enters it: bf16(v) + bf16(v - bf16(v)), each nearest even.
double bf16_split(float v) {
  const float hi = bf16_to_f32(f32_to_bf16(v));
  return static_cast<double>(hi) + static_cast<double>(bf16_to_f32(f32_to_bf16(v - hi)));
}

// Prefill tolerance. linear_prefill() on a bf16 or fp8 weight may enter each x element into a bf16 GEMM as the
// two-term split x = hi + lo (hi = bf16(x), lo = bf16(x - hi): 16 significant bits) and, for a block-scaled fp8
// weight, each dequantised element (value x scale, an f32 product) as well (ops.h; the CUDA backend's cuBLASLt
// GEMM does). One bf16 keeps 8 significant bits, so a rounding to nearest even errs by at most 2^-8 relative
// (the unit roundoff 2^-p of p = 8 significant bits); the split, by 2^-16. With one term a priori the deviation
// of one output from the f32 dot product is |sum_k p_k (d_k + e_k + d_k e_k)| <= (2^-7 + 2^-16) sum_k |p_k|, i.e.
// up to in x 2^-7 x max|p_k|: 10-20% of |y| at in = 1000, which would let almost anything pass. Statistically
// it is ~0.5 x 2^-8 sqrt(sum p_k^2) (the d_k are unrelated roundings), which bounds nothing with certainty. Both
// roundings are deterministic, though, so the host computes them exactly: the bound is the actual deviation
// |Y - Y^| of the dot product Y^ of the rounded operands from the f32 one Y (both in double), plus the f32
// accumulation error of each side: dot_tol over Y's terms for the reference, and twice dot_tol over Y^'s terms
// for the GEMM (tensor cores may truncate partial sums instead of rounding them), 2% more for the GEMMs of the lo
// terms (2^-8 of the hi terms' magnitude each) and 4 roundings of the epilogue's sum of the terms. Products of
// bf16 values are exact in f32. A backend that rounds otherwise (one bf16 term, fp8 activations, truncation
// instead of nearest even) fails it. The comparator's test injects 2% (kPrefillCatchRel) into prefill outputs.
constexpr double kPrefillCatchRel = 2e-2;

// Tested CPU-side backends run 3 threads, the reference 1, so the CPU's row also checks that the work split does
// not change results.
constexpr int kTestedThreads = 3;

// ---------------------------------------------------------------------------------------------------------
// Host data

using test::HostData;
using test::random_data;
using test::Rng;

/// Host f32 storage of given values.
HostData host_f32(const std::vector<float>& v) {
  HostData d;
  d.bytes.resize(v.size() * 4);
  if (!v.empty()) std::memcpy(d.bytes.data(), v.data(), d.bytes.size());
  d.value.assign(v.begin(), v.end());
  return d;
}

struct WeightKind {
  std::string name;  // as it appears in case names
  DType dtype = DType::kBF16;
  WeightQuant quant = WeightQuant::kNone;
  int block_out = 0, block_in = 0;  // kFp8Block
};

const std::vector<WeightKind>& weight_kinds() {
  static const std::vector<WeightKind> kinds = {
      {"bf16", DType::kBF16},
      {"f16", DType::kF16},
      {"f32", DType::kF32},
      {"fp8tensor", DType::kF8E4M3, WeightQuant::kFp8Tensor},
      {"fp8channel", DType::kF8E4M3, WeightQuant::kFp8Channel},
      {"fp8block128x128", DType::kF8E4M3, WeightQuant::kFp8Block, 128, 128},
      {"fp8block4x8", DType::kF8E4M3, WeightQuant::kFp8Block, 4, 8},
  };
  return kinds;
}

const WeightKind& weight_kind(std::string_view name) {
  for (const WeightKind& k : weight_kinds())
    if (k.name == name) return k;
  throw std::logic_error(fmt::format("no weight kind {}", name));
}

/// A linear layer in host memory, as the loader hands it over (the CPU backends keep reading it in place after
/// load_linear), and its dequantised values for the error bounds. Move-only: lw points into the storage.
struct HostLinear {
  HostData w, scale, bias;
  LinearWeight lw;          // views of w / scale / bias
  int64_t out = 0, in = 0;
  std::vector<double> deq;       // [out, in] dequantised weight
  std::vector<double> deq_bf16;  // [out, in] kFp8Block: each f32 value x scale as its bf16 split; else empty
  std::vector<double> b;         // [out] bias, or empty

  HostLinear() = default;
  HostLinear(HostLinear&&) = default;
  HostLinear& operator=(HostLinear&&) = default;
  HostLinear(const HostLinear&) = delete;
  double at(int64_t o, int64_t i) const { return deq[o * in + i]; }
  /// W[o][i] as a prefill GEMM reads it (see "Prefill tolerance"): the dequantised value, rounded to bf16 when
  /// a block scale made it an arbitrary f32 product (a tensor or channel scale multiplies the f32 result).
  double prefill_at(int64_t o, int64_t i) const { return deq_bf16.empty() ? at(o, i) : deq_bf16[o * in + i]; }
};

HostLinear make_linear(Rng& rng, int64_t out, int64_t in, const WeightKind& k, bool has_bias) {
  HostLinear h;
  h.out = out;
  h.in = in;
  h.w = random_data(rng, out * in, k.dtype);
  h.lw.weight = h.w.tensor({out, in});  // [out, in]
  h.lw.quant = k.quant;
  h.deq = h.w.value;
  if (k.quant != WeightQuant::kNone) {
    int64_t rows = 1, cols = 1;
    Shape shape{1};                                  // kFp8Tensor: [1]
    if (k.quant == WeightQuant::kFp8Channel) {       // [out, 1]
      rows = out;
      shape = {out, 1};
    } else if (k.quant == WeightQuant::kFp8Block) {  // [ceil(out / bo), ceil(in / bi)]
      rows = (out + k.block_out - 1) / k.block_out;
      cols = (in + k.block_in - 1) / k.block_in;
      shape = {rows, cols};
      h.lw.block_out = k.block_out;
      h.lw.block_in = k.block_in;
    }
    h.scale = random_data(rng, rows * cols, DType::kF32, 0.001f, 0.05f);
    h.lw.scale = h.scale.tensor(shape);
    for (int64_t o = 0; o < out; ++o)
      for (int64_t i = 0; i < in; ++i) {
        int64_t si = 0;
        if (k.quant == WeightQuant::kFp8Channel) si = o;
        if (k.quant == WeightQuant::kFp8Block) si = (o / k.block_out) * cols + i / k.block_in;
        h.deq[o * in + i] *= h.scale.value[si];
      }
    if (k.quant == WeightQuant::kFp8Block) {
      h.deq_bf16.resize(h.deq.size());
      for (size_t e = 0; e < h.deq.size(); ++e)  // f32 product (exact inputs, one rounding), then the bf16 split
        h.deq_bf16[e] = bf16_split(static_cast<float>(h.deq[e]));
    }
  }
  if (has_bias) {  // a bf16 bias beside 16-bit weights, as checkpoints store it (load_linear converts it)
    const DType bias_dtype = k.dtype == DType::kBF16 || k.dtype == DType::kF16 ? DType::kBF16 : DType::kF32;
    h.bias = random_data(rng, out, bias_dtype);
    h.lw.bias = h.bias.tensor({out});  // [out]
    h.b = h.bias.value;
  }
  return h;
}

/// y = x @ W^T + b for one row in double, and its bound (dot_tol over in products and the bias).
void linear_row(const HostLinear& h, const float* x, double* y, double* tol) {
  for (int64_t o = 0; o < h.out; ++o) {
    double s = h.b.empty() ? 0.0 : h.b[o], m2 = s * s;
    for (int64_t i = 0; i < h.in; ++i) {
      const double p = static_cast<double>(x[i]) * h.at(o, i);
      s += p;
      m2 += p * p;
    }
    if (y) y[o] = s;
    tol[o] = dot_tol(h.in, std::sqrt(m2));
  }
}

std::vector<double> linear_tol(const HostLinear& h, const std::vector<float>& x, int64_t T) {
  std::vector<double> tol(static_cast<size_t>(T * h.out));
  for (int64_t t = 0; t < T; ++t) linear_row(h, x.data() + t * h.in, nullptr, tol.data() + t * h.out);
  return tol;
}

/// Whether linear_prefill() of this weight kind may round to bf16 (ops.h).
bool prefill_rounds(const WeightKind& k) { return k.dtype == DType::kBF16 || k.dtype == DType::kF8E4M3; }

/// The prefill bound (see "Prefill tolerance") of y [T, out] = x [T, in] @ W^T + b.
std::vector<double> linear_prefill_tol(const HostLinear& h, const std::vector<float>& x, int64_t T) {
  std::vector<double> tol(static_cast<size_t>(T * h.out)), xr(static_cast<size_t>(h.in));
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x.data() + t * h.in;
    for (int64_t i = 0; i < h.in; ++i) xr[i] = bf16_split(xt[i]);
    for (int64_t o = 0; o < h.out; ++o) {
      const double b = h.b.empty() ? 0.0 : h.b[o];
      double y = b, yr = b, m2 = b * b, mr2 = b * b;
      for (int64_t i = 0; i < h.in; ++i) {
        const double p = static_cast<double>(xt[i]) * h.at(o, i), pr = xr[i] * h.prefill_at(o, i);
        y += p;
        yr += pr;
        m2 += p * p;
        mr2 += pr * pr;
      }
      tol[t * h.out + o] = std::abs(y - yr) + dot_tol(h.in, std::sqrt(m2)) + 2.04 * dot_tol(h.in, std::sqrt(mr2)) +
                           4.0 * kU * std::abs(yr);
    }
  }
  return tol;
}

/// One SwiGLU MLP in host memory: gate, up [I, H]; down [H, I]; no biases (as in the models).
struct HostMlp {
  HostLinear gate, up, down;
  int64_t H() const { return gate.in; }
  int64_t I() const { return gate.out; }
};

HostMlp make_mlp(Rng& rng, int64_t H, int64_t I, const WeightKind& k) {
  HostMlp m;
  m.gate = make_linear(rng, I, H, k, false);
  m.up = make_linear(rng, I, H, k, false);
  m.down = make_linear(rng, H, I, k, false);
  return m;
}

/// y = down(silu(gate x) * up x) for one row x [H], in double, and its bound tol [H]: gate and up each err by
/// dot_tol(H, .), which h = silu(g) * u carries through its derivative, plus kTransUlps for silu and 2u for its
/// multiply on each side; down adds its own dot_tol(I, .) and carries the h errors through |W_down|.
void mlp_row(const HostMlp& m, const float* x, double* y, double* tol) {
  const int64_t H = m.H(), I = m.I();
  std::vector<double> h(static_cast<size_t>(I)), dh(static_cast<size_t>(I));
  for (int64_t i = 0; i < I; ++i) {
    double g = 0, u = 0, mg = 0, mu = 0;
    for (int64_t j = 0; j < H; ++j) {
      const double pg = static_cast<double>(x[j]) * m.gate.at(i, j), pu = static_cast<double>(x[j]) * m.up.at(i, j);
      g += pg;
      u += pu;
      mg += pg * pg;
      mu += pu * pu;
    }
    const double sig = 1.0 / (1.0 + std::exp(-g)), silu = g * sig, dsilu = sig * (1.0 + g * (1.0 - sig));
    h[i] = silu * u;
    dh[i] = std::abs(dsilu * u) * dot_tol(H, std::sqrt(mg)) + std::abs(silu) * dot_tol(H, std::sqrt(mu)) +
            2.0 * (kTransUlps + 2.0) * kU * std::abs(h[i]);
  }
  for (int64_t o = 0; o < H; ++o) {
    double s = 0, md = 0, carried = 0;
    for (int64_t i = 0; i < I; ++i) {
      const double p = h[i] * m.down.at(o, i);
      s += p;
      md += p * p;
      carried += std::abs(m.down.at(o, i)) * dh[i];
    }
    y[o] = s;
    tol[o] = dot_tol(I, std::sqrt(md)) + carried;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The backend under test, as a case drives it

/// The backend and everything a case keeps on it (buffers, loaded weights, step arenas) until the case ends.
/// Every tensor an op sees comes from here; host code reads results only through download().
class Dev {
 public:
  explicit Dev(Backend& backend) : be(backend) {}
  Backend& be;

  /// An uninitialised buffer.
  Tensor alloc(DType dtype, Shape shape) {
    bufs_.push_back(be.alloc(dtype, shape));
    return bufs_.back().view();
  }
  Tensor zeros(DType dtype, Shape shape) {
    const Tensor t = alloc(dtype, shape);
    be.fill_zero(t);
    return t;
  }
  Tensor upload(const void* host, DType dtype, Shape shape) {
    const Tensor t = alloc(dtype, shape);
    be.upload(host, t);
    return t;
  }
  Tensor f32(const std::vector<float>& v, Shape s) {
    EXPECT_EQ(static_cast<size_t>(s.numel()), v.size());
    return upload(v.data(), DType::kF32, s);
  }
  Tensor i32(const std::vector<int32_t>& v, Shape s) {
    EXPECT_EQ(static_cast<size_t>(s.numel()), v.size());
    return upload(v.data(), DType::kI32, s);
  }
  /// A plain weight (norm weight, embedding table, router bias) prepared as at model load.
  Tensor weight(const HostData& d, Shape s) {
    Tensor t = d.tensor(s);
    be.load_weight(t, bufs_);
    return t;
  }
  /// A linear layer prepared as at model load (the host storage must outlive the case).
  LinearWeight linear(const HostLinear& h) {
    LinearWeight w = h.lw;
    be.load_linear(w, bufs_);
    return w;
  }
  MlpWeights mlp(const HostMlp& m) { return {linear(m.gate), linear(m.up), linear(m.down)}; }
  /// A step arena on the backend's allocator, kept until the case ends.
  Arena& arena() {
    arenas_.push_back(std::make_unique<Arena>(be.allocator()));
    return *arenas_.back();
  }
  template <typename T>
  std::vector<T> download(const Tensor& t) {
    std::vector<T> v(t.nbytes() / sizeof(T));
    be.to_host(t, v.data());
    return v;
  }

 private:
  std::vector<Buffer> bufs_;
  std::vector<std::unique_ptr<Arena>> arenas_;
};

// ---------------------------------------------------------------------------------------------------------
// Outputs and the comparator

/// One output of a case, read back with to_host.
struct Out {
  std::string name;
  DType dtype = DType::kF32;  // of the elements in bytes
  std::vector<uint8_t> bytes;
  std::vector<double> tol;    // f32 outputs: bound on |got - ref| per element; empty: bit for bit
  double catch_rel = 1e-2;    // an error of this fraction of the output's RMS must fail the comparison
  bool exact() const { return tol.empty(); }
};
using Outputs = std::vector<Out>;

Out exact_out(Dev& d, std::string name, const Tensor& t) {
  Out o{.name = std::move(name), .dtype = t.dtype, .bytes = std::vector<uint8_t>(t.nbytes())};
  d.be.to_host(t, o.bytes.data());
  return o;
}

Out close_out(Dev& d, std::string name, const Tensor& t, std::vector<double> tol) {
  EXPECT_EQ(t.dtype, DType::kF32) << name;
  EXPECT_EQ(tol.size(), static_cast<size_t>(t.numel())) << name;
  Out o = exact_out(d, std::move(name), t);
  o.tol = std::move(tol);
  return o;
}

/// The output y [T, out] for x [T, in] of linear() (the f32 bound) or of linear_prefill() (`prefill`: the prefill
/// bound for a weight kind that may round there, see "Prefill tolerance").
Out linear_out(Dev& d, std::string name, const Tensor& y, const HostLinear& h, const WeightKind& k,
               const std::vector<float>& x, int64_t T, bool prefill_path) {
  const bool prefill = prefill_path && prefill_rounds(k);
  Out o = close_out(d, std::move(name), y, prefill ? linear_prefill_tol(h, x, T) : linear_tol(h, x, T));
  if (prefill) o.catch_rel = kPrefillCatchRel;
  return o;
}

float f32_at(const Out& o, size_t i) {
  float f;
  std::memcpy(&f, &o.bytes[i * 4], 4);
  return f;
}

std::string element_str(const Out& o, size_t i) {
  const uint8_t* p = &o.bytes[i * dtype_size(o.dtype)];
  switch (o.dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return fmt::format("{:.9g}", f);
    }
    case DType::kI32: {
      int32_t v;
      std::memcpy(&v, p, 4);
      return fmt::format("{}", v);
    }
    case DType::kBF16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return fmt::format("0x{:04x} ({:.6g})", v, bf16_to_f32(v));
    }
    case DType::kF8E4M3:
      return fmt::format("0x{:02x} ({:.6g})", *p, f8e4m3_to_f32(*p));
    default:
      return fmt::format("0x{:02x}..", *p);
  }
}

/// Empty when got matches ref (the same outputs, each bit for bit or within its bound); else what differs, at
/// most 5 elements per output.
std::string compare(const Outputs& ref, const Outputs& got) {
  if (ref.size() != got.size()) return fmt::format("{} outputs, the CPU gives {}\n", got.size(), ref.size());
  std::string msg;
  for (size_t k = 0; k < ref.size(); ++k) {
    const Out &r = ref[k], &g = got[k];
    if (r.name != g.name || r.dtype != g.dtype || r.bytes.size() != g.bytes.size()) {
      msg += fmt::format("output {}: {} ({} bytes) vs the CPU's {} ({} bytes)\n", k, g.name, g.bytes.size(), r.name,
                         r.bytes.size());
      continue;
    }
    const size_t n = r.bytes.size() / dtype_size(r.dtype), es = dtype_size(r.dtype);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) {
      bool ok;
      std::string extra;
      if (r.exact()) {
        ok = std::memcmp(&r.bytes[i * es], &g.bytes[i * es], es) == 0;
      } else {
        const double a = f32_at(g, i), b = f32_at(r, i), diff = std::abs(a - b);
        ok = diff <= r.tol[i];  // false for NaN
        extra = fmt::format(", |diff| {:.3g} > tol {:.3g}", diff, r.tol[i]);
      }
      if (!ok && ++bad <= 5)
        msg += fmt::format("{}: element {} is {}, the CPU gives {}{}\n", r.name, i, element_str(g, i),
                           element_str(r, i), extra);
    }
    if (bad > 5) msg += fmt::format("{}: {} of {} elements differ\n", r.name, bad, n);
  }
  return msg;
}

// ---------------------------------------------------------------------------------------------------------
// The case table

struct Case {
  std::string name;                      // [A-Za-z0-9_], unique
  std::function<Outputs(Backend&)> run;  // runs the op(s) on the backend from inputs seeded by `name`
};

// linear() keeps f32 activations at every T; linear_prefill() may round to bf16 at every T (linear_prefill_case).
const int64_t kLinearTokens[] = {1, 2, 3, 5, 8, 13, 17, 64};
const int64_t kLinearPrefillTokens[] = {1, 5, 17, 64, 200};

// linear: y [T, out] = x [T, in] @ W^T (+ b), for every T of kLinearTokens.
Case linear_case(const WeightKind& k, int64_t in, int64_t out, bool bias) {
  const std::string name = fmt::format("linear_{}_{}x{}{}", k.name, in, out, bias ? "_bias" : "");
  return {name, [=](Backend& be) {
            Rng rng(name);
            const HostLinear h = make_linear(rng, out, in, k, bias);
            Dev d(be);
            const LinearWeight w = d.linear(h);
            Outputs outs;
            for (int64_t T : kLinearTokens) {
              const std::vector<float> x = rng.vec(T * in);
              const Tensor y = d.alloc(DType::kF32, {T, out});  // [T, out]
              be.linear(d.f32(x, {T, in}), w, y);
              outs.push_back(close_out(d, fmt::format("y T={}", T), y, linear_tol(h, x, T)));
            }
            return outs;
          }};
}

// linear_prefill (kLinearPrefillTokens): bf16 and fp8 weights within the prefill bound (the CUDA backend's
// cuBLASLt GEMM, at any T), f16 and f32 weights within the f32 one (the CUDA backend keeps its GEMV for them).
// Shapes cover the CUDA path's variants: `in` a multiple of 8 (a bf16 weight read in place) or not (copied into
// zero-padded rows, as x always is), and outputs whose rows are 4, 8 or 32-byte multiples (cuBLASLt's alignment
// preferences for y).
Case linear_prefill_case(const WeightKind& k, int64_t in, int64_t out, bool bias) {
  const std::string name = fmt::format("linear_prefill_{}_{}x{}{}", k.name, in, out, bias ? "_bias" : "");
  return {name, [=](Backend& be) {
            Rng rng(name);
            const HostLinear h = make_linear(rng, out, in, k, bias);
            Dev d(be);
            const LinearWeight w = d.linear(h);
            Outputs outs;
            for (int64_t T : kLinearPrefillTokens) {
              const std::vector<float> x = rng.vec(T * in);
              const Tensor y = d.alloc(DType::kF32, {T, out});  // [T, out]
              be.linear_prefill(d.f32(x, {T, in}), w, y);
              outs.push_back(linear_out(d, fmt::format("y T={}", T), y, h, k, x, T, true));
            }
            return outs;
          }};
}

// linears: several projections of one x [T, in] in one pass (q/k/v, gate/up); each ys[i] [T, outs[i]].
Case linears_case(const WeightKind& k, int64_t in, std::vector<int64_t> outs_sizes, bool bias) {
  std::string name = fmt::format("linears_{}_{}", k.name, in);
  for (int64_t o : outs_sizes) name += fmt::format("_{}", o);
  if (bias) name += "_bias";
  return {name, [=](Backend& be) {
            Rng rng(name);
            Dev d(be);
            std::vector<HostLinear> hs;
            std::vector<LinearWeight> ws;
            for (int64_t o : outs_sizes) hs.push_back(make_linear(rng, o, in, k, bias));
            for (const HostLinear& h : hs) ws.push_back(d.linear(h));
            std::vector<const LinearWeight*> ptrs;
            for (const LinearWeight& w : ws) ptrs.push_back(&w);
            Outputs outs;
            for (int64_t T : {1, 3, 17}) {
              const std::vector<float> x = rng.vec(T * in);  // [T, in]
              std::vector<Tensor> ys, ps;
              for (int64_t o : outs_sizes) ys.push_back(d.alloc(DType::kF32, {T, o}));  // [T, o]
              for (int64_t o : outs_sizes) ps.push_back(d.alloc(DType::kF32, {T, o}));  // [T, o]
              be.linears(d.f32(x, {T, in}), ptrs, ys);
              be.linears_prefill(d.f32(x, {T, in}), ptrs, ps);
              for (size_t i = 0; i < hs.size(); ++i) {
                outs.push_back(linear_out(d, fmt::format("ys[{}] T={}", i, T), ys[i], hs[i], k, x, T, false));
                outs.push_back(linear_out(d, fmt::format("prefill ys[{}] T={}", i, T), ps[i], hs[i], k, x, T, true));
              }
            }
            return outs;
          }};
}

// mlp: out [T, H] = down(silu(gate x) * up x), x [T, H].
Case mlp_case(const WeightKind& k, int64_t H, int64_t I) {
  const std::string name = fmt::format("mlp_{}_H{}_I{}", k.name, H, I);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const HostMlp m = make_mlp(rng, H, I, k);
            Dev d(be);
            const MlpWeights w = d.mlp(m);
            Outputs outs;
            for (int64_t T : {1, 3, 17}) {
              const std::vector<float> x = rng.vec(T * H);
              const Tensor out = d.alloc(DType::kF32, {T, H});  // [T, H]
              be.mlp(d.f32(x, {T, H}), w, out);
              std::vector<double> y(static_cast<size_t>(H)), tol(static_cast<size_t>(T * H));
              for (int64_t t = 0; t < T; ++t) mlp_row(m, x.data() + t * H, y.data(), tol.data() + t * H);
              outs.push_back(close_out(d, fmt::format("out T={}", T), out, std::move(tol)));
            }
            return outs;
          }};
}

// moe_experts: out [T, H] += sum_k w[t, k] * expert[ids[t, k]](x[t]) (+ shared(x[t])), E = 8 experts.
// Bound: each expert's mlp_row bound scaled by |w|, plus u per accumulation (K + 2 terms) of the magnitudes on
// each side.
Case moe_experts_case(const WeightKind& k, int64_t H, int64_t I, int K, bool with_shared) {
  const int E = 8;
  const int64_t I_shared = I + 24;
  const std::string name = fmt::format("moe_experts_{}_H{}_I{}_E{}_K{}{}", k.name, H, I, E, K, with_shared ? "_shared" : "");
  return {name, [=](Backend& be) {
            Rng rng(name);
            std::vector<HostMlp> experts;
            for (int e = 0; e < E; ++e) experts.push_back(make_mlp(rng, H, I, k));
            const HostMlp shared_mlp = make_mlp(rng, H, I_shared, k);
            Dev d(be);
            std::vector<MlpWeights> ew;
            for (const HostMlp& m : experts) ew.push_back(d.mlp(m));
            const MlpWeights sw = d.mlp(shared_mlp);
            Outputs outs;
            for (int64_t T : {1, 3, 9}) {
              const std::vector<float> x = rng.vec(T * H), out0 = rng.vec(T * H), w = rng.vec(T * K, 0.1f, 1.0f);
              std::vector<int32_t> ids;  // [T, K], K distinct experts per token
              for (int64_t t = 0; t < T; ++t)
                for (int32_t e : rng.distinct(K, E)) ids.push_back(e);
              const Tensor out = d.f32(out0, {T, H});  // [T, H], accumulated into
              be.moe_experts(d.f32(x, {T, H}), d.i32(ids, {T, K}), d.f32(w, {T, K}), ew, with_shared ? &sw : nullptr,
                             out);
              std::vector<double> tol(static_cast<size_t>(T * H)), y(static_cast<size_t>(H)), ty(y.size());
              for (int64_t t = 0; t < T; ++t) {
                std::vector<double> mag(static_cast<size_t>(H));
                for (int64_t o = 0; o < H; ++o) mag[o] = std::abs(out0[t * H + o]);
                for (int j = 0; j < K; ++j) {
                  const double wk = w[t * K + j];
                  mlp_row(experts[ids[t * K + j]], x.data() + t * H, y.data(), ty.data());
                  for (int64_t o = 0; o < H; ++o) {
                    tol[t * H + o] += std::abs(wk) * ty[o];
                    mag[o] += std::abs(wk * y[o]);
                  }
                }
                if (with_shared) {
                  mlp_row(shared_mlp, x.data() + t * H, y.data(), ty.data());
                  for (int64_t o = 0; o < H; ++o) {
                    tol[t * H + o] += ty[o];
                    mag[o] += std::abs(y[o]);
                  }
                }
                for (int64_t o = 0; o < H; ++o) tol[t * H + o] += 4.0 * kU * (K + 2) * mag[o];
              }
              outs.push_back(close_out(d, fmt::format("out T={}", T), out, std::move(tol)));
            }
            return outs;
          }};
}

// embedding: out [n, H] = table [V, H] rows as f32. Exact.
Case embedding_case(DType dtype, int64_t V, int64_t H) {
  const std::string name = fmt::format("embedding_{}_V{}_H{}", dtype_name(dtype), V, H);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const HostData table = random_data(rng, V * H, dtype, -2.0f, 2.0f);
            Dev d(be);
            const Tensor t = d.weight(table, {V, H});  // [V, H]
            std::vector<int32_t> ids = {0, static_cast<int32_t>(V - 1), 3, 3};
            for (int i = 0; i < 7; ++i) ids.push_back(rng.integer(0, static_cast<int>(V - 1)));
            const int64_t n = static_cast<int64_t>(ids.size());
            const Tensor out = d.alloc(DType::kF32, {n, H});  // [n, H]
            be.embedding(d.i32(ids, {n}), t, out);
            return Outputs{exact_out(d, "out", out)};
          }};
}

// rms_norm: out [R, D] = x / sqrt(mean(x^2) + eps) * (unit_offset ? 1 + w : w), out of place and in place.
// Bound: the positive sum of squares errs by <= 2D u relative, so 1/sqrt(.) by <= (D + 4) u; two multiplies and
// the f32 1 + w (u (1 + |w|) absolute) follow; twice for two sides.
Case rms_norm_case(int64_t R, int64_t D, bool unit_offset, DType wdtype) {
  const std::string name = fmt::format("rms_norm_R{}_D{}_{}{}", R, D, dtype_name(wdtype), unit_offset ? "_offset" : "");
  return {name, [=](Backend& be) {
            Rng rng(name);
            const float eps = 1e-6f;
            const std::vector<float> x = rng.vec(R * D, -3.0f, 3.0f);                   // [R, D]
            const HostData w = random_data(rng, D, wdtype, -0.5f, 1.5f);                // [D]
            std::vector<double> tol(x.size());
            for (int64_t r = 0; r < R; ++r) {
              double ss = 0;
              for (int64_t i = 0; i < D; ++i) ss += static_cast<double>(x[r * D + i]) * x[r * D + i];
              const double inv = 1.0 / std::sqrt(ss / static_cast<double>(D) + eps);
              for (int64_t i = 0; i < D; ++i) {
                const double xn = x[r * D + i] * inv, wi = w.value[i], y = xn * (unit_offset ? 1.0 + wi : wi);
                tol[r * D + i] = 2.0 * kU * ((D + 8) * std::abs(y) + std::abs(xn) * (1.0 + std::abs(wi)));
              }
            }
            Dev d(be);
            const Tensor wt = d.weight(w, {D});
            const Tensor out = d.alloc(DType::kF32, {R, D});
            be.rms_norm(d.f32(x, {R, D}), wt, eps, unit_offset, out);
            const Tensor inplace = d.f32(x, {R, D});
            be.rms_norm(inplace, wt, eps, unit_offset, inplace);
            return Outputs{close_out(d, "out", out, tol), close_out(d, "in place", inplace, tol)};
          }};
}

// rope_neox: in place on x [T, heads, D], positions [T] out of order and far apart.
// Bound: angle = pos * inv_freq (inv_freq <= 1) errs by u pos for its rounding plus 2u pos when a backend's
// inv_freq = theta^(-2j/rot) is a couple of ulp off the other's; sin / cos add kTransUlps. A pair of norm r moves
// by at most r times the angle error, on each side. Dims past rot_dim must stay untouched: bound 0.
Case rope_case(int64_t heads, int64_t D, int rot, float theta) {
  const std::string name = fmt::format("rope_neox_H{}_D{}_rot{}_theta{}", heads, D, rot, static_cast<int64_t>(theta));
  return {name, [=](Backend& be) {
            Rng rng(name);
            const std::vector<int32_t> pos = {0, 5, 1, 4099, 17, 2, 8191, 300, 31};  // [T]
            const int64_t T = static_cast<int64_t>(pos.size()), half = rot / 2;
            const std::vector<float> x = rng.vec(T * heads * D, -2.0f, 2.0f);      // [T, heads, D]
            std::vector<double> tol(x.size(), 0.0);
            for (int64_t t = 0; t < T; ++t)
              for (int64_t h = 0; h < heads; ++h)
                for (int64_t j = 0; j < half; ++j) {
                  const float* v = x.data() + (t * heads + h) * D;
                  const double r = std::hypot(static_cast<double>(v[j]), static_cast<double>(v[j + half]));
                  const double b = 2.0 * kU * r * (3.0 * pos[t] + kTransUlps);
                  tol[(t * heads + h) * D + j] = tol[(t * heads + h) * D + j + half] = b;
                }
            Dev d(be);
            const Tensor xt = d.f32(x, {T, heads, D});
            be.rope_neox(xt, d.i32(pos, {T}), rot, theta);
            return Outputs{close_out(d, "x", xt, std::move(tol))};
          }};
}

// silu_mul: out [T, I] = silu(gate) * up, out of place and in place (out = gate). Bound: kTransUlps for silu and
// 2u for the multiplies, relative, on each side.
Case silu_mul_case(int64_t T, int64_t I) {
  const std::string name = fmt::format("silu_mul_{}x{}", T, I);
  return {name, [=](Backend& be) {
            Rng rng(name);
            std::vector<float> g = rng.vec(T * I, -30.0f, 30.0f);  // [T, I]
            g[0] = 0.0f;
            if (g.size() > 2) {  // exp(88) is near f32's top; silu(-88) ~ -5e-37
              g[1] = -88.0f;
              g[2] = 88.0f;
            }
            const std::vector<float> u = rng.vec(T * I);            // [T, I]
            std::vector<double> tol(g.size());
            for (size_t i = 0; i < g.size(); ++i) {
              const double s = g[i] / (1.0 + std::exp(-static_cast<double>(g[i])));
              tol[i] = 2.0 * (kTransUlps + 4.0) * kU * std::abs(s * u[i]);
            }
            Dev d(be);
            const Tensor gt = d.f32(g, {T, I}), ut = d.f32(u, {T, I}), out = d.alloc(DType::kF32, {T, I});
            be.silu_mul(gt, ut, out);
            Outputs outs{close_out(d, "out", out, tol)};
            be.silu_mul(gt, ut, gt);
            outs.push_back(close_out(d, "in place", gt, tol));
            return outs;
          }};
}

// add: out = a + b (f32 addition is correctly rounded everywhere: exact), out of place and aliasing a and b.
Case add_case(int64_t R, int64_t n) {
  const std::string name = fmt::format("add_{}x{}", R, n);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const std::vector<float> a = rng.vec(R * n, -100.0f, 100.0f), b = rng.vec(R * n);  // [R, n]
            Dev d(be);
            const Tensor at = d.f32(a, {R, n}), bt = d.f32(b, {R, n}), out = d.alloc(DType::kF32, {R, n});
            be.add(at, bt, out);
            Outputs outs{exact_out(d, "out", out)};
            const Tensor a2 = d.f32(a, {R, n}), b2 = d.f32(b, {R, n});
            be.add(a2, bt, a2);
            be.add(at, b2, b2);
            outs.push_back(exact_out(d, "out = a", a2));
            outs.push_back(exact_out(d, "out = b", b2));
            return outs;
          }};
}

// mul_sigmoid: out [R, n] = x * sigmoid(gate), gate [R, n] or [R, 1]. Bound as silu_mul.
Case mul_sigmoid_case(int64_t R, int64_t n, bool row_gate) {
  const std::string name = fmt::format("mul_sigmoid_{}x{}{}", R, n, row_gate ? "_rowgate" : "");
  return {name, [=](Backend& be) {
            Rng rng(name);
            const int64_t gn = row_gate ? 1 : n;
            const std::vector<float> x = rng.vec(R * n, -3.0f, 3.0f), g = rng.vec(R * gn, -12.0f, 12.0f);
            std::vector<double> tol(x.size());
            for (int64_t r = 0; r < R; ++r)
              for (int64_t j = 0; j < n; ++j) {
                const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(g[r * gn + (row_gate ? 0 : j)])));
                tol[r * n + j] = 2.0 * (kTransUlps + 4.0) * kU * std::abs(x[r * n + j] * s);
              }
            Dev d(be);
            const Tensor out = d.alloc(DType::kF32, {R, n});  // [R, n]
            be.mul_sigmoid(d.f32(x, {R, n}), d.f32(g, {R, gn}), out);
            return Outputs{close_out(d, "out", out, std::move(tol))};
          }};
}

// copy_cols: dst [R, b] (prefilled) cols [dst_col, +n) = src [R, a] cols [src_col, +n). Exact, whole dst.
Case copy_cols_case(int64_t R, int64_t a, int64_t b, int64_t src_col, int64_t dst_col, int64_t n) {
  const std::string name = fmt::format("copy_cols_R{}_{}to{}_src{}_dst{}_n{}", R, a, b, src_col, dst_col, n);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const std::vector<float> src = rng.vec(R * a), dst0 = rng.vec(R * b);
            Dev d(be);
            const Tensor dst = d.f32(dst0, {R, b});
            be.copy_cols(d.f32(src, {R, a}), src_col, dst, dst_col, n);
            return Outputs{exact_out(d, "dst", dst)};
          }};
}

// gather_rows: dst [n, m] = src [T, m] rows, f32 or i32. Exact.
Case gather_rows_case(DType dtype, int64_t T, int64_t m, std::vector<int32_t> rows) {
  const std::string name = fmt::format("gather_rows_{}_{}x{}_n{}", dtype_name(dtype), T, m, rows.size());
  return {name, [=](Backend& be) {
            Rng rng(name);
            std::vector<uint32_t> src(static_cast<size_t>(T * m));  // [T, m] f32 or i32 bits
            for (uint32_t& v : src)
              v = dtype == DType::kF32 ? std::bit_cast<uint32_t>(rng.uniform(-5.0f, 5.0f)) : static_cast<uint32_t>(rng.gen());
            const int64_t n = static_cast<int64_t>(rows.size());
            Dev d(be);
            const Tensor dst = d.alloc(dtype, {n, m});  // [n, m]
            be.gather_rows(d.upload(src.data(), dtype, {T, m}), d.i32(rows, {n}), dst);
            return Outputs{exact_out(d, "dst", dst)};
          }};
}

// copy_rows: dst [S, m] rows dst_rows[i] = src [T, m] rows src_rows[i], f32 or i32; the other dst rows keep their
// values. Exact.
Case copy_rows_case(DType dtype, int64_t T, int64_t S, int64_t m, std::vector<int32_t> src_rows,
                    std::vector<int32_t> dst_rows) {
  const std::string name = fmt::format("copy_rows_{}_{}to{}x{}_n{}", dtype_name(dtype), T, S, m, src_rows.size());
  return {name, [=](Backend& be) {
            Rng rng(name);
            std::vector<uint32_t> src(static_cast<size_t>(T * m)), dst0(static_cast<size_t>(S * m));  // f32/i32 bits
            for (auto* v : {&src, &dst0})
              for (uint32_t& x : *v)
                x = dtype == DType::kF32 ? std::bit_cast<uint32_t>(rng.uniform(-5.0f, 5.0f))
                                         : static_cast<uint32_t>(rng.gen());
            const int64_t n = static_cast<int64_t>(src_rows.size());
            Dev d(be);
            const Tensor dst = d.upload(dst0.data(), dtype, {S, m});  // [S, m]
            be.copy_rows(d.upload(src.data(), dtype, {T, m}), d.i32(src_rows, {n}), dst, d.i32(dst_rows, {n}));
            return Outputs{exact_out(d, "dst", dst)};
          }};
}

// argmax_rows: ids [R] of logits [R, V], lowest index on ties. Exact. Rows: random; the max twice; all equal;
// the max last; -inf entries around a negative max; the max first.
Case argmax_case(int64_t V) {
  const std::string name = fmt::format("argmax_rows_V{}", V);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const int64_t R = 6;
            std::vector<float> l = rng.vec(R * V, -10.0f, 10.0f);  // [R, V]
            float* row = l.data();
            row += V;  // row 1: the max at V/3 and at V - 1
            row[V / 3] = row[V - 1] = 50.0f;
            row += V;  // row 2: all equal
            std::fill(row, row + V, 0.25f);
            row += V;  // row 3: the max last
            row[V - 1] = 11.0f;
            row += V;  // row 4: -inf everywhere but a few negative values
            std::fill(row, row + V, -std::numeric_limits<float>::infinity());
            row[V / 2] = -3.0f;
            row[V - 1] = -7.0f;
            row += V;  // row 5: the max first, tied further on
            row[0] = row[V / 2] = 12.0f;
            Dev d(be);
            const Tensor ids = d.alloc(DType::kI32, {R});
            be.argmax_rows(d.f32(l, {R, V}), ids);
            return Outputs{exact_out(d, "ids", ids)};
          }};
}

// ---------------------------------------------------------------------------------------------------------
// moe_route

struct RouteSpec {
  std::string name;
  int E = 8;
  MoeRouting r;
  bool bias = false;
  bool ties = false;  // rows with exactly tied logits (and a zero bias): lowest index wins everywhere
};

/// Whether every decision moe_route makes on this row is decided by more than rounding: the K + 1 best choice
/// scores after group masking, and the topk_group + 1 best group scores, either tie exactly (equal inputs) or
/// differ by more than 1e-4 relative (a backend's score errs by < 2e-5 relative: see moe_route_case).
bool well_separated(const float* l, const std::vector<float>& bias, const RouteSpec& s) {
  const int E = s.E, K = s.r.top_k, ng = std::max(s.r.n_group, 1);
  std::vector<double> p(E), choice(E);
  if (s.r.scoring == MoeScoring::kSigmoid) {
    for (int e = 0; e < E; ++e) p[e] = 1.0 / (1.0 + std::exp(-static_cast<double>(l[e])));
  } else {
    const double mx = *std::max_element(l, l + E);
    double total = 0;
    for (int e = 0; e < E; ++e) total += p[e] = std::exp(l[e] - mx);
    for (double& v : p) v /= total;
  }
  for (int e = 0; e < E; ++e) choice[e] = p[e] + (bias.empty() ? 0.0 : bias[e]);
  auto separated = [](std::vector<double> v, int n) {
    std::sort(v.rbegin(), v.rend());
    for (int i = 0; i + 1 < std::min<int>(n + 1, static_cast<int>(v.size())); ++i)
      if (v[i] != v[i + 1] && v[i] - v[i + 1] < 1e-4 * std::max(std::abs(v[i]), 1e-2)) return false;
    return true;
  };
  if (ng > 1) {
    const int gs = E / ng;
    std::vector<double> gscore(ng);
    for (int g = 0; g < ng; ++g) {
      std::vector<double> m(choice.begin() + g * gs, choice.begin() + (g + 1) * gs);
      std::sort(m.rbegin(), m.rend());
      gscore[g] = m[0] + m[1];
    }
    if (!separated(gscore, s.r.topk_group)) return false;
    std::vector<int> order(ng);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return gscore[a] > gscore[b]; });
    std::vector<bool> keep(ng, false);
    for (int i = 0; i < s.r.topk_group; ++i) keep[order[i]] = true;
    for (int e = 0; e < E; ++e)
      if (!keep[e / gs]) choice[e] = 0.0;
  }
  return separated(choice, K);
}

// moe_route: logits [T, E] -> ids [T, K] (exact), weights [T, K]. Bound on the weights, relative, each side:
// kTransUlps for the exp, u per term of the sums (K for the norm, E more for a softmax denominator), 6 more for
// divisions and the scaling.
Case moe_route_case(const RouteSpec& s) {
  const std::string name = "moe_route_" + s.name;
  return {name, [=](Backend& be) {
            Rng rng(name);
            const int E = s.E, K = s.r.top_k;
            const int64_t T = 13;
            std::vector<float> bias;  // [E]
            if (s.bias) bias = s.ties ? std::vector<float>(E, 0.0f) : rng.vec(E, -0.3f, 0.3f);
            std::vector<float> l(static_cast<size_t>(T * E));  // [T, E]
            for (int64_t t = 0; t < T; ++t) {
              float* row = l.data() + t * E;
              int tries = 0;
              do {
                for (int e = 0; e < E; ++e) row[e] = rng.uniform(-4.0f, 4.0f);
                if (s.ties && t == 0) std::fill(row, row + E, 0.5f);     // everything tied
                if (s.ties && t % 2 == 1)                                 // pairs tied
                  for (int e = 1; e < E; e += 2) row[e] = row[e - 1];
                if (s.ties && t % 4 == 2)                                 // one value everywhere but one expert
                  for (int e = 1; e < E; ++e) row[e] = row[0];
                if (++tries > 1000) throw std::logic_error("moe_route_case: no well separated row");
              } while (!well_separated(row, bias, s));
            }
            const double rel = 2.0 * kU *
                               (kTransUlps + K + 6 + (s.r.scoring == MoeScoring::kSoftmax ? E : 0));
            const HostData bias_data = host_f32(bias);  // [E]; outlives the case (the CPU reads it in place)
            Dev d(be);
            const Tensor b = s.bias ? d.weight(bias_data, {E}) : Tensor{};
            const Tensor ids = d.alloc(DType::kI32, {T, K}), w = d.alloc(DType::kF32, {T, K});
            be.moe_route(d.f32(l, {T, E}), b, s.r, ids, w);
            Outputs outs{exact_out(d, "ids", ids), exact_out(d, "weights", w)};
            outs[1].tol.resize(static_cast<size_t>(T * K));
            for (size_t i = 0; i < outs[1].tol.size(); ++i) outs[1].tol[i] = rel * std::abs(f32_at(outs[1], i));
            return outs;
          }};
}

// ---------------------------------------------------------------------------------------------------------
// kv_store + attention

struct AttnShape {
  DType dtype = DType::kF32;
  int D = 64, Hq = 8, Hkv = 2, block_size = 16;
};

/// Sequence i's slice in the step under test: start_pos and n_tokens. Positions [0, start) were cached by an
/// earlier step. A first prefill chunk, a later prefill chunk, a decode row, a 4-row speculative verify.
struct SeqPlan {
  int32_t start, n;
};
constexpr SeqPlan kSeqs[] = {{0, 6}, {11, 7}, {23, 1}, {9, 4}};
constexpr int kNumSeqs = 4;

/// The host plan of a paged cache: block tables, fp8 scales and every sequence's logical k / v rows.
struct KvSetup {
  AttnShape sh;
  int64_t n_blocks = 0;
  std::vector<std::vector<int32_t>> tables;  // per sequence: its physical blocks (disjoint, shuffled)
  std::vector<float> k_scale, v_scale;       // [Hkv], fp8 only
  std::vector<std::vector<float>> k, v;      // per sequence: [start + n, Hkv, D] f32
  int64_t row() const { return int64_t{sh.Hkv} * sh.D; }
};

KvSetup make_kv_setup(Rng& rng, const AttnShape& sh) {
  KvSetup s{.sh = sh};
  std::vector<int64_t> need;
  for (const SeqPlan& p : kSeqs) need.push_back((p.start + p.n + sh.block_size - 1) / sh.block_size);
  s.n_blocks = std::accumulate(need.begin(), need.end(), int64_t{0}) + 3;  // 3 spare blocks nobody may write
  std::vector<int32_t> phys(static_cast<size_t>(s.n_blocks));
  std::iota(phys.begin(), phys.end(), 0);
  std::shuffle(phys.begin(), phys.end(), rng.gen);
  size_t next = 0;
  for (int i = 0; i < kNumSeqs; ++i) {
    s.tables.emplace_back(phys.begin() + next, phys.begin() + next + need[i]);
    next += need[i];
  }
  if (sh.dtype == DType::kF8E4M3) {  // |x| <= 1 maps to at most 400 of e4m3's 448
    s.k_scale = rng.vec(sh.Hkv, 0.0025f, 0.02f);
    s.v_scale = rng.vec(sh.Hkv, 0.0025f, 0.02f);
  }
  for (const SeqPlan& p : kSeqs) {
    s.k.push_back(rng.vec((p.start + p.n) * s.row()));
    s.v.push_back(rng.vec((p.start + p.n) * s.row()));
  }
  return s;
}

/// The value a cache element holds after kv_store(x) (core conversions: RNE bf16, x / scale to e4m3).
double stored_value(float x, DType dtype, float scale) {
  switch (dtype) {
    case DType::kBF16:
      return bf16_to_f32(f32_to_bf16(x));
    case DType::kF8E4M3:
      return static_cast<double>(f8e4m3_to_f32(f32_to_f8e4m3(x / scale))) * scale;
    default:
      return x;
  }
}

/// The K and V caches [n_blocks, block_size, Hkv, D] on the device, zeroed, with fp8 scales [Hkv] uploaded.
KvLayerView alloc_kv(Dev& d, const KvSetup& s) {
  const Shape shape{s.n_blocks, s.sh.block_size, s.sh.Hkv, s.sh.D};
  KvLayerView kv{.k = d.zeros(s.sh.dtype, shape).data,
                 .v = d.zeros(s.sh.dtype, shape).data,
                 .n_blocks = s.n_blocks,
                 .block_size = s.sh.block_size,
                 .n_kv_heads = s.sh.Hkv,
                 .head_dim = s.sh.D,
                 .dtype = s.sh.dtype};
  if (s.sh.dtype == DType::kF8E4M3) {
    kv.k_scale = d.f32(s.k_scale, {s.sh.Hkv}).ptr<const float>();
    kv.v_scale = d.f32(s.v_scale, {s.sh.Hkv}).ptr<const float>();
  }
  return kv;
}

Tensor cache_tensor(const KvLayerView& kv, void* p) {
  return Tensor{p, {kv.n_blocks, kv.block_size, kv.n_kv_heads, kv.head_dim}, kv.dtype};
}

/// A step's host description (BatchDesc's spans point into it) and the (sequence, position) of each row.
struct Batch {
  std::vector<SeqSlice> seqs;
  std::vector<int32_t> positions;
  std::vector<std::pair<int, int32_t>> rows;
};

struct Part {
  int seq;
  int32_t start, n;
};

Batch make_batch(const KvSetup& s, const std::vector<Part>& parts) {
  Batch b;
  int64_t t = 0;
  for (const Part& p : parts) {
    b.seqs.push_back({.token_begin = t, .n_tokens = p.n, .start_pos = p.start, .block_table = s.tables[p.seq].data()});
    for (int32_t j = 0; j < p.n; ++j) {
      b.positions.push_back(p.start + j);
      b.rows.emplace_back(p.seq, p.start + j);
    }
    t += p.n;
  }
  return b;
}

/// The earlier step that cached every sequence's prefix (itself a multi-sequence prefill), and the step under test.
Batch prefix_batch(const KvSetup& s) {
  std::vector<Part> parts;
  for (int i = 0; i < kNumSeqs; ++i)
    if (kSeqs[i].start > 0) parts.push_back({i, 0, kSeqs[i].start});
  return make_batch(s, parts);
}
Batch step_batch(const KvSetup& s) {
  std::vector<Part> parts;
  for (int i = 0; i < kNumSeqs; ++i) parts.push_back({i, kSeqs[i].start, kSeqs[i].n});
  return make_batch(s, parts);
}

/// One attention layer of a forward step as the model runs it: begin_step, kv_store of the batch's k / v rows
/// (when `store`), attention of q [T, Hq, D]. Returns out [T, Hq, D] on the device.
Tensor attention_step(Dev& d, const KvSetup& s, const KvLayerView& kv, const Batch& b, const std::vector<float>& q,
                      bool store) {
  const int64_t T = static_cast<int64_t>(b.rows.size()), row = s.row();
  const StepState st = d.be.begin_step(
      BatchDesc{.positions = b.positions, .seqs = b.seqs, .block_size = s.sh.block_size}, d.arena());
  if (store) {
    std::vector<float> k(static_cast<size_t>(T * row)), v(k.size());  // [T, Hkv, D]
    for (int64_t t = 0; t < T; ++t) {
      const auto [seq, pos] = b.rows[t];
      std::copy_n(s.k[seq].begin() + pos * row, row, k.begin() + t * row);
      std::copy_n(s.v[seq].begin() + pos * row, row, v.begin() + t * row);
    }
    d.be.kv_store(d.f32(k, {T, s.sh.Hkv, s.sh.D}), d.f32(v, {T, s.sh.Hkv, s.sh.D}), kv, st);
  }
  const Tensor out = d.alloc(DType::kF32, {T, s.sh.Hq, s.sh.D});
  d.be.attention(d.f32(q, {T, s.sh.Hq, s.sh.D}), kv, st, 1.0f / std::sqrt(static_cast<float>(s.sh.D)), out);
  return out;
}

/// Bound for attention out [T, Hq, D] of batch b. With s_j the scaled scores over the n_ctx visible positions,
/// p_j their softmax and A_i = sum_j p_j |v_ji|: a score error d_j moves out_i by sum_j p_j (v_ji - out_i) d_j,
/// at most 2 max|d| A_i; d_j <= u (D + 1) m_j (dot product, m_j the L2 norm of the scaled q_i k_ji) + 2u |s_j|
/// (the scale, the max shift). exp adds kTransUlps relative to each p_j, the normaliser n_ctx u, the weighted
/// sum n_ctx u A_i (its partial sums are bounded by A_i). Twice for two sides.
std::vector<double> attention_tol(const KvSetup& s, const Batch& b, const std::vector<float>& q) {
  const int64_t T = static_cast<int64_t>(b.rows.size()), Hq = s.sh.Hq, D = s.sh.D, Hkv = s.sh.Hkv;
  const int64_t group = Hq / Hkv;
  const double scale = 1.0f / std::sqrt(static_cast<float>(D));
  std::vector<double> tol(static_cast<size_t>(T * Hq * D));
  for (int64_t t = 0; t < T; ++t) {
    const auto [seq, pos] = b.rows[t];
    const int64_t n_ctx = pos + 1;
    for (int64_t h = 0; h < Hq; ++h) {
      const int64_t g = h / group;
      const float ks = s.k_scale.empty() ? 1.0f : s.k_scale[g], vs = s.v_scale.empty() ? 1.0f : s.v_scale[g];
      const float* qh = q.data() + (t * Hq + h) * D;
      std::vector<double> sc(static_cast<size_t>(n_ctx));
      double M = 0, S = 0, mx = -1e300;
      for (int64_t p = 0; p < n_ctx; ++p) {
        double dot = 0, m2 = 0;
        for (int64_t i = 0; i < D; ++i) {
          const double term = qh[i] * stored_value(s.k[seq][(p * Hkv + g) * D + i], s.sh.dtype, ks) * scale;
          dot += term;
          m2 += term * term;
        }
        sc[p] = dot;
        M = std::max(M, std::sqrt(m2));
        S = std::max(S, std::abs(dot));
        mx = std::max(mx, dot);
      }
      double total = 0;
      for (double& x : sc) total += x = std::exp(x - mx);
      for (int64_t i = 0; i < D; ++i) {
        double A = 0;
        for (int64_t p = 0; p < n_ctx; ++p)
          A += sc[p] / total * std::abs(stored_value(s.v[seq][(p * Hkv + g) * D + i], s.sh.dtype, vs));
        tol[(t * Hq + h) * D + i] =
            2.0 * kU * A * (2.0 * ((D + 1) * M + 2.0 * S) + 2.0 * n_ctx + 2.0 * kTransUlps + 8.0);
      }
    }
  }
  return tol;
}

// kv_store + attention over a paged cache: an earlier step stores and attends the prefixes, the step under test
// stores and attends four sequences at once. The caches' bytes must match exactly (kv_store converts element
// by element), the attention outputs within attention_tol.
Case attention_case(const AttnShape& sh) {
  const std::string name = fmt::format("attention_{}_D{}_Hq{}_Hkv{}_bs{}", dtype_name(sh.dtype), sh.D, sh.Hq,
                                       sh.Hkv, sh.block_size);
  return {name, [=](Backend& be) {
            Rng rng(name);
            const KvSetup s = make_kv_setup(rng, sh);
            Dev d(be);
            const KvLayerView kv = alloc_kv(d, s);
            Outputs outs;
            for (const Batch& b : {prefix_batch(s), step_batch(s)}) {
              const std::vector<float> q = rng.vec(static_cast<int64_t>(b.rows.size()) * sh.Hq * sh.D, -2.0f, 2.0f);
              const Tensor out = attention_step(d, s, kv, b, q, true);
              outs.push_back(close_out(d, fmt::format("out of {} rows", b.rows.size()), out, attention_tol(s, b, q)));
            }
            outs.push_back(exact_out(d, "k cache", cache_tensor(kv, kv.k)));
            outs.push_back(exact_out(d, "v cache", cache_tensor(kv, kv.v)));
            return outs;
          }};
}

// kv_store of special values (bf16 ties, subnormals, values past e4m3's range, signed zeros): the bytes must be
// the CPU's. fp8 scales are powers of two so x / scale is exact and the ties stay ties.
Case kv_store_special_case(DType dtype) {
  const std::string name = fmt::format("kv_store_special_{}", dtype_name(dtype));
  return {name, [=](Backend& be) {
            const std::vector<float> special =
                dtype == DType::kBF16
                    ? std::vector<float>{1.00390625f, 1.01171875f, -1.00390625f, 65504.0f, 1e-30f, 1e-39f, -0.0f,
                                         0.1f, 3e37f, 1e30f, -1e-45f, 0x1p-126f, 1.0039063f, 7.0f, 0.0f, -2.5f}
                    : std::vector<float>{1.0625f, 1.1875f, -1.0625f, 448.0f, 464.0f, 1000.0f, -1000.0f, 0x1p-9f,
                                         0x1p-10f, 3 * 0x1p-10f, -0.0f, 1e-6f, 0.3f, 13.5f, 1e30f, -0.005f};
            AttnShape sh{.dtype = dtype, .D = 16, .Hq = 2, .Hkv = 2, .block_size = 4};
            KvSetup s{.sh = sh, .n_blocks = 2, .tables = {{1, 0}}};
            s.k_scale = {1.0f, 0.5f};
            s.v_scale = {2.0f, 0.25f};
            const int64_t T = 6, row = s.row();  // 6 tokens: the values, reversed, negated, ...
            s.k.assign(1, std::vector<float>(static_cast<size_t>(T * row)));
            s.v = s.k;
            for (int64_t t = 0; t < T; ++t)
              for (int64_t g = 0; g < sh.Hkv; ++g)
                for (int64_t i = 0; i < sh.D; ++i) {
                  const float x = special[(t % 2 ? sh.D - 1 - i : i)] * (t >= 2 ? -1.0f : 1.0f) * (t >= 4 ? 3.0f : 1.0f);
                  s.k[0][t * row + g * sh.D + i] = x * s.k_scale[g];
                  s.v[0][t * row + g * sh.D + i] = x * s.v_scale[g];
                }
            Dev d(be);
            const KvLayerView kv = alloc_kv(d, s);
            const Batch b = make_batch(s, {{0, 0, static_cast<int32_t>(T)}});
            const StepState st =
                be.begin_step(BatchDesc{.positions = b.positions, .seqs = b.seqs, .block_size = sh.block_size}, d.arena());
            be.kv_store(d.f32(s.k[0], {T, sh.Hkv, sh.D}), d.f32(s.v[0], {T, sh.Hkv, sh.D}), kv, st);
            return Outputs{exact_out(d, "k cache", cache_tensor(kv, kv.k)), exact_out(d, "v cache", cache_tensor(kv, kv.v))};
          }};
}

// fill_random: seeded values in [lo, hi) rounded to each float dtype, computed where the tensor lives (what
// --load-format dummy makes weights with). Exact: every backend evaluates ops/fill_random.h's function of
// (seed, index), so the same seed must give the CPU's bits, whatever the threads' or blocks' split of n.
Case fill_random_case(DType dtype, int64_t n, uint64_t seed, float lo, float hi) {
  const std::string name = fmt::format("fill_random_{}_n{}_seed{}", dtype_name(dtype), n, seed);
  return {name, [=](Backend& be) {
            Dev d(be);
            const Tensor t = d.alloc(dtype, {n});  // [n]
            be.fill_random(t, seed, lo, hi);
            return Outputs{exact_out(d, "t", t)};
          }};
}

// ---------------------------------------------------------------------------------------------------------
// The table

std::vector<Case> build_cases() {
  std::vector<Case> c;
  // linear: every weight kind x shapes (odd ones included) x bias; each case runs every T of kLinearTokens.
  const std::pair<int64_t, int64_t> linear_shapes[] = {{7, 5}, {64, 33}, {256, 130}, {1000, 300}};  // (in, out)
  for (const WeightKind& k : weight_kinds())
    for (auto [in, out] : linear_shapes)
      for (bool bias : {false, true}) c.push_back(linear_case(k, in, out, bias));
  // linear_prefill (the CUDA backend's prefill GEMM), every weight kind.
  const std::tuple<int64_t, int64_t, bool> prefill_shapes[] = {{200, 136, true}, {100, 33, true}, {7, 5, false},
                                                               {1000, 300, false}};  // (in, out, bias)
  for (const WeightKind& k : weight_kinds())
    for (auto [in, out, bias] : prefill_shapes) c.push_back(linear_prefill_case(k, in, out, bias));
  c.push_back(linears_case(weight_kind("bf16"), 64, {64, 16, 16}, true));
  c.push_back(linears_case(weight_kind("fp8block128x128"), 256, {130, 33}, false));
  c.push_back(linears_case(weight_kind("f32"), 7, {5, 3, 9}, true));
  c.push_back(linears_case(weight_kind("fp8channel"), 100, {48, 48}, false));
  c.push_back(mlp_case(weight_kind("bf16"), 64, 96));
  c.push_back(mlp_case(weight_kind("f32"), 7, 5));
  c.push_back(mlp_case(weight_kind("fp8block128x128"), 200, 136));
  c.push_back(mlp_case(weight_kind("fp8block4x8"), 33, 20));
  for (const char* k : {"bf16", "fp8block128x128"})
    for (int K : {2, 3, 4})
      for (bool shared : {false, true}) c.push_back(moe_experts_case(weight_kind(k), 160, 72, K, shared));
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    c.push_back(embedding_case(dt, 37, 19));
    c.push_back(embedding_case(dt, 1000, 128));
  }
  for (int64_t D : {33, 128})
    for (bool unit_offset : {false, true})
      for (DType dt : {DType::kBF16, DType::kF32}) c.push_back(rms_norm_case(D == 33 ? 7 : 15, D, unit_offset, dt));
  c.push_back(rope_case(3, 16, 8, 10000.0f));
  c.push_back(rope_case(4, 128, 64, 1000000.0f));
  c.push_back(rope_case(2, 64, 64, 10000.0f));
  c.push_back(rope_case(5, 24, 24, 500000.0f));
  // kv_store + attention: every cache dtype x head_dim x GQA ratio (Hq / Hkv = 1, 2, 4) x block size 16 and 5.
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF8E4M3})
    for (int D : {8, 24, 64, 128})
      for (auto [Hq, Hkv] : {std::pair{4, 4}, std::pair{4, 2}, std::pair{8, 2}})
        for (int bs : {16, 5}) c.push_back(attention_case({.dtype = dt, .D = D, .Hq = Hq, .Hkv = Hkv, .block_size = bs}));
  c.push_back(kv_store_special_case(DType::kBF16));
  c.push_back(kv_store_special_case(DType::kF8E4M3));
  c.push_back(silu_mul_case(1, 7));
  c.push_back(silu_mul_case(3, 33));
  c.push_back(silu_mul_case(5, 4097));
  c.push_back(add_case(1, 1));
  c.push_back(add_case(3, 33));
  c.push_back(add_case(2, 4097));
  c.push_back(mul_sigmoid_case(5, 33, false));
  c.push_back(mul_sigmoid_case(5, 33, true));
  c.push_back(mul_sigmoid_case(3, 128, false));
  c.push_back(mul_sigmoid_case(4, 4096, true));
  c.push_back(copy_cols_case(5, 37, 20, 3, 7, 11));
  c.push_back(copy_cols_case(1, 8, 8, 0, 0, 8));
  c.push_back(copy_cols_case(17, 64, 96, 32, 64, 32));
  c.push_back(gather_rows_case(DType::kF32, 9, 33, {8, 0, 3, 3, 7}));
  c.push_back(gather_rows_case(DType::kI32, 9, 4, {1, 1, 8}));
  c.push_back(gather_rows_case(DType::kF32, 64, 151, {63, 0, 17, 5, 5, 40, 1, 62, 33, 2, 9, 11, 12}));
  c.push_back(copy_rows_case(DType::kF32, 9, 40, 33, {8, 0, 3, 3, 7}, {39, 0, 12, 13, 5}));
  c.push_back(copy_rows_case(DType::kI32, 5, 7, 4, {1, 4}, {6, 2}));
  c.push_back(copy_rows_case(DType::kF32, 64, 300, 256, {63, 0, 17, 5, 40, 1, 62}, {299, 1, 100, 101, 102, 7, 0}));
  const auto sig = [](int K, int ng, int tg, bool norm, float scaling) {
    return MoeRouting{.top_k = K, .n_group = ng, .topk_group = tg, .norm_topk_prob = norm,
                      .routed_scaling_factor = scaling, .scoring = MoeScoring::kSigmoid};
  };
  const auto soft = [](int K, bool norm) {
    return MoeRouting{.top_k = K, .norm_topk_prob = norm, .scoring = MoeScoring::kSoftmax};
  };
  for (const RouteSpec& r : {
           RouteSpec{"sigmoid_E16_K4_g4_tg2_norm_x2p5", 16, sig(4, 4, 2, true, 2.5f), true},
           RouteSpec{"sigmoid_E16_K4_g4_tg2_x2p5", 16, sig(4, 4, 2, false, 2.5f), true},
           RouteSpec{"sigmoid_E8_K2_norm_x2p5", 8, sig(2, 1, 1, true, 2.5f), true},
           RouteSpec{"sigmoid_E8_K2_x2p5", 8, sig(2, 1, 1, false, 2.5f), true},
           RouteSpec{"sigmoid_E8_K2_nobias_norm", 8, sig(2, 1, 1, true, 1.0f), false},
           RouteSpec{"softmax_E10_K3_norm", 10, soft(3, true), false},
           RouteSpec{"softmax_E60_K4", 60, soft(4, false), false},
           RouteSpec{"sigmoid_E16_K4_g4_tg2_ties", 16, sig(4, 4, 2, true, 2.5f), true, true},
           RouteSpec{"softmax_E8_K2_ties", 8, soft(2, true), false, true},
       })
    c.push_back(moe_route_case(r));
  for (int64_t V : {7, 151, 50000}) c.push_back(argmax_case(V));
  // fill_random: every float dtype; ranges of linear weights, norms, fp8's full range and values small enough to
  // round to bf16 / f16 / e4m3 subnormals; odd sizes and one of several million elements.
  c.push_back(fill_random_case(DType::kF32, 1, 0, -1.0f, 1.0f));
  c.push_back(fill_random_case(DType::kF32, 100003, 7, 0.9f, 1.1f));
  c.push_back(fill_random_case(DType::kBF16, 4100001, 1, -0.015625f, 0.015625f));
  c.push_back(fill_random_case(DType::kBF16, 333, 2, -1e-38f, 1e-38f));
  c.push_back(fill_random_case(DType::kF16, 65537, 3, -3.0f, 3.0f));
  c.push_back(fill_random_case(DType::kF16, 4097, 4, -1e-4f, 1e-4f));
  c.push_back(fill_random_case(DType::kF8E4M3, 1000001, 5, -448.0f, 448.0f));
  c.push_back(fill_random_case(DType::kF8E4M3, 4097, 6, -0.03f, 0.03f));
  return c;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> table = [] {
    std::vector<Case> c = build_cases();
    std::set<std::string> names;
    for (const Case& x : c)
      if (!names.insert(x.name).second) throw std::logic_error("duplicate case " + x.name);
    return c;
  }();
  return table;
}

// ---------------------------------------------------------------------------------------------------------
// Backends and reference outputs, shared by the tests and released before main returns

struct Shared {
  std::map<size_t, Outputs> reference_outputs;
  std::map<std::string, std::unique_ptr<Backend>> tested;
  std::unique_ptr<Backend> reference;
};

Shared& shared() {
  static Shared s;
  return s;
}

class ReleaseShared : public ::testing::Environment {
 public:
  void TearDown() override {
    Shared& s = shared();
    s.reference_outputs.clear();
    s.tested.clear();
    s.reference.reset();
  }
};
[[maybe_unused]] ::testing::Environment* const kReleaseShared =
    ::testing::AddGlobalTestEnvironment(new ReleaseShared);

/// The reference: the CPU backend, on one thread.
Backend& reference() {
  std::unique_ptr<Backend>& b = shared().reference;
  if (!b) b = make_backend("cpu", 1);
  return *b;
}

Backend& tested(const std::string& name) {
  std::unique_ptr<Backend>& b = shared().tested[name];
  if (!b) b = make_backend(name, kTestedThreads);
  return *b;
}

const Outputs& reference_outputs(size_t index) {
  auto& m = shared().reference_outputs;
  auto it = m.find(index);
  if (it == m.end()) it = m.emplace(index, cases()[index].run(reference())).first;
  return it->second;
}

// ---------------------------------------------------------------------------------------------------------
// The table on every backend

class BackendOps : public ::testing::TestWithParam<std::tuple<std::string, size_t>> {};

TEST_P(BackendOps, MatchesCpu) {
  const auto& [backend, index] = GetParam();
  std::string why;
  if (!backend_available(backend, &why)) GTEST_SKIP() << why;
  const Case& c = cases()[index];
  const Outputs& want = reference_outputs(index);
  const Outputs got = c.run(tested(backend));
  const std::string diff = compare(want, got);
  EXPECT_TRUE(diff.empty()) << c.name << " on " << backend << " differs from the CPU backend:\n" << diff;
}

INSTANTIATE_TEST_SUITE_P(Table, BackendOps,
                         ::testing::Combine(::testing::ValuesIn(compiled_backends()),
                                            ::testing::Range<size_t>(0, cases().size())),
                         [](const auto& info) {
                           return cases()[std::get<1>(info.param)].name + "_on_" + std::get<0>(info.param);
                         });

// The comparator is what makes the table able to fail: in every output of every case, a 1% error (of the
// output's RMS; 2% for prefill linear outputs, see "Prefill tolerance") in the element with the loosest bound is
// caught, as is any changed bit of an exact output. The reference itself passes.
TEST(BackendOpsComparator, CatchesAOnePercentErrorInEveryOutput) {
  for (size_t index = 0; index < cases().size(); ++index) {
    const Outputs& ref = reference_outputs(index);
    EXPECT_EQ(compare(ref, ref), "") << cases()[index].name;
    for (size_t k = 0; k < ref.size(); ++k) {
      Outputs bad = ref;
      Out& o = bad[k];
      const size_t n = o.bytes.size() / dtype_size(o.dtype);
      ASSERT_GT(n, 0u) << cases()[index].name << " " << o.name;
      if (o.exact()) {
        o.bytes[(n / 2) * dtype_size(o.dtype)] ^= 1;
      } else {
        double ss = 0;
        for (size_t i = 0; i < n; ++i) ss += static_cast<double>(f32_at(o, i)) * f32_at(o, i);
        const double rms = std::sqrt(ss / static_cast<double>(n));
        ASSERT_GT(rms, 0.0) << cases()[index].name << " " << o.name;
        const size_t worst = static_cast<size_t>(std::max_element(o.tol.begin(), o.tol.end()) - o.tol.begin());
        const float v = static_cast<float>(f32_at(o, worst) + o.catch_rel * rms);
        std::memcpy(&o.bytes[worst * 4], &v, 4);
      }
      EXPECT_NE(compare(ref, bad), "") << cases()[index].name << " " << o.name << ": a " << 100 * o.catch_rel
                                       << "% error passes the comparator";
    }
  }
}

// An absolute example: one element of the largest linear's output (|y| ~ 10, bound ~2.5e-3) off by 1e-2.
TEST(BackendOpsComparator, CatchesALinearOutputOffBy1em2) {
  size_t index = 0;
  while (index < cases().size() && cases()[index].name != "linear_bf16_1000x300_bias") ++index;
  ASSERT_LT(index, cases().size());
  const Outputs& ref = reference_outputs(index);
  Outputs bad = ref;
  const float v = f32_at(bad.back(), 1234) + 1e-2f;
  std::memcpy(&bad.back().bytes[1234 * 4], &v, 4);
  const std::string diff = compare(ref, bad);
  EXPECT_NE(diff.find(fmt::format("y T={}: element 1234", kLinearTokens[std::size(kLinearTokens) - 1])),
            std::string::npos)
      << diff;
}

// ---------------------------------------------------------------------------------------------------------
// Batch invariance: a row computed in a T-row call equals, bit for bit, the same row computed alone or in
// another batch on the same backend. Speculative decoding's exactness rests on it: a verify pass of K + 1 rows
// must reproduce K + 1 decode steps.

class BackendBatchInvariance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string why;
    if (!backend_available(GetParam(), &why)) GTEST_SKIP() << why;
  }
  Backend& be() { return tested(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, BackendBatchInvariance, ::testing::ValuesIn(compiled_backends()),
                         [](const auto& info) { return info.param; });

/// Rows [first, first + n) of full [*, width] must be the bits of part [n, width].
void expect_same_rows(const std::vector<float>& full, const std::vector<float>& part, int64_t first, int64_t width,
                      const std::string& what) {
  ASSERT_EQ(part.size() % static_cast<size_t>(width), 0u);
  for (size_t i = 0; i < part.size(); ++i) {
    const float a = full[first * width + i], b = part[i];
    if (std::memcmp(&a, &b, 4) != 0) {
      ADD_FAILURE() << what << ": row " << first + static_cast<int64_t>(i) / width << " element " << i % width
                    << " is " << fmt::format("{:.9g}", b) << " vs " << fmt::format("{:.9g}", a) << " in the full batch";
      return;
    }
  }
}

// linear(), every weight kind, at T past kLinearExactRows too (the exact path has no row threshold).
TEST_P(BackendBatchInvariance, Linear) {
  const int64_t in = 1000, out = 300, T = 64;
  for (const WeightKind& k : weight_kinds()) {
    Rng rng("invariance_linear_" + k.name);
    const HostLinear h = make_linear(rng, out, in, k, true);
    Dev d(be());
    const LinearWeight w = d.linear(h);
    const Tensor x = d.f32(rng.vec(T * in), {T, in});  // [T, in]
    const Tensor y = d.alloc(DType::kF32, {T, out});   // [T, out]
    be().linear(x, w, y);
    const std::vector<float> full = d.download<float>(y);
    for (int64_t t = 0; t < T; ++t) {
      const Tensor yt = d.alloc(DType::kF32, {1, out});
      be().linear(x.rows(t, 1), w, yt);
      expect_same_rows(full, d.download<float>(yt), t, out, k.name + " alone");
    }
    for (auto [first, n] : {std::pair<int64_t, int64_t>{5, 13}, {0, 2}, {40, 24}, {T - 17, 17}}) {
      const Tensor ys = d.alloc(DType::kF32, {n, out});
      be().linear(x.rows(first, n), w, ys);
      expect_same_rows(full, d.download<float>(ys), first, out, fmt::format("{} in a batch of {}", k.name, n));
    }
  }
}

// linear_prefill(): a row's bits do not depend on T or on where the row sits in the call (ops.h: a prompt gives the
// same bits however the scheduler chunks it), and a call repeats its bits. On the CUDA backend this checks that
// the cuBLASLt algorithm of a weight is fixed for every T and reduces without split-K (prefill_gemm.h). Shapes: a
// bf16 weight read in place (in % 8 == 0), one copied (odd in), an output whose rows are 4-byte multiples only.
TEST_P(BackendBatchInvariance, LinearPrefillRowsIgnoreT) {
  const int64_t T = 200;
  for (auto [in, out] : {std::pair<int64_t, int64_t>{1000, 300}, {200, 136}, {100, 33}}) {
    for (const WeightKind& k : weight_kinds()) {
      Rng rng(fmt::format("invariance_linear_prefill_{}_{}x{}", k.name, in, out));
      const HostLinear h = make_linear(rng, out, in, k, true);
      Dev d(be());
      const LinearWeight w = d.linear(h);
      const Tensor x = d.f32(rng.vec(T * in), {T, in});  // [T, in]
      const Tensor y = d.alloc(DType::kF32, {T, out});   // [T, out]
      be().linear_prefill(x, w, y);
      const std::vector<float> full = d.download<float>(y);
      const std::string what = fmt::format("{} {}x{}", k.name, in, out);
      be().linear_prefill(x, w, y);
      expect_same_rows(full, d.download<float>(y), 0, out, what + ", second call");
      for (auto [first, n] : {std::pair<int64_t, int64_t>{0, 1}, {7, 1}, {T - 1, 1}, {3, 5}, {0, 16}, {17, 17},
                              {100, 64}, {5, T - 5}}) {
        const Tensor ys = d.alloc(DType::kF32, {n, out});  // [n, out]
        be().linear_prefill(x.rows(first, n), w, ys);
        expect_same_rows(full, d.download<float>(ys), first, out, fmt::format("{}, rows [{}, +{})", what, first, n));
        const Tensor xs = d.f32(d.download<float>(x.rows(first, n)), {n, in});  // the same rows, copied
        be().linear_prefill(xs, w, ys);
        expect_same_rows(full, d.download<float>(ys), first, out,
                         fmt::format("{}, rows [{}, +{}) as their own input", what, first, n));
      }
      // Rows written through a row-offset view of a larger output (models/layers/row_split.h's prefill rows).
      const Tensor big = d.alloc(DType::kF32, {T + 3, out});  // [T + 3, out]
      be().linear_prefill(x, w, big.rows(3, T));
      expect_same_rows(full, d.download<float>(big.rows(3, T)), 0, out, what + ", into rows 3.. of a larger y");
    }
  }
}

// linears_prefill() and mlp_prefill() compose linear_prefill(): the same row independence.
TEST_P(BackendBatchInvariance, LinearsAndMlpPrefillRowsIgnoreT) {
  const int64_t H = 200, I = 136, T = 80;
  for (const char* kind : {"bf16", "fp8block128x128"}) {
    Rng rng(std::string("invariance_mlp_prefill_") + kind);
    const HostMlp m = make_mlp(rng, H, I, weight_kind(kind));
    Dev d(be());
    const MlpWeights w = d.mlp(m);
    const LinearWeight* ws[] = {&w.gate_proj, &w.up_proj};
    const Tensor x = d.f32(rng.vec(T * H), {T, H});  // [T, H]
    const Tensor y = d.alloc(DType::kF32, {T, H}), g = d.alloc(DType::kF32, {T, I}), u = d.alloc(DType::kF32, {T, I});
    be().mlp_prefill(x, w, y);
    const Tensor gu[] = {g, u};
    be().linears_prefill(x, ws, gu);
    const std::vector<float> full = d.download<float>(y), full_g = d.download<float>(g), full_u = d.download<float>(u);
    for (auto [first, n] : {std::pair<int64_t, int64_t>{0, 1}, {9, 5}, {20, 17}, {T - 33, 33}}) {
      const Tensor ys = d.alloc(DType::kF32, {n, H}), gs = d.alloc(DType::kF32, {n, I}), us = d.alloc(DType::kF32, {n, I});
      be().mlp_prefill(x.rows(first, n), w, ys);
      const Tensor gus[] = {gs, us};
      be().linears_prefill(x.rows(first, n), ws, gus);
      const std::string what = fmt::format("{}, rows [{}, +{})", kind, first, n);
      expect_same_rows(full, d.download<float>(ys), first, H, "mlp_prefill " + what);
      expect_same_rows(full_g, d.download<float>(gs), first, I, "linears_prefill gate " + what);
      expect_same_rows(full_u, d.download<float>(us), first, I, "linears_prefill up " + what);
    }
  }
}

TEST_P(BackendBatchInvariance, Mlp) {
  const int64_t H = 200, I = 136, T = 17;
  for (const char* kind : {"bf16", "fp8block128x128"}) {
    Rng rng(std::string("invariance_mlp_") + kind);
    const HostMlp m = make_mlp(rng, H, I, weight_kind(kind));
    Dev d(be());
    const MlpWeights w = d.mlp(m);
    const Tensor x = d.f32(rng.vec(T * H), {T, H}), y = d.alloc(DType::kF32, {T, H});  // [T, H]
    be().mlp(x, w, y);
    const std::vector<float> full = d.download<float>(y);
    for (int64_t t = 0; t < T; ++t) {
      const Tensor yt = d.alloc(DType::kF32, {1, H});
      be().mlp(x.rows(t, 1), w, yt);
      expect_same_rows(full, d.download<float>(yt), t, H, std::string(kind) + " alone");
    }
    const Tensor ys = d.alloc(DType::kF32, {5, H});
    be().mlp(x.rows(9, 5), w, ys);
    expect_same_rows(full, d.download<float>(ys), 9, H, std::string(kind) + " in a batch of 5");
  }
}

TEST_P(BackendBatchInvariance, MoeExperts) {
  const int64_t H = 160, I = 72, T = 9;
  const int E = 8, K = 4;
  for (const char* kind : {"bf16", "fp8block128x128"}) {
    Rng rng(std::string("invariance_moe_") + kind);
    std::vector<HostMlp> experts;
    for (int e = 0; e < E; ++e) experts.push_back(make_mlp(rng, H, I, weight_kind(kind)));
    const HostMlp shared_expert = make_mlp(rng, H, 96, weight_kind(kind));
    Dev d(be());
    std::vector<MlpWeights> ew;
    for (const HostMlp& m : experts) ew.push_back(d.mlp(m));
    const MlpWeights sw = d.mlp(shared_expert);
    const std::vector<float> out0 = rng.vec(T * H);
    std::vector<int32_t> ids;
    for (int64_t t = 0; t < T; ++t)
      for (int32_t e : rng.distinct(K, E)) ids.push_back(e);
    const Tensor x = d.f32(rng.vec(T * H), {T, H}), idt = d.i32(ids, {T, K}), wt = d.f32(rng.vec(T * K, 0.1f, 1.0f), {T, K});
    for (const MlpWeights* sh : {static_cast<const MlpWeights*>(nullptr), &sw}) {
      const std::string what = fmt::format("{}{}", kind, sh ? " with a shared expert" : "");
      const Tensor y = d.f32(out0, {T, H});  // [T, H], accumulated into
      be().moe_experts(x, idt, wt, ew, sh, y);
      const std::vector<float> full = d.download<float>(y);
      for (auto [first, n] : {std::pair<int64_t, int64_t>{0, 1}, {1, 1}, {4, 1}, {8, 1}, {2, 4}, {5, 4}}) {
        const Tensor ys = d.f32(std::vector<float>(out0.begin() + first * H, out0.begin() + (first + n) * H), {n, H});
        be().moe_experts(x.rows(first, n), idt.rows(first, n), wt.rows(first, n), ew, sh, ys);
        expect_same_rows(full, d.download<float>(ys), first, H, fmt::format("{}, rows [{}, {})", what, first, first + n));
      }
    }
  }
}

TEST_P(BackendBatchInvariance, Attention) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF8E4M3})
    for (int D : {24, 128})
      for (int bs : {16, 5}) {
        const AttnShape sh{.dtype = dt, .D = D, .Hq = 8, .Hkv = 2, .block_size = bs};
        const std::string what = fmt::format("{} D {} block {}", dtype_name(dt), D, bs);
        Rng rng("invariance_attention_" + what);
        const KvSetup s = make_kv_setup(rng, sh);
        Dev d(be());
        const KvLayerView kv = alloc_kv(d, s);
        const Batch prefix = prefix_batch(s), step = step_batch(s);
        (void)attention_step(d, s, kv, prefix, rng.vec(static_cast<int64_t>(prefix.rows.size()) * sh.Hq * D), true);
        const int64_t T = static_cast<int64_t>(step.rows.size()), width = int64_t{sh.Hq} * D;
        const std::vector<float> q = rng.vec(T * width, -2.0f, 2.0f);  // [T, Hq, D]
        const std::vector<float> full = d.download<float>(attention_step(d, s, kv, step, q, true));
        // Each row alone, as a decode step at its position (the cache already holds the batch's k / v).
        for (int64_t t = 0; t < T; ++t) {
          const auto [seq, pos] = step.rows[t];
          const Batch one = make_batch(s, {{seq, pos, 1}});
          const std::vector<float> qt(q.begin() + t * width, q.begin() + (t + 1) * width);
          expect_same_rows(full, d.download<float>(attention_step(d, s, kv, one, qt, false)), t, width,
                           what + ": row alone");
        }
        // Each sequence alone, and the last two sequences in the other order.
        int64_t first = 0;
        for (int i = 0; i < kNumSeqs; ++i) {
          const Batch alone = make_batch(s, {{i, kSeqs[i].start, kSeqs[i].n}});
          const std::vector<float> qs(q.begin() + first * width, q.begin() + (first + kSeqs[i].n) * width);
          expect_same_rows(full, d.download<float>(attention_step(d, s, kv, alone, qs, false)), first, width,
                           fmt::format("{}: sequence {} alone", what, i));
          first += kSeqs[i].n;
        }
        const Batch swapped = make_batch(s, {{3, kSeqs[3].start, kSeqs[3].n}, {2, kSeqs[2].start, kSeqs[2].n}});
        const int64_t b2 = kSeqs[0].n + kSeqs[1].n, b3 = b2 + kSeqs[2].n;
        std::vector<float> qs(q.begin() + b3 * width, q.begin() + (b3 + kSeqs[3].n) * width);
        qs.insert(qs.end(), q.begin() + b2 * width, q.begin() + b3 * width);
        const std::vector<float> got = d.download<float>(attention_step(d, s, kv, swapped, qs, false));
        expect_same_rows(full, std::vector<float>(got.begin(), got.begin() + kSeqs[3].n * width), b3, width,
                         what + ": verify rows before the decode row");
        expect_same_rows(full, std::vector<float>(got.begin() + kSeqs[3].n * width, got.end()), b2, width,
                         what + ": decode row after the verify rows");
      }
}

}  // namespace
}  // namespace tandem::ops
