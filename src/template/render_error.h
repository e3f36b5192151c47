// Internal error type of the template interpreter. Value operations throw it without a position (they do not
// know where they are in the template); the renderer attaches the line and column of the innermost
// expression or statement being evaluated, and ChatTemplate turns it into tandem::tmpl::TemplateError.
#pragma once

#include <fmt/format.h>

#include <exception>
#include <string>
#include <utility>

namespace tandem::tmpl {

/// A position in the template source: 1-based line, 1-based column in code points.
struct SourcePos {
  int line = 0;
  int column = 0;
};

class RenderError : public std::exception {
 public:
  /// `kind` is the Python/Jinja exception class the reference would raise (TypeError, UndefinedError, ...).
  RenderError(std::string kind, std::string message) : kind_(std::move(kind)), message_(std::move(message)) {}

  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& kind() const { return kind_; }
  const std::string& message() const { return message_; }
  bool has_pos() const { return pos_.line > 0; }
  const SourcePos& pos() const { return pos_; }
  void set_pos(SourcePos pos) { pos_ = pos; }

 private:
  std::string kind_;
  std::string message_;
  SourcePos pos_;
};

template <typename... Args>
[[noreturn]] void throw_error(const char* kind, fmt::format_string<Args...> f, Args&&... args) {
  throw RenderError(kind, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace tandem::tmpl
