// CPU-internal entry points beyond ops.h's make_cpu_backend (tests and benchmarks pin the kernel ISA).
#pragma once

#include <memory>

#include "ops/cpu/dispatch.h"
#include "ops/ops.h"

namespace tandem::ops::cpu {

/// A CPU backend running `isa`'s kernels on n_threads threads (0: all hardware threads). Fails when this
/// machine cannot run `isa` (check isa_supported first).
std::unique_ptr<Backend> make_cpu_backend_for_isa(Isa isa, int n_threads);

}  // namespace tandem::ops::cpu
