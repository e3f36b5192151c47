// What every CPU op implementation receives: the backend's thread pool and its ISA's kernels.
#pragma once

#include "core/thread_pool.h"
#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {

struct CpuContext {
  ThreadPool* pool = nullptr;
  const KernelTable* kernels = nullptr;
};

}  // namespace tandem::ops::cpu
