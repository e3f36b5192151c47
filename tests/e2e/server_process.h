// Test harness for end-to-end tests: starts the real `tandem serve` binary on a free loopback port, waits
// for /health 200, and stops it with SIGTERM at the end (asserting a clean exit). Header-only: each e2e
// test executable includes it.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_backend.h"
#include "server/sse.h"

namespace tandem::test {

using Json = nlohmann::json;

/// The model the e2e tests serve: $TANDEM_TEST_MODEL, else the bundled models/tandem-tiny.
inline std::string test_model_dir() {
  if (const char* m = std::getenv("TANDEM_TEST_MODEL"); m && *m) return m;
  return std::string(TANDEM_SOURCE_DIR) + "/models/tandem-tiny";
}

inline std::string tandem_binary() { return TANDEM_CLI_BINARY; }

/// A port that was free a moment ago (bind to 0, read it back, release it).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return 0;
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

class ServerProcess {
 public:
  /// Starts `tandem serve --model <test model> --port <free> <extra...>`; with wait_ready, blocks until
  /// /health answers 200 (fails the test if the process exits or 180 s pass).
  /// model_dir replaces the test model (a test that stages its own copy of it).
  explicit ServerProcess(std::vector<std::string> extra = {}, bool wait_ready = true, std::string model_dir = "") {
    if (model_dir.empty()) model_dir = test_model_dir();
    ::signal(SIGPIPE, SIG_IGN);  // a server that closes a connection must not kill the test
    static int counter = 0;
    log_path_ = (std::filesystem::temp_directory_path() /
                 ("tandem-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".log"))
                    .string();
    for (int attempt = 0; attempt < 3 && pid_ <= 0; ++attempt) {
      port_ = free_port();
      std::vector<std::string> args = {tandem_binary(), "serve", "--model", model_dir, "--host", "127.0.0.1",
                                       "--port", std::to_string(port_), "--device", test_device()};
      args.insert(args.end(), extra.begin(), extra.end());
      launch(args);
      if (wait_ready && !wait_until_ready()) {
        const bool exited = !alive();
        if (exited && log().find("cannot listen") != std::string::npos) {  // the port was taken meanwhile
          pid_ = -1;
          continue;
        }
        ADD_FAILURE() << "tandem serve did not become ready; log:\n" << log();
        return;
      }
    }
  }

  ~ServerProcess() {
    if (pid_ > 0 && alive()) {
      const int status = stop();
      EXPECT_EQ(status, 0) << "tandem serve did not exit 0 after SIGTERM; log tail:\n" << log_tail();
    }
    if (!::testing::Test::HasFailure()) std::filesystem::remove(log_path_);
    else std::cerr << "server log kept at " << log_path_ << "\n";
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::unique_ptr<httplib::Client> client(int read_timeout_s = 300) const {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", port_);
    c->set_read_timeout(read_timeout_s);
    c->set_connection_timeout(10);
    return c;
  }

  bool alive() {
    if (pid_ <= 0) return false;
    if (exited_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  /// Polls /health until 200; false if the process died or the deadline passed.
  bool wait_until_ready(double timeout_s = 180.0) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!alive()) return false;
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(1);
      c.set_read_timeout(5);
      if (auto r = c.Get("/health"); r && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  /// Sends SIGTERM (without waiting).
  void terminate() { ::kill(pid_, SIGTERM); }

  /// SIGTERM, then waits up to `timeout_s` (SIGKILL after). Returns the exit code (128 + signal if killed).
  int stop(double timeout_s = 90.0) {
    if (alive()) ::kill(pid_, SIGTERM);
    return wait_exit(timeout_s);
  }

  int wait_exit(double timeout_s) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (alive() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (alive()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      exited_ = true;
      exit_status_ = 128 + SIGKILL;
    }
    return exit_status_;
  }

  std::string log() const {
    std::ifstream f(log_path_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  std::string log_tail(size_t n = 6000) const {
    const std::string l = log();
    return l.size() > n ? l.substr(l.size() - n) : l;
  }

  /// VmRSS of the server in KiB, from /proc.
  long rss_kb() const {
    std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(f, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
  }

 private:
  void launch(const std::vector<std::string>& args) {
    exited_ = false;
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // If the test process dies (a crash, a failed assertion that aborts), the server goes with it.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
  }

  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool exited_ = false;
  int exit_status_ = -1;
};

// ---- small client helpers ---------------------------------------------------------------------------------

struct HttpResult {
  int status = 0;  // 0: transport error
  std::string body;
  Json json() const { return Json::parse(body); }
};

inline HttpResult post(httplib::Client& c, const std::string& path, const std::string& body) {
  auto r = c.Post(path, body, "application/json");
  if (!r) return {0, httplib::to_string(r.error())};
  return {r->status, r->body};
}
inline HttpResult post(httplib::Client& c, const std::string& path, const Json& body) {
  return post(c, path, body.dump());
}
inline HttpResult get(httplib::Client& c, const std::string& path) {
  auto r = c.Get(path);
  if (!r) return {0, httplib::to_string(r.error())};
  return {r->status, r->body};
}

/// A streaming POST: the raw bytes, and each event's data. `stop_after` > 0 closes the connection after that
/// many events (a client that goes away mid-stream).
struct StreamResult {
  int status = 0;
  std::string raw;
  std::vector<std::string> events;
  bool cancelled = false;
};
/// `body` is sent as is (a body whose key order matters is built as ordered_json and dumped).
inline StreamResult post_stream_text(httplib::Client& c, const std::string& path, const std::string& body,
                                     int stop_after = 0) {
  StreamResult out;
  server::SseParser parser;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    out.raw.append(data, n);
    for (auto& e : parser.push(std::string_view(data, n))) out.events.push_back(std::move(e));
    if (stop_after > 0 && static_cast<int>(out.events.size()) >= stop_after) {
      out.cancelled = true;
      return false;
    }
    return true;
  };
  auto r = c.send(req);
  if (r) out.status = r->status;
  else if (out.cancelled) out.status = 200;
  if (r && r->status != 200 && out.raw.empty()) out.raw = r->body;
  return out;
}
inline StreamResult post_stream(httplib::Client& c, const std::string& path, const Json& body, int stop_after = 0) {
  return post_stream_text(c, path, body.dump(), stop_after);
}

/// Asserts the OpenAI error shape and status; returns the error object.
inline Json expect_error(const HttpResult& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  Json j;
  try {
    j = Json::parse(r.body);
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": error body is not JSON: " << r.body;
    return Json();
  }
  EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object()) << what << ": " << r.body;
  if (!j.contains("error")) return Json();
  const Json& e = j["error"];
  EXPECT_TRUE(e.contains("message") && e["message"].is_string() && !e["message"].get<std::string>().empty())
      << what << ": " << r.body;
  EXPECT_TRUE(e.contains("type") && e["type"].is_string()) << what << ": " << r.body;
  EXPECT_TRUE(e.contains("param") && (e["param"].is_null() || e["param"].is_string())) << what << ": " << r.body;
  EXPECT_TRUE(e.contains("code") && (e["code"].is_null() || e["code"].is_string())) << what << ": " << r.body;
  return e;
}

/// Value of an unlabeled (or exactly labeled) sample in a Prometheus exposition; NaN if absent.
inline double metric(const std::string& text, const std::string& sample) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(sample + " ", 0) == 0) return std::stod(line.substr(sample.size() + 1));
  }
  return std::nan("");
}

}  // namespace tandem::test
