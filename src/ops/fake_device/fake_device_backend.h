// The fake-device backend, for CI machines without a GPU. It runs the CPU kernels, but the memory it hands
// out (activations, KV cache, step arenas) is "device" memory that host code cannot read: its pointers carry a
// tag that makes them non-canonical addresses, so a host dereference faults at once instead of working by
// accident. Only this backend's own ops untag them. Running the engine, spec and server tests on it catches the
// class of bug a GPU would expose (host code reading logits, ids or metadata that live on the device) on a
// 2-core machine.
#pragma once

#include <memory>

#include "ops/ops.h"

namespace tandem::ops {

/// Wraps a CPU backend with `n_threads` threads (0: all).
std::unique_ptr<Backend> make_fake_device_backend(int n_threads = 0);

/// Whether p carries the fake-device tag (test helper).
bool is_fake_device_pointer(const void* p);

}  // namespace tandem::ops
