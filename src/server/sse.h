// Server-sent events framing used by the OpenAI API and SGLang: one `data: <json>\n\n` event per chunk and a
// final `data: [DONE]\n\n`. Errors inside a stream are an event carrying {"error": {...}}, which the OpenAI
// SDKs raise as APIError.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace tandem::server {

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

/// `data: {compact json}\n\n`.
std::string sse_event(const nlohmann::json& j);

}  // namespace tandem::server
