// Runs this build's tandem binary (TANDEM_CLI_BINARY) with arguments through the shell and captures its exit code
// and combined stdout + stderr (the CLI tests: cli_errors_test, memory_plan_test, dummy_load_test).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tandem::test {

struct CliResult {
  int code;         // exit status, or 128 + signal
  std::string out;  // stdout and stderr
};

inline CliResult run_tandem(const std::string& args) {
  const std::string cmd = std::string(TANDEM_CLI_BINARY) + " " + args + " 2>&1";
  std::array<char, 4096> buf{};
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  while (p && fgets(buf.data(), buf.size(), p)) out += buf.data();
  const int status = p ? pclose(p) : -1;
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), out};
}

}  // namespace tandem::test
