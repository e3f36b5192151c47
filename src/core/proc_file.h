// Reading /proc: the "Key:   N kB" lines of /proc/meminfo and /proc/self/status.
#pragma once

#include <cstddef>
#include <string_view>

namespace tandem {

/// The value of the line starting with `key` (e.g. "MemAvailable:") in the /proc file at `path`, in bytes (the
/// file gives kB); 0 when the file or the line is missing.
size_t proc_kib_field_bytes(const char* path, std::string_view key);

}  // namespace tandem
