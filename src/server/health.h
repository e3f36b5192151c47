// Readiness that means something: a real one-token greedy generation through the engine, as SGLang's
// /health_generate does. Used once at start-up (the server reports ready only after it succeeds) and by
// every /health_generate call.
#pragma once

#include <string>

#include "server/server_context.h"

namespace tandem::server {

/// Generates one greedy token from a short prompt. Returns "" on success, else why it failed (engine
/// error, or no token within `timeout_s`, in which case the probe is aborted).
std::string probe_generation(ServerContext& ctx, double timeout_s);

}  // namespace tandem::server
