// The official OpenAI Node SDK (npm `openai`, pinned in tests/npm/package.json) as a real client: starts the
// server, runs `node --test tests/e2e/openai_node/*.test.mjs` against it, and requires node's runner to pass.
// scripts/setup installs the package (`make test` runs it first).
#include <cstdio>
#include <filesystem>

#include "e2e/server_process.h"

namespace tandem::test {
namespace {

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

TEST(OpenAiNodeSdk, CompletionsChatStreamingAndErrors) {
  const std::filesystem::path src(TANDEM_SOURCE_DIR);
  const std::filesystem::path npm = src / "tests/npm";
  ASSERT_TRUE(std::filesystem::exists(npm / "node_modules/openai/package.json"))
      << "the openai npm package is not installed: run scripts/setup (it runs npm install in tests/npm)";
  ASSERT_EQ(std::system("node --version > /dev/null 2>&1"), 0) << "node is not installed: run scripts/setup";

  ServerProcess s;
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  const std::string model = get(*c, "/v1/models").json()["data"][0]["id"];

  std::string files;
  for (const auto& e : std::filesystem::directory_iterator(src / "tests/e2e/openai_node"))
    if (e.path().string().ends_with(".test.mjs")) files += " " + shell_quote(e.path().string());
  ASSERT_FALSE(files.empty());
  const std::string cmd = "TANDEM_BASE_URL=" + shell_quote(s.base_url() + "/v1") + " TANDEM_MODEL=" +
                          shell_quote(model) + " TANDEM_NPM_DIR=" + shell_quote(npm.string()) +
                          " node --test" + files + " 2>&1";
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
