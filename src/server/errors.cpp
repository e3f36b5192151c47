#include "server/errors.h"

namespace tandem::server {

ApiError::ApiError(int status, const std::string& message, std::string param, std::string code)
    : std::runtime_error(message), status_(status), param_(std::move(param)), code_(std::move(code)) {}

std::string ApiError::type() const { return status_ >= 500 ? "server_error" : "invalid_request_error"; }

nlohmann::json ApiError::to_json() const {
  nlohmann::json e = {{"message", what()},
                      {"type", type()},
                      {"param", param_.empty() ? nlohmann::json(nullptr) : nlohmann::json(param_)},
                      {"code", code_.empty() ? nlohmann::json(nullptr) : nlohmann::json(code_)}};
  return {{"error", e}};
}

std::string anthropic_error_type(int status) {
  switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
  }
}

nlohmann::ordered_json error_body(const ApiError& e, ErrorShape shape) {
  if (shape == ErrorShape::kOpenAi) return nlohmann::ordered_json(e.to_json());
  return {{"type", "error"}, {"error", {{"type", anthropic_error_type(e.status())}, {"message", e.what()}}}};
}

void bad_request(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, message, param, code);
}

}  // namespace tandem::server
