#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      // The AVX-512 kernels use F (f16 conversion, masks), BW (16-bit masked loads), VL and DQ.
      return isa_supported(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  }
  return false;
}

Isa best_isa() {
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

const KernelTable& kernel_table(Isa isa) {
  TANDEM_CHECK(isa_supported(isa), "cpu backend: this machine does not support the {} kernels",
               isa_name(isa));
  switch (isa) {
    case Isa::kScalar:
      return scalar_kernels();
    case Isa::kAvx2:
      return avx2_kernels();
    case Isa::kAvx512:
      return avx512_kernels();
  }
  fail("cpu backend: unknown ISA {}", static_cast<int>(isa));
}

const AttentionKernels& attention_kernels(const KernelTable& table, DType kv_dtype) {
  switch (kv_dtype) {
    case DType::kF32:
      return table.attn_f32;
    case DType::kBF16:
      return table.attn_bf16;
    case DType::kF8E4M3:
      return table.attn_f8;
    default:
      fail("attention: no kernels for a KV cache of {}", dtype_name(kv_dtype));
  }
}

}  // namespace tandem::ops::cpu
