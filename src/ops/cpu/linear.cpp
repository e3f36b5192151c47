#include "ops/cpu/linear.h"

#include <algorithm>
#include <cstring>

namespace tandem::ops::cpu {
namespace {

const char* quant_name(WeightQuant q) {
  switch (q) {
    case WeightQuant::kNone:
      return "none";
    case WeightQuant::kFp8Tensor:
      return "fp8 per-tensor";
    case WeightQuant::kFp8Channel:
      return "fp8 per-channel";
    case WeightQuant::kFp8Block:
      return "fp8 block";
  }
  return "?";
}

bool is_float(DType t) {
  return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16 || t == DType::kF8E4M3;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

void to_f32(const Tensor& t, float* dst) {
  const int64_t n = t.numel();
  switch (t.dtype) {
    case DType::kF32:
      std::memcpy(dst, t.data, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(t.ptr<const uint16_t>()[i]);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(t.ptr<const uint16_t>()[i]);
      return;
    case DType::kF8E4M3:
      for (int64_t i = 0; i < n; ++i) dst[i] = f8e4m3_to_f32(t.ptr<const uint8_t>()[i]);
      return;
    default:
      fail("expected a float tensor, got {} {}", dtype_name(t.dtype), t.shape.str());
  }
}

PreparedLinear::PreparedLinear(const LinearWeight& w, std::string_view what) {
  const Tensor& wt = w.weight;
  TANDEM_CHECK(!wt.empty() && wt.rank() == 2, "{}: weight must be a 2-D [out, in] tensor, got {}", what,
               wt.shape.str());
  TANDEM_CHECK(wt.device.is_host(), "{}: weight is not in host memory", what);
  const int64_t out = wt.dim(0), in = wt.dim(1);
  TANDEM_CHECK(out > 0 && in > 0, "{}: weight {} has an empty dimension", what, wt.shape.str());
  if (w.quant == WeightQuant::kNone) {
    TANDEM_CHECK(wt.dtype == DType::kBF16 || wt.dtype == DType::kF16 || wt.dtype == DType::kF32,
                 "{}: unquantised weight must be BF16, F16 or F32, got {}", what, dtype_name(wt.dtype));
    TANDEM_CHECK(w.scale.empty(), "{}: scale {} given for an unquantised weight", what, w.scale.shape.str());
  } else {
    TANDEM_CHECK(wt.dtype == DType::kF8E4M3, "{}: {} quantisation needs an F8_E4M3 weight, got {}", what,
                 quant_name(w.quant), dtype_name(wt.dtype));
    TANDEM_CHECK(!w.scale.empty() && is_float(w.scale.dtype) && w.scale.dtype != DType::kF8E4M3,
                 "{}: {} quantisation needs a float scale tensor", what, quant_name(w.quant));
    int64_t expected = 1;
    if (w.quant == WeightQuant::kFp8Channel) expected = out;
    if (w.quant == WeightQuant::kFp8Block) {
      TANDEM_CHECK(w.block_out > 0 && w.block_in > 0,
                   "{}: fp8 block quantisation needs block sizes, got {}x{}", what, w.block_out, w.block_in);
      expected = ceil_div(out, w.block_out) * ceil_div(in, w.block_in);
      base_.block_out = w.block_out;
      base_.block_in = w.block_in;
      base_.scale_cols = ceil_div(in, w.block_in);
    }
    TANDEM_CHECK(w.scale.numel() == expected,
                 "{}: {} scale for weight {} must have {} elements, got {} (shape {})", what,
                 quant_name(w.quant), wt.shape.str(), expected, w.scale.numel(), w.scale.shape.str());
    if (w.scale.dtype == DType::kF32) {
      base_.scale = w.scale.ptr<const float>();
    } else {
      scale_f32_.resize(static_cast<size_t>(expected));
      to_f32(w.scale, scale_f32_.data());
    }
  }
  if (!w.bias.empty()) {
    TANDEM_CHECK(w.bias.numel() == out && is_float(w.bias.dtype),
                 "{}: bias must be a float [{}] tensor, got {} {}", what, out, dtype_name(w.bias.dtype),
                 w.bias.shape.str());
    if (w.bias.dtype == DType::kF32) {
      base_.bias = w.bias.ptr<const float>();
    } else {
      bias_f32_.resize(static_cast<size_t>(out));
      to_f32(w.bias, bias_f32_.data());
    }
  }
  base_.in = in;
  base_.out = out;
  base_.w = wt.data;
  base_.w_dtype = wt.dtype;
  base_.quant = w.quant;
}

LinearProblem PreparedLinear::problem(const float* x, int64_t x_ld, const int32_t* x_rows, int64_t n_tokens,
                                      float* y, int64_t y_ld, int64_t y_col0) const {
  LinearProblem p = base_;
  if (!scale_f32_.empty()) p.scale = scale_f32_.data();
  if (!bias_f32_.empty()) p.bias = bias_f32_.data();
  p.x = x;
  p.x_ld = x_ld;
  p.x_rows = x_rows;
  p.n_tokens = n_tokens;
  p.y = y;
  p.y_ld = y_ld;
  p.y_col0 = y_col0;
  return p;
}

void run_linears(const CpuContext& ctx, std::span<const LinearProblem> ps) {
  if (ps.empty() || ps[0].n_tokens == 0) return;
  const int64_t n_tokens = ps[0].n_tokens;
  // Row units are whole row tiles of every ISA, so thread boundaries never split a tile. Units of all
  // problems are numbered one after another: problem i owns [unit_begin[i], unit_begin[i + 1]).
  constexpr int64_t kRowUnit = 16;
  // Below this many multiply-adds per thread, waking workers costs more than it saves.
  constexpr int64_t kMinWorkPerThread = int64_t{1} << 16;
  std::vector<int64_t> unit_begin(ps.size() + 1, 0);
  int64_t work = 0;  // multiply-adds of all row units, per token
  for (size_t i = 0; i < ps.size(); ++i) {
    TANDEM_CHECK(ps[i].n_tokens == n_tokens, "run_linears: problems differ in token count");
    unit_begin[i + 1] = unit_begin[i] + ceil_div(ps[i].out, kRowUnit);
    work += ceil_div(ps[i].out, kRowUnit) * kRowUnit * ps[i].in;
  }
  const int64_t row_units = unit_begin.back();
  const int threads = ctx.pool->size();
  int64_t tok_parts = 1;
  if (row_units < threads) tok_parts = std::min(ceil_div(n_tokens, 4), ceil_div(threads, row_units));
  const int64_t tok_per_part = ceil_div(n_tokens, tok_parts);
  const int64_t units = row_units * tok_parts;
  const int64_t work_per_unit = std::max<int64_t>(1, work / row_units * tok_per_part);
  const int64_t grain = std::max<int64_t>(1, kMinWorkPerThread / work_per_unit);
  const LinearRowsFn fn = ctx.kernels->linear_rows;
  // Balanced: a thread that finishes early takes units from the other's end (see ThreadPool).
  ctx.pool->parallel_for_balanced(units, grain, [&](int64_t ub, int64_t ue) {
    for (int64_t u = ub; u < ue;) {
      // Consecutive units of one problem and token part form one row range, streamed in one pass.
      const int64_t part = u / row_units, ru = u - part * row_units;
      const size_t i = static_cast<size_t>(
          std::upper_bound(unit_begin.begin(), unit_begin.end(), ru) - unit_begin.begin() - 1);
      const int64_t run_end = std::min(ue, part * row_units + unit_begin[i + 1]);
      const LinearProblem& p = ps[i];
      const int64_t r0 = (ru - unit_begin[i]) * kRowUnit;
      const int64_t r1 = std::min(p.out, (run_end - part * row_units - unit_begin[i]) * kRowUnit);
      const int64_t t0 = part * tok_per_part, t1 = std::min(n_tokens, t0 + tok_per_part);
      if (t0 < t1) fn(p, r0, r1, t0, t1);
      u = run_end;
    }
  });
}

void run_linear(const CpuContext& ctx, const LinearProblem& p) {
  run_linears(ctx, {&p, 1});
}

namespace {

/// x as the [T, in] rows of a linear whose y is `y`; T from x's leading dimension.
int64_t check_linear_shapes(const Tensor& x, const PreparedLinear& pl, const Tensor& y, const Tensor& w,
                            std::string_view what) {
  const int64_t in = pl.in(), out = pl.out();
  // Rows are the leading dimension; the rest of each row must hold exactly `in` (or `out`) values, so
  // callers may pass [T, heads, D] views without reshaping.
  const int64_t T = x.rank() >= 1 ? x.dim(0) : 0;
  TANDEM_CHECK(x.dtype == DType::kF32 && x.rank() >= 2 && x.numel() == T * in,
               "{}: x must be f32 [T, {}], got {} {}", what, in, dtype_name(x.dtype), x.shape.str());
  TANDEM_CHECK(y.dtype == DType::kF32 && y.rank() >= 2 && y.dim(0) == T && y.numel() == T * out,
               "{}: y must be f32 [{}, {}] for x {} and weight {}, got {} {}", what, T, out, x.shape.str(),
               w.shape.str(), dtype_name(y.dtype), y.shape.str());
  const char* xb = static_cast<const char*>(x.data);
  const char* yb = static_cast<const char*>(y.data);
  TANDEM_CHECK(T == 0 || xb + x.nbytes() <= yb || yb + y.nbytes() <= xb, "{}: y must not overlap x", what);
  return T;
}

}  // namespace

void linears(const CpuContext& ctx, const Tensor& x, std::span<const LinearWeight* const> ws,
             std::span<const Tensor> ys) {
  TANDEM_CHECK(ws.size() == ys.size(), "linears: {} weights for {} outputs", ws.size(), ys.size());
  std::vector<PreparedLinear> pls;
  std::vector<LinearProblem> ps;
  pls.reserve(ws.size());
  for (size_t i = 0; i < ws.size(); ++i) {
    pls.emplace_back(*ws[i], "linears");
    const int64_t T = check_linear_shapes(x, pls[i], ys[i], ws[i]->weight, "linears");
    TANDEM_CHECK(pls[i].in() == pls[0].in(), "linears: weights differ in in_features ({} vs {})", pls[i].in(),
                 pls[0].in());
    for (size_t j = 0; j < i; ++j) {
      const char* a = static_cast<const char*>(ys[i].data);
      const char* b = static_cast<const char*>(ys[j].data);
      TANDEM_CHECK(T == 0 || a + ys[i].nbytes() <= b || b + ys[j].nbytes() <= a, "linears: outputs {} and {} overlap",
                   j, i);
    }
    ps.push_back(pls[i].problem(x.ptr<const float>(), pls[i].in(), nullptr, T, ys[i].ptr<float>(), pls[i].out(), 0));
  }
  run_linears(ctx, ps);
}

void linear(const CpuContext& ctx, const Tensor& x, const LinearWeight& w, const Tensor& y) {
  const PreparedLinear pl(w, "linear");
  const int64_t T = check_linear_shapes(x, pl, y, w.weight, "linear");
  run_linear(ctx, pl.problem(x.ptr<const float>(), pl.in(), nullptr, T, y.ptr<float>(), pl.out(), 0));
}

}  // namespace tandem::ops::cpu
