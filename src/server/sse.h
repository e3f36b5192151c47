// Server-sent events framing used by the OpenAI API and SGLang: one `data: <json>\n\n` event per chunk and a
// final `data: [DONE]\n\n`. Errors inside a stream are an event carrying {"error": {...}}, which the OpenAI
// SDKs raise as APIError. Anthropic's Messages API names every event (`event: <type>\ndata: <json>\n\n`, the
// name repeating the data's "type"; its SDKs skip events without a name) and has no [DONE].
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace tandem::server {

inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

/// `data: {compact json}\n\n`.
std::string sse_event(const nlohmann::json& j);
/// `event: {name}\ndata: {compact json}\n\n`.
std::string sse_event(std::string_view name, const nlohmann::ordered_json& j);

/// Client side (load generator, tests): splits a byte stream into events and returns each event's data
/// (its `data:` lines joined by newlines; `:` comment lines and other fields ignored; \n or \r\n endings).
class SseParser {
 public:
  /// Feeds bytes; returns the data of every event completed by them.
  std::vector<std::string> push(std::string_view bytes);
  /// Bytes of an incomplete event still buffered.
  size_t pending() const { return buf_.size(); }

 private:
  std::string buf_;
};

}  // namespace tandem::server
