// Machine ceilings measured on this host, for `tandem bench` to put achieved decode bandwidth and prefill
// FLOP/s in proportion.
#pragma once

#include <cstddef>

#include "core/thread_pool.h"

namespace tandem::ops::cpu {

/// Multi-threaded memcpy between two buffers of `bytes` each (far larger than the LLC). Returns the best
/// of a few runs as (bytes read + bytes written) / s in GB/s, i.e. 2 * bytes / time; write-allocate
/// traffic, if the copy does not use streaming stores, is not counted.
double measure_copy_bandwidth_gbs(ThreadPool& pool, size_t bytes = size_t{1} << 30);

/// Multi-threaded streaming read (vector sum) of a buffer of `bytes`. Best of a few runs, bytes / s in GB/s.
/// This is the ceiling for decode, which only reads weights.
double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes);

/// FMA throughput of all pool threads with the widest vector ISA available, in GFLOP/s (an FMA counts 2).
double measure_peak_gflops(ThreadPool& pool);

/// MemAvailable of /proc/meminfo in bytes; 0 when it cannot be read.
size_t mem_available_bytes();

}  // namespace tandem::ops::cpu
