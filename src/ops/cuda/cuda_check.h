// The CUDA error path: every runtime call and kernel launch is checked, and a failure throws tandem::Error
// naming the op and the shapes it ran on (not just the CUDA error string).
#pragma once

#include <cuda_runtime_api.h>

#include "core/error.h"

namespace tandem::ops::cuda {

/// Throws tandem::Error "<what>: <cuda error name>: <description>" when `status` is not cudaSuccess.
inline void check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess)
    fail("CUDA: {}: {}: {}", what, cudaGetErrorName(status), cudaGetErrorString(status));
}

}  // namespace tandem::ops::cuda

/// CUDA_CHECK(call, "fmt", args...): runs `call`; on failure throws with the formatted context.
#define CUDA_CHECK(call, ...) ::tandem::ops::cuda::check((call), ::fmt::format(__VA_ARGS__))
