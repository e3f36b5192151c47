// The cuBLASLt error path, beside cuda_check.h's: a failing call throws tandem::Error naming the op and the
// shapes it ran on, then cuBLAS's status name and description. The message is formatted only on failure (the
// prefill path checks several calls per linear).
#pragma once

#include <cublasLt.h>

#include <utility>

#include "core/error.h"

namespace tandem::ops::cuda {

/// Throws tandem::Error "cuBLASLt: <what>: <status name>: <description>" when `status` is not success.
template <class... Args>
void check_cublas(cublasStatus_t status, fmt::format_string<Args...> what, Args&&... args) {
  if (status != CUBLAS_STATUS_SUCCESS)
    fail("cuBLASLt: {}: {}: {}", fmt::format(what, std::forward<Args>(args)...), cublasLtGetStatusName(status),
         cublasLtGetStatusString(status));
}

}  // namespace tandem::ops::cuda

/// CUBLAS_CHECK(call, "fmt", args...): runs `call`; on failure throws with the formatted context.
#define CUBLAS_CHECK(call, ...) ::tandem::ops::cuda::check_cublas((call), __VA_ARGS__)
