// Test support for the chat-template tests: runs the reference renderer (Python Jinja2 configured like
// Hugging Face, tools/render_chat_template.py) and renders the same requests with tandem's interpreter in
// the same result format, so tests can compare them case by case.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "template/chat_template.h"

namespace tandem::tmpl::testing {

using nlohmann::ordered_json;

inline std::string source_dir() {
  return TANDEM_SOURCE_DIR;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs tools/render_chat_template.py with /usr/bin/python3 on `request` ({"batch": [{"template": ...,
/// "cases": [...]}, ...]} or a single request) and returns its parsed JSON output. Throws on failure.
inline ordered_json run_python_oracle(const ordered_json& request) {
  std::random_device rd;
  const auto path = std::filesystem::temp_directory_path() /
                    ("tandem_template_oracle_" + std::to_string(rd()) + "_" + std::to_string(rd()) + ".json");
  {
    std::ofstream out(path, std::ios::binary);
    out << request.dump();
  }
  const std::string cmd =
      "/usr/bin/python3 " + source_dir() + "/tools/render_chat_template.py " + path.string() + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::string output;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  std::filesystem::remove(path);
  if (status != 0) {
    throw std::runtime_error("reference renderer failed (needs /usr/bin/python3 with python3-jinja2): " +
                             cmd + "\n" + output.substr(0, 4000));
  }
  return ordered_json::parse(output);
}

/// Renders one request with tandem's interpreter: per case the string, or {"error", "type"} like the oracle.
inline ordered_json run_tandem(const ordered_json& request) {
  const std::string source = request.contains("template_file")
                                 ? read_file(request["template_file"].get<std::string>())
                                 : request["template"].get<std::string>();
  ordered_json results = ordered_json::array();
  auto error = [](const TemplateError& e) {
    return ordered_json{{"error", e.message()}, {"type", e.kind()}, {"where", std::string(e.what())}};
  };
  try {
    const ChatTemplate tmpl = ChatTemplate::parse(source);
    for (const auto& c : request["cases"]) {
      try {
        results.push_back(tmpl.render(c));
      } catch (const TemplateError& e) {
        results.push_back(error(e));
      }
    }
  } catch (const TemplateError& e) {
    for (size_t i = 0; i < request["cases"].size(); ++i) results.push_back(error(e));
  }
  return results;
}

/// Where two renders first differ, for readable failure messages.
inline std::string first_difference(const std::string& expected, const std::string& actual) {
  size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  auto around = [i](const std::string& s) {
    const size_t from = i > 40 ? i - 40 : 0;
    // The window may cut a UTF-8 sequence; replace rather than throw.
    return ordered_json(s.substr(from, 80)).dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  };
  return "first difference at byte " + std::to_string(i) + ":\n  python: " + around(expected) +
         "\n  tandem: " + around(actual);
}

/// Compares one oracle result with one tandem result. Both succeed with identical bytes, or both fail; when
/// `same_kind` the exception class must match too, and raise_exception messages (type "TemplateError")
/// must match verbatim.
inline ::testing::AssertionResult same_outcome(const ordered_json& python, const ordered_json& tandem,
                                               bool same_kind = true) {
  const bool py_error = python.is_object();
  const bool tandem_error = tandem.is_object();
  if (!py_error && !tandem_error) {
    if (python == tandem) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << first_difference(python.get<std::string>(), tandem.get<std::string>());
  }
  if (py_error != tandem_error) {
    return ::testing::AssertionFailure() << "python: " << python.dump() << "\n  tandem: " << tandem.dump();
  }
  if (same_kind && python["type"] != tandem["type"]) {
    return ::testing::AssertionFailure()
           << "different error kinds; python: " << python.dump() << "\n  tandem: " << tandem.dump();
  }
  if (python["type"] == "TemplateError" && python["error"] != tandem["error"]) {
    return ::testing::AssertionFailure()
           << "raise_exception message differs; python: " << python.dump() << "\n  tandem: " << tandem.dump();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace tandem::tmpl::testing
