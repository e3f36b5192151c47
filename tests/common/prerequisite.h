// Missing prerequisites of a test (an npm package, a python3 module, a generated fixture): on a developer's
// machine the test is skipped with a message saying what is missing and how to install it; under CI (the
// environment variable CI is "true", as GitHub Actions, GitLab and .ci/run set it) it fails instead, so a
// broken setup cannot turn the suite green by skipping. Policy: docs/reliability.md.
//
//   TANDEM_REQUIRE_OR_SKIP(std::filesystem::exists(p), p << " is missing: run scripts/setup");
//
// Use it in a TEST body or a fixture's SetUp (it returns from the enclosing void function); in CI it raises a
// fatal failure (GTEST_FAIL), so a fixture's test body does not run after a SetUp that failed. Hardware the
// machine lacks (an instruction set) is not a prerequisite: keep GTEST_SKIP for that.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace tandem::test {

/// True when missing prerequisites must fail the test: the environment variable CI is "true".
inline bool prerequisites_required() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace tandem::test

/// Skips the test (fails it under CI=true) unless `cond`; `message` (streamable, evaluated only when `cond` is
/// false) says what is missing and how to install it.
#define TANDEM_REQUIRE_OR_SKIP(cond, message)                                                     \
  switch (0)                                                                                      \
  case 0:                                                                                         \
  default:                                                                                        \
    if (cond) {                                                                                   \
    } else if (::tandem::test::prerequisites_required())                                          \
      GTEST_FAIL() << "missing prerequisite (CI=true: failing instead of skipping): " << message; \
    else                                                                                          \
      GTEST_SKIP() << message
