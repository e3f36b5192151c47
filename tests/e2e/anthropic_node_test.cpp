// The official Anthropic TypeScript SDK (npm `@anthropic-ai/sdk`, pinned in tests/npm/package.json) as a real
// client of /v1/messages: starts the server with speculation (a fixed K = 3, so several tokens arrive per
// step), runs `node --test tests/e2e/anthropic_node/*.test.mjs` against it, and requires node's runner to
// pass. scripts/setup installs the package (`make test` runs it first); a missing SDK or node skips the test
// on a developer's machine and fails it under CI=true (tests/common/prerequisite.h).
#include <cstdio>
#include <filesystem>

#include "common/prerequisite.h"
#include "e2e/server_process.h"

namespace tandem::test {
namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

TEST(AnthropicNodeSdk, MessagesStreamingToolsAndErrors) {
  const std::filesystem::path src(TANDEM_SOURCE_DIR);
  const std::filesystem::path npm = src / "tests/npm";
  TANDEM_REQUIRE_OR_SKIP(
      std::filesystem::exists(npm / "node_modules/@anthropic-ai/sdk/package.json"),
      "the @anthropic-ai/sdk npm package is not installed: run scripts/setup (it runs npm install "
      "in tests/npm)");
  TANDEM_REQUIRE_OR_SKIP(std::system("node --version > /dev/null 2>&1") == 0,
                         "node is not installed: run scripts/setup");

  ServerProcess s(
      {"--speculative-algorithm", "NEXTN", "--speculative-policy", "fixed", "--speculative-num-steps", "3"});
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  const std::string model = get(*c, "/v1/models").json()["data"][0]["id"];

  std::string files;
  for (const auto& e : std::filesystem::directory_iterator(src / "tests/e2e/anthropic_node"))
    if (e.path().string().ends_with(".test.mjs")) files += " " + shell_quote(e.path().string());
  ASSERT_FALSE(files.empty());
  const std::string cmd = "TANDEM_BASE_URL=" + shell_quote(s.base_url()) +
                          " TANDEM_MODEL=" + shell_quote(model) +
                          " TANDEM_NPM_DIR=" + shell_quote(npm.string()) + " node --test" + files + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  std::cout << out;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "node --test failed:\n" << out;
  EXPECT_NE(out.find("# pass"), std::string::npos) << out;
  EXPECT_NE(out.find("# fail 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace tandem::test
