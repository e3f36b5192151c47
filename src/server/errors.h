// API errors: one exception type carrying the HTTP status, rendered as OpenAI's error object
// {"error": {"message", "type", "param", "code"}} — the shape the official SDKs parse into BadRequestError,
// NotFoundError, ... Handlers throw ApiError; the HTTP boundary catches it (and everything else).
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

/// 400 invalid_request_error naming the offending field.
[[noreturn]] void bad_request(const std::string& param, const std::string& message,
                              const std::string& code = "invalid_value");

/// The error body for a status httplib produced itself (404 route, 413 body, ...) or a handler left empty.
nlohmann::json error_json(int status, const std::string& message, const std::string& code);

}  // namespace tandem::server
