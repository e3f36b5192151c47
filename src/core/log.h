// Logging goes through spdlog's default logger to stderr; stdout is reserved for command output (JSON).
#pragma once

#include <spdlog/spdlog.h>

namespace tandem::log {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;
}  // namespace tandem::log
