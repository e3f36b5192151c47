// The CUDA backend (Hopper, sm_90a). One instance per GPU, owning that GPU's stream and memory: every op is
// enqueued on the backend's stream, and only to_host() waits for it, so a forward pass runs without host
// synchronisation until its results are read. Multi-GPU runs one backend per device (the communicator of
// the tensor-parallel issue plugs into each backend's stream).
#pragma once

#include <memory>
#include <string>

#include "ops/ops.h"

namespace tandem::ops {

/// The backend of CUDA device `index`. Throws tandem::Error when there is no such device.
std::unique_ptr<Backend> make_cuda_backend(int index, int n_threads);

/// Number of CUDA devices visible; 0 with *why set when none can be used (no driver, no GPU).
int cuda_device_count(std::string* why);

}  // namespace tandem::ops
