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

void bad_request(const std::string& param, const std::string& message, const std::string& code) {
  throw ApiError(400, message, param, code);
}

nlohmann::json error_json(int status, const std::string& message, const std::string& code) {
  return ApiError(status, message, "", code).to_json();
}

}  // namespace tandem::server
