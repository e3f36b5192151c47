// Error reporting: CHECK with std::source_location (after mini-sglang's RuntimeCheck).
// Load-time and request-validation failures throw tandem::Error; callers at process or request boundaries
// catch it and turn it into an exit code or an API error. Nothing throws across a thread boundary.
#pragma once

#include <fmt/format.h>

#include <source_location>
#include <stdexcept>
#include <string>

namespace tandem {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

[[noreturn]] inline void fail_at(const std::source_location& loc, const std::string& msg) {
  (void)loc;
  throw Error(msg);
}

/// Throws tandem::Error with a formatted message. The message is the user-facing text; keep it specific
/// (file, tensor, expected vs actual).
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tandem

// CHECK(cond, "fmt", args...): throws tandem::Error naming the failed condition and the call site.
#define TANDEM_CHECK(cond, ...)                                                                   \
  do {                                                                                            \
    if (!(cond)) [[unlikely]] {                                                                   \
      const auto loc_ = std::source_location::current();                                          \
      throw ::tandem::Error(fmt::format("{} ({}:{}: check '{}' failed)", fmt::format(__VA_ARGS__), \
                                        loc_.file_name(), loc_.line(), #cond));                   \
    }                                                                                             \
  } while (0)
