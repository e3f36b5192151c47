// API errors: one exception type carrying the HTTP status, rendered as OpenAI's error object
// {"error": {"message", "type", "param", "code"}} — the shape the official SDKs parse into BadRequestError,
// NotFoundError, ... — or, on the Anthropic routes, as Anthropic's {"type": "error", "error": {"type",
// "message"}}. Handlers throw ApiError; the HTTP boundary catches it (and everything else) and writes the shape
// of the route.
#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

namespace tandem::server {

class ApiError : public std::runtime_error {
 public:
  /// param and code are null in the body when empty.
  ApiError(int status, const std::string& message, std::string param = "", std::string code = "");

  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  /// OpenAI's error type for the status: "invalid_request_error" (4xx), "server_error" (5xx).
  std::string type() const;
  nlohmann::json to_json() const;

 private:
  int status_;
  std::string param_;
  std::string code_;
};

/// Which API's error body a route answers with.
enum class ErrorShape { kOpenAi, kAnthropic };

/// Anthropic's error type for an HTTP status: invalid_request_error (400 and other 4xx), authentication_error
/// (401), permission_error (403), not_found_error (404), request_too_large (413), rate_limit_error (429),
/// overloaded_error (503, 529), api_error (other 5xx).
std::string anthropic_error_type(int status);

/// The body of `e` in `shape` (Anthropic's keys in Anthropic's order).
nlohmann::ordered_json error_body(const ApiError& e, ErrorShape shape);

/// 400 invalid_request_error naming the offending field.
[[noreturn]] void bad_request(const std::string& param, const std::string& message,
                              const std::string& code = "invalid_value");

}  // namespace tandem::server
