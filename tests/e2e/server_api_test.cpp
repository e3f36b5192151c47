// End-to-end tests of `tandem serve` over HTTP: every endpoint's happy path and shapes, streaming framing,
// stop strings across token boundaries, n > 1, echo, logprobs, metrics, health, draining, disconnects, and
// every bad-input case with its status and the OpenAI error shape. Expected values come from independent
// requests (non-streaming vs streaming, /tokenize vs usage, /generate ids vs /detokenize), never from the
// code path under test alone.
#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <thread>

#include "e2e/server_process.h"

namespace tandem::test {
namespace {

const char* kPrompt = "The quick brown fox jumps over the lazy dog. Then the fox";

class ServerApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess({"--max-running-requests", "8"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_ && server_->alive()) << "server not running";
    c_ = server_->client();
  }
  Json ok_post(const std::string& path, const Json& body) {
    const HttpResult r = post(*c_, path, body);
    EXPECT_EQ(r.status, 200) << path << " " << body.dump() << " -> " << r.body;
    return r.status == 200 ? r.json() : Json();
  }
  Json ok_get(const std::string& path) {
    const HttpResult r = get(*c_, path);
    EXPECT_EQ(r.status, 200) << path << " -> " << r.body;
    return r.status == 200 ? r.json() : Json();
  }
  std::string model_name() { return ok_get("/v1/models")["data"][0]["id"].get<std::string>(); }
  int64_t max_model_len() { return ok_get("/get_model_info")["max_model_len"].get<int64_t>(); }
  int64_t vocab_size() { return ok_get("/get_model_info")["vocab_size"].get<int64_t>(); }
  int64_t count_tokens(const std::string& text) {
    return ok_post("/tokenize", {{"prompt", text}})["count"].get<int64_t>();
  }

  static ServerProcess* server_;
  std::unique_ptr<httplib::Client> c_;
};
ServerProcess* ServerApi::server_ = nullptr;

/// Event data parsed as JSON, checking the raw framing: only `data: ...\n\n` events, ending in [DONE].
std::vector<Json> check_framing(const StreamResult& s) {
  std::vector<Json> out;
  EXPECT_EQ(s.status, 200) << s.raw;
  static const std::regex event_re("data: [^\n]*\n\n");
  std::string rest = s.raw;
  std::smatch m;
  size_t n = 0;
  while (!rest.empty()) {
    if (!std::regex_search(rest, m, event_re, std::regex_constants::match_continuous)) {
      ADD_FAILURE() << "bad SSE framing at: " << rest.substr(0, 200);
      break;
    }
    rest = m.suffix();
    ++n;
  }
  EXPECT_EQ(n, s.events.size());
  EXPECT_FALSE(s.events.empty());
  if (s.events.empty()) return out;
  EXPECT_EQ(s.events.back(), "[DONE]");
  EXPECT_TRUE(s.raw.size() >= 14 && s.raw.substr(s.raw.size() - 14) == "data: [DONE]\n\n");
  for (size_t i = 0; i + 1 < s.events.size(); ++i) {
    EXPECT_NE(s.events[i], "[DONE]") << "[DONE] before the end";
    out.push_back(Json::parse(s.events[i]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

/// A copy of the test model whose tokenizer.json is a FIFO: the server's load blocks reading it until the test
/// writes it, so the loading window lasts exactly as long as the test wants, however fast or busy the machine.
class HeldModelDir {
 public:
  HeldModelDir() {
    namespace fs = std::filesystem;
    dir_ = fs::temp_directory_path() / ("tandem-held-model-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const fs::path src = test_model_dir();
    for (const auto& e : fs::directory_iterator(src))  // copies (20 MB), so the copy is a checkpoint on its own
      if (e.path().filename() != "tokenizer.json") fs::copy_file(e.path(), dir_ / e.path().filename());
    tokenizer_json_ = read_text(src / "tokenizer.json");
    if (::mkfifo((dir_ / "tokenizer.json").c_str(), 0600) != 0) ADD_FAILURE() << "mkfifo failed";
  }
  ~HeldModelDir() { std::filesystem::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

  /// Lets the load finish: writes tokenizer.json into the FIFO once the server opens it (false if it never does
  /// while `alive` holds, within 180 s).
  template <class Alive>
  bool release(Alive alive) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    int fd = -1;
    while (fd < 0 && alive() && std::chrono::steady_clock::now() < deadline) {
      fd = ::open((dir_ / "tokenizer.json").c_str(), O_WRONLY | O_NONBLOCK);  // ENXIO until the reader opens
      if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (fd < 0) return false;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    size_t off = 0;
    while (off < tokenizer_json_.size()) {
      const ssize_t n = ::write(fd, tokenizer_json_.data() + off, tokenizer_json_.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::close(fd);
    return off == tokenizer_json_.size();
  }

 private:
  static std::string read_text(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::filesystem::path dir_;
  std::string tokenizer_json_;
};

TEST(ServerLifecycle, HealthIs503WhileLoadingThen200) {
  HeldModelDir held;
  ServerProcess s({}, /*wait_ready=*/false, held.path());
  // While the load is held: /health and generation answer 503 as soon as the server listens.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
  std::optional<HttpResult> health;
  while (!health && std::chrono::steady_clock::now() < deadline && s.alive()) {
    httplib::Client c("127.0.0.1", s.port());
    c.set_connection_timeout(1);
    if (auto r = c.Get("/health")) health = HttpResult{r->status, r->body};
    else std::this_thread::sleep_for(std::chrono::milliseconds(5));  // not listening yet
  }
  ASSERT_TRUE(health) << s.log_tail();
  const Json e = expect_error(*health, 503, "/health while loading");
  EXPECT_EQ(e.value("code", ""), "service_unavailable");
  auto c = s.client();
  expect_error(post(*c, "/v1/completions", {{"prompt", "hi"}, {"max_tokens", 1}}), 503,
               "/v1/completions while loading");
  expect_error(get(*c, "/health"), 503, "/health still loading");

  // Released: the server becomes ready and stays so.
  ASSERT_TRUE(held.release([&] { return s.alive(); })) << "the server never opened tokenizer.json\n" << s.log_tail();
  bool ready = false;
  while (!ready && std::chrono::steady_clock::now() < deadline && s.alive()) {
    const HttpResult r = get(*c, "/health");
    if (r.status == 200) {
      ready = true;
      EXPECT_EQ(r.json()["status"], "ok");
    } else {
      expect_error(r, 503, "/health while loading");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ASSERT_TRUE(ready) << s.log_tail();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get(*c, "/health").status, 200);
  EXPECT_EQ(post(*c, "/v1/completions", {{"prompt", "hi"}, {"max_tokens", 1}}).status, 200);
  EXPECT_NE(s.log().find("ready: http://127.0.0.1:" + std::to_string(s.port())), std::string::npos);
}

TEST(ServerLifecycle, SigtermDrainsInFlightRequestsAndExitsZero) {
  ServerProcess s;
  ASSERT_TRUE(s.alive());
  auto c = s.client();
  const int64_t max_len = get(*c, "/get_model_info").json()["max_model_len"].get<int64_t>();
  const Json body = {{"prompt", "Once upon a time"}, {"max_tokens", max_len - 16}, {"ignore_eos", true},
                     {"temperature", 0}, {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  std::atomic<bool> got_first{false};
  StreamResult result;
  std::thread t([&] {
    auto sc = s.client();
    server::SseParser parser;
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = body.dump();
    req.set_header("Content-Type", "application/json");
    req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) {
      result.raw.append(d, n);
      for (auto& e : parser.push(std::string_view(d, n))) result.events.push_back(e);
      got_first = true;
      return true;
    };
    auto r = sc->send(req);
    result.status = r ? r->status : 0;
  });
  while (!got_first) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.terminate();
  // Draining: health and new generations answer 503 while the stream keeps going.
  bool saw_503 = false;
  for (int i = 0; i < 500 && !saw_503; ++i) {
    const HttpResult h = get(*c, "/health");
    if (h.status == 503) {
      saw_503 = true;
      expect_error(h, 503, "/health while draining");
      expect_error(post(*c, "/v1/completions", Json{{"prompt", "hi"}, {"max_tokens", 1}}), 503,
                   "completion while draining");
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  t.join();
  EXPECT_TRUE(saw_503);
  const auto events = check_framing(result);
  ASSERT_GE(events.size(), 2u);
  const Json& usage = events.back()["usage"];
  EXPECT_EQ(usage["completion_tokens"].get<int64_t>(), max_len - 16) << "the in-flight request was cut short";
  EXPECT_EQ(s.wait_exit(60), 0) << s.log_tail();
}

// ---------------------------------------------------------------------------------------------------------

TEST_F(ServerApi, CompletionsShapesAndUsage) {
  const std::string model = model_name();
  const Json r = ok_post("/v1/completions", {{"model", model}, {"prompt", kPrompt}, {"max_tokens", 6},
                                              {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_TRUE(r.is_object());
  EXPECT_TRUE(r["id"].get<std::string>().rfind("cmpl-", 0) == 0) << r;
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_TRUE(r["created"].is_number_integer());
  EXPECT_EQ(r["model"], model);
  ASSERT_EQ(r["choices"].size(), 1u);
  const Json& ch = r["choices"][0];
  EXPECT_EQ(ch["index"], 0);
  EXPECT_TRUE(ch["text"].is_string());
  EXPECT_TRUE(ch["logprobs"].is_null());
  EXPECT_EQ(ch["finish_reason"], "length");
  const Json& u = r["usage"];
  EXPECT_EQ(u["prompt_tokens"].get<int64_t>(), count_tokens(kPrompt));
  EXPECT_EQ(u["completion_tokens"], 6);
  EXPECT_EQ(u["total_tokens"].get<int64_t>(), u["prompt_tokens"].get<int64_t>() + 6);

  // The same prompt through SGLang's /generate gives the ids; decoding them independently gives the text.
  const Json g = ok_post("/generate", {{"text", kPrompt},
                                       {"sampling_params", {{"max_new_tokens", 6}, {"temperature", 0},
                                                            {"ignore_eos", true}}}});
  ASSERT_EQ(g["output_ids"].size(), 6u);
  EXPECT_EQ(g["text"], ch["text"]);
  // skip_special_tokens=true in both; /detokenize keeps specials, so compare only when none were generated.
  const Json dt = ok_post("/detokenize", {{"tokens", g["output_ids"]}});
  const Json dts = ok_post("/generate", {{"text", kPrompt},
                                         {"sampling_params", {{"max_new_tokens", 6}, {"temperature", 0},
                                                              {"ignore_eos", true}, {"skip_special_tokens", false}}}});
  EXPECT_EQ(dt["prompt"], dts["text"]);

  // A token-id prompt is the same request.
  const Json ids = ok_post("/tokenize", {{"prompt", kPrompt}})["tokens"];
  const Json r2 = ok_post("/v1/completions", {{"prompt", ids}, {"max_tokens", 6}, {"temperature", 0},
                                               {"ignore_eos", true}});
  EXPECT_EQ(r2["choices"][0]["text"], ch["text"]);
  // model may also be omitted; max_tokens defaults to 16 (OpenAI's default), finishing earlier only at eos.
  const Json r3 = ok_post("/v1/completions", {{"prompt", kPrompt}, {"temperature", 0}, {"ignore_eos", true}});
  EXPECT_EQ(r3["usage"]["completion_tokens"], 16);
}

TEST_F(ServerApi, ChatCompletionsShapesAndUsage) {
  const Json messages = Json::array({{{"role", "system"}, {"content", "You are terse."}},
                                     {{"role", "user"}, {"content", "Say something about foxes."}}});
  const Json r = ok_post("/v1/chat/completions", {{"model", model_name()}, {"messages", messages}, {"max_tokens", 5},
                                                   {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_TRUE(r.is_object());
  EXPECT_TRUE(r["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  EXPECT_EQ(r["object"], "chat.completion");
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  const int64_t prompt_tokens = ok_post("/tokenize", {{"messages", messages}})["count"].get<int64_t>();
  EXPECT_EQ(r["usage"]["prompt_tokens"].get<int64_t>(), prompt_tokens);
  EXPECT_EQ(r["usage"]["completion_tokens"], 5);
  // Content parts are flattened to the same text.
  Json parts = messages;
  parts[1]["content"] = Json::array({{{"type", "text"}, {"text", "Say something "}},
                                     {{"type", "text"}, {"text", "about foxes."}}});
  const Json r2 = ok_post("/v1/chat/completions",
                          {{"messages", parts}, {"max_tokens", 5}, {"temperature", 0}, {"ignore_eos", true}});
  EXPECT_EQ(r2["choices"][0]["message"]["content"], r["choices"][0]["message"]["content"]);
  EXPECT_EQ(r2["usage"]["prompt_tokens"], r["usage"]["prompt_tokens"]);
  // max_completion_tokens is the newer name of max_tokens.
  const Json r3 = ok_post("/v1/chat/completions", {{"messages", messages}, {"max_completion_tokens", 3},
                                                    {"temperature", 0}, {"ignore_eos", true}});
  EXPECT_EQ(r3["usage"]["completion_tokens"], 3);
}

TEST_F(ServerApi, StreamingFramingMatchesNonStreaming) {
  // Completions, n = 2, with usage.
  const Json body = {{"prompt", kPrompt}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}, {"n", 2}};
  const Json full = ok_post("/v1/completions", body);
  Json sbody = body;
  sbody["stream"] = true;
  sbody["stream_options"] = {{"include_usage", true}};
  const auto events = check_framing(post_stream(*c_, "/v1/completions", sbody));
  ASSERT_GE(events.size(), 3u);
  std::map<int, std::string> text;
  std::map<int, int> finishes;
  std::set<int> finished;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const Json& e = events[i];
    EXPECT_EQ(e["object"], "text_completion");
    EXPECT_EQ(e["id"], events[0]["id"]);
    EXPECT_TRUE(e.contains("usage") && e["usage"].is_null()) << "usage must be null before the usage chunk";
    ASSERT_EQ(e["choices"].size(), 1u);
    const int idx = e["choices"][0]["index"];
    EXPECT_FALSE(finished.count(idx)) << "chunk after the finish_reason chunk of choice " << idx;
    text[idx] += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) {
      ++finishes[idx];
      finished.insert(idx);
      EXPECT_EQ(e["choices"][0]["finish_reason"], "length");
    }
  }
  const Json& last = events.back();
  EXPECT_TRUE(last["choices"].is_array() && last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 24);
  EXPECT_EQ(last["usage"]["prompt_tokens"], full["usage"]["prompt_tokens"]);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(finishes[i], 1);
    EXPECT_EQ(text[i], full["choices"][i]["text"].get<std::string>()) << "choice " << i;
  }

  // Without include_usage there is no usage field and no usage chunk.
  Json plain = body;
  plain["n"] = 1;
  plain["stream"] = true;
  const auto ev2 = check_framing(post_stream(*c_, "/v1/completions", plain));
  for (const auto& e : ev2) {
    EXPECT_FALSE(e.contains("usage"));
    EXPECT_EQ(e["choices"].size(), 1u);
  }

  // Chat: the first chunk carries the role, content follows, the last chunk the finish_reason.
  const Json messages = Json::array({{{"role", "user"}, {"content", "Tell me about the fox."}}});
  const Json cbody = {{"messages", messages}, {"max_tokens", 10}, {"temperature", 0}, {"ignore_eos", true}};
  const Json cfull = ok_post("/v1/chat/completions", cbody);
  Json cs = cbody;
  cs["stream"] = true;
  cs["stream_options"] = {{"include_usage", true}};
  const auto cev = check_framing(post_stream(*c_, "/v1/chat/completions", cs));
  ASSERT_GE(cev.size(), 3u);
  EXPECT_EQ(cev[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(cev[0]["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  int n_finish = 0;
  for (size_t i = 0; i + 1 < cev.size(); ++i) {
    const Json& ch = cev[i]["choices"][0];
    if (i > 0) {
      EXPECT_FALSE(ch["delta"].contains("role"));
    }
    if (ch["delta"].contains("content")) content += ch["delta"]["content"].get<std::string>();
    if (!ch["finish_reason"].is_null()) {
      ++n_finish;
      EXPECT_EQ(i + 2, cev.size()) << "finish_reason must be on the last choice chunk";
    }
  }
  EXPECT_EQ(n_finish, 1);
  EXPECT_EQ(content, cfull["choices"][0]["message"]["content"].get<std::string>());
  EXPECT_TRUE(cev.back()["choices"].empty());
  EXPECT_EQ(cev.back()["usage"]["completion_tokens"], 10);
}

TEST_F(ServerApi, StopStringsAcrossTokenBoundaries) {
  const Json base = {{"prompt", kPrompt}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true},
                     {"logprobs", 0}, {"skip_special_tokens", false}};
  const Json full = ok_post("/v1/completions", base);
  const std::string text = full["choices"][0]["text"];
  const Json& toks = full["choices"][0]["logprobs"]["tokens"];
  // Find a boundary between tokens k-1 and k where both sides are plain ASCII text of >= 1 char, the token
  // strings agree with the text, and the straddling string first occurs exactly there.
  std::string stop;
  size_t want_tokens = 0;
  size_t cum = 0;
  for (size_t k = 1; k < toks.size() && stop.empty(); ++k) {
    const std::string a = toks[k - 1], b = toks[k];
    const size_t a_end = cum + a.size();
    cum = a_end;
    if (text.compare(a_end - a.size(), a.size(), a) != 0 || text.compare(a_end, b.size(), b) != 0) break;
    auto ascii = [](const std::string& s) {
      return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char ch) { return ch >= 0x20 && ch < 0x7f; });
    };
    if (!ascii(a) || !ascii(b)) continue;
    const std::string cand = a.substr(a.size() - 1) + b.substr(0, std::min<size_t>(2, b.size()));
    if (text.find(cand) == a_end - 1) {
      stop = cand;
      want_tokens = k + 1;
    }
  }
  ASSERT_FALSE(stop.empty()) << "no usable token boundary in: " << text;
  const std::string want = text.substr(0, text.find(stop));

  Json req = base;
  req["stop"] = Json::array({"zzzz-never", stop});
  const Json r = ok_post("/v1/completions", req);
  EXPECT_EQ(r["choices"][0]["text"], want) << "stop '" << stop << "'";
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], stop);
  EXPECT_EQ(r["usage"]["completion_tokens"].get<size_t>(), want_tokens) << "tokens after the stop must be dropped";

  req["stream"] = true;
  std::string streamed;
  Json finish;
  for (const auto& e : check_framing(post_stream(*c_, "/v1/completions", req))) {
    streamed += e["choices"][0]["text"].get<std::string>();
    if (!e["choices"][0]["finish_reason"].is_null()) finish = e["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(streamed, want);
  EXPECT_EQ(finish, "stop");

  req.erase("stream");
  req["include_stop_str_in_output"] = true;
  EXPECT_EQ(ok_post("/v1/completions", req)["choices"][0]["text"], want + stop);

  // stop_token_ids: stop at the first occurrence of the 4th generated id; its text is not included.
  const Json g = ok_post("/generate", {{"text", kPrompt},
                                       {"sampling_params", {{"max_new_tokens", 40}, {"temperature", 0},
                                                            {"ignore_eos", true}, {"skip_special_tokens", false}}}});
  const std::vector<int> out_ids = g["output_ids"];
  ASSERT_GE(out_ids.size(), 4u);
  const int stop_id = out_ids[3];
  const size_t first = std::find(out_ids.begin(), out_ids.end(), stop_id) - out_ids.begin();
  Json sreq = {{"prompt", kPrompt}, {"max_tokens", 40}, {"temperature", 0}, {"ignore_eos", true},
               {"skip_special_tokens", false}, {"stop_token_ids", {stop_id}}};
  const Json sr = ok_post("/v1/completions", sreq);
  EXPECT_EQ(sr["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(sr["choices"][0]["stop_reason"], stop_id);
  EXPECT_EQ(sr["usage"]["completion_tokens"].get<size_t>(), first + 1);
  const std::vector<int> prefix(out_ids.begin(), out_ids.begin() + first);
  const std::string prefix_text = prefix.empty() ? "" : ok_post("/detokenize", {{"tokens", prefix}})["prompt"].get<std::string>();
  EXPECT_EQ(sr["choices"][0]["text"], prefix_text);
}

TEST_F(ServerApi, MultipleChoicesPromptListsAndEcho) {
  // n = 3 at temperature 0: three identical choices, indexed 0..2.
  const Json r = ok_post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 5}, {"temperature", 0},
                                              {"ignore_eos", true}, {"n", 3}});
  ASSERT_EQ(r["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(r["choices"][i]["index"], i);
    EXPECT_EQ(r["choices"][i]["text"], r["choices"][0]["text"]);
  }
  EXPECT_EQ(r["usage"]["completion_tokens"], 15);
  EXPECT_EQ(r["usage"]["prompt_tokens"].get<int64_t>(), count_tokens(kPrompt));  // counted once, as vLLM does

  // Sampling with a seed: reproducible, and the n samples are not all the same.
  const Json sampled = {{"prompt", kPrompt}, {"max_tokens", 12}, {"temperature", 1.5}, {"ignore_eos", true},
                        {"n", 4}, {"seed", 7}};
  const Json s1 = ok_post("/v1/completions", sampled), s2 = ok_post("/v1/completions", sampled);
  std::set<std::string> distinct;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(s1["choices"][i]["text"], s2["choices"][i]["text"]);
    distinct.insert(s1["choices"][i]["text"].get<std::string>());
  }
  EXPECT_GT(distinct.size(), 1u);

  // A list of prompts: choices ordered by prompt, each matching the single-prompt result.
  const std::vector<std::string> prompts = {"Hello there", kPrompt};
  const Json lr = ok_post("/v1/completions", {{"prompt", prompts}, {"max_tokens", 4}, {"temperature", 0},
                                               {"ignore_eos", true}, {"n", 2}});
  ASSERT_EQ(lr["choices"].size(), 4u);
  for (int p = 0; p < 2; ++p) {
    const Json single = ok_post("/v1/completions", {{"prompt", prompts[p]}, {"max_tokens", 4}, {"temperature", 0},
                                                     {"ignore_eos", true}});
    for (int j = 0; j < 2; ++j) EXPECT_EQ(lr["choices"][p * 2 + j]["text"], single["choices"][0]["text"]);
  }
  EXPECT_EQ(lr["usage"]["prompt_tokens"].get<int64_t>(), count_tokens(prompts[0]) + count_tokens(prompts[1]));

  // echo prepends the prompt, streaming or not.
  const Json e = ok_post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 4}, {"temperature", 0},
                                              {"ignore_eos", true}, {"echo", true}});
  const Json plain = ok_post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 4}, {"temperature", 0},
                                                  {"ignore_eos", true}});
  EXPECT_EQ(e["choices"][0]["text"], std::string(kPrompt) + plain["choices"][0]["text"].get<std::string>());
  std::string streamed;
  for (const auto& ev : check_framing(post_stream(*c_, "/v1/completions",
                                                  {{"prompt", kPrompt}, {"max_tokens", 4}, {"temperature", 0},
                                                   {"ignore_eos", true}, {"echo", true}, {"stream", true}})))
    streamed += ev["choices"][0]["text"].get<std::string>();
  EXPECT_EQ(streamed, e["choices"][0]["text"]);
}

TEST_F(ServerApi, LogprobsInBothFormats) {
  const Json r = ok_post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 6}, {"temperature", 0},
                                              {"ignore_eos", true}, {"logprobs", 3}});
  const Json& lp = r["choices"][0]["logprobs"];
  ASSERT_TRUE(lp.is_object()) << r;
  ASSERT_EQ(lp["tokens"].size(), 6u);
  ASSERT_EQ(lp["token_logprobs"].size(), 6u);
  ASSERT_EQ(lp["top_logprobs"].size(), 6u);
  ASSERT_EQ(lp["text_offset"].size(), 6u);
  size_t offset = 0;
  for (size_t i = 0; i < 6; ++i) {
    const double chosen = lp["token_logprobs"][i];
    EXPECT_LE(chosen, 0.0);
    const Json& top = lp["top_logprobs"][i];
    ASSERT_TRUE(top.is_object());
    EXPECT_GE(top.size(), 1u);
    EXPECT_LE(top.size(), 4u);  // top 3, plus the chosen token when it is not among them
    double best = -1e30, mass = 0;
    for (const auto& [tok, v] : top.items()) {
      best = std::max(best, v.get<double>());
      mass += std::exp(v.get<double>());
    }
    EXPECT_LE(mass, 1.0 + 1e-4);
    // Greedy picks the most likely token, so its logprob is the best of the alternatives.
    EXPECT_NEAR(chosen, best, 1e-5) << "token " << i;
    EXPECT_EQ(lp["text_offset"][i].get<size_t>(), offset);
    offset += lp["tokens"][i].get<std::string>().size();
  }
  // logprobs = 0: the chosen token's logprob only.
  const Json r0 = ok_post("/v1/completions", {{"prompt", kPrompt}, {"max_tokens", 3}, {"temperature", 0},
                                               {"ignore_eos", true}, {"logprobs", 0}});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(r0["choices"][0]["logprobs"]["token_logprobs"][i].get<double>(), lp["token_logprobs"][i].get<double>(),
                1e-6);
    EXPECT_TRUE(r0["choices"][0]["logprobs"]["top_logprobs"][i].is_null());
  }

  // Chat format.
  const Json messages = Json::array({{{"role", "user"}, {"content", "Hello"}}});
  const Json cr = ok_post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 4}, {"temperature", 0},
                                                    {"ignore_eos", true}, {"logprobs", true}, {"top_logprobs", 2}});
  const Json& content = cr["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u) << cr;
  for (const auto& t : content) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(t["bytes"].is_array());
    ASSERT_EQ(t["top_logprobs"].size(), 2u);
    EXPECT_NEAR(t["logprob"].get<double>(), t["top_logprobs"][0]["logprob"].get<double>(), 1e-5);
    EXPECT_GE(t["top_logprobs"][0]["logprob"].get<double>(), t["top_logprobs"][1]["logprob"].get<double>());
  }
  // Chat without logprobs: null.
  EXPECT_TRUE(ok_post("/v1/chat/completions", {{"messages", messages}, {"max_tokens", 2}})["choices"][0]["logprobs"]
                  .is_null());
}

TEST_F(ServerApi, BadInputGetsOpenAiErrors) {
  const int64_t max_len = max_model_len();
  const int64_t V = vocab_size();
  const std::string model = model_name();
  struct Case {
    std::string what, method, path, body;
    int status;
    std::string param;  // "" = don't check
  };
  std::vector<Case> cases = {
      {"malformed JSON", "POST", "/v1/completions", "{\"prompt\": \"hi\",", 400, ""},
      {"body not an object", "POST", "/v1/completions", "[1, 2]", 400, ""},
      {"empty body", "POST", "/v1/chat/completions", "", 400, ""},
      {"temperature wrong type", "POST", "/v1/completions", R"({"prompt": "hi", "temperature": "hot"})", 400,
       "temperature"},
      {"max_tokens wrong type", "POST", "/v1/completions", R"({"prompt": "hi", "max_tokens": "5"})", 400,
       "max_tokens"},
      {"stream wrong type", "POST", "/v1/completions", R"({"prompt": "hi", "stream": "yes"})", 400, "stream"},
      {"prompt wrong type", "POST", "/v1/completions", R"({"prompt": 5})", 400, "prompt"},
      {"prompt missing", "POST", "/v1/completions", R"({"max_tokens": 5})", 400, "prompt"},
      {"messages wrong type", "POST", "/v1/chat/completions", R"({"messages": "hi"})", 400, "messages"},
      {"messages empty", "POST", "/v1/chat/completions", R"({"messages": []})", 400, "messages"},
      {"message without role", "POST", "/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", 400, ""},
      {"image content", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})", 400, ""},
      {"unknown field (completions)", "POST", "/v1/completions", R"({"prompt": "hi", "foo": 1})", 400, "foo"},
      {"unknown field (chat)", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "bar": true})", 400, "bar"},
      {"max_tokens 0", "POST", "/v1/completions", R"({"prompt": "hi", "max_tokens": 0})", 400, "max_tokens"},
      {"max_tokens negative", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -3})", 400, "max_tokens"},
      {"max_tokens beyond the context", "POST", "/v1/completions",
       Json{{"prompt", "hi"}, {"max_tokens", max_len}}.dump(), 400, "max_tokens"},
      {"prompt longer than the context", "POST", "/v1/completions",
       Json{{"prompt", std::vector<int>(max_len + 1, 1)}, {"max_tokens", 1}}.dump(), 400, ""},
      {"temperature < 0", "POST", "/v1/completions", R"({"prompt": "hi", "temperature": -0.5})", 400, "temperature"},
      {"top_p 0", "POST", "/v1/completions", R"({"prompt": "hi", "top_p": 0})", 400, "top_p"},
      {"top_p > 1", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "top_p": 1.5})", 400, "top_p"},
      {"logprobs > 20", "POST", "/v1/completions", R"({"prompt": "hi", "logprobs": 21})", 400, "logprobs"},
      {"top_logprobs > 20", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21})", 400,
       "top_logprobs"},
      {"top_logprobs without logprobs", "POST", "/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2})", 400, "top_logprobs"},
      {"n = 0", "POST", "/v1/completions", R"({"prompt": "hi", "n": 0})", 400, "n"},
      {"token id out of vocabulary", "POST", "/v1/completions",
       Json{{"prompt", {1, V}}, {"max_tokens", 1}}.dump(), 400, "prompt"},
      {"negative token id", "POST", "/v1/completions", R"({"prompt": [1, -1]})", 400, "prompt"},
      {"empty prompt list", "POST", "/v1/completions", R"({"prompt": []})", 400, "prompt"},
      {"stream_options without stream", "POST", "/v1/completions",
       R"({"prompt": "hi", "stream_options": {"include_usage": true}})", 400, "stream_options"},
      {"stream_options wrong type", "POST", "/v1/completions",
       R"({"prompt": "hi", "stream": true, "stream_options": {"include_usage": 1}})", 400,
       "stream_options.include_usage"},
      {"presence_penalty out of range", "POST", "/v1/completions", R"({"prompt": "hi", "presence_penalty": 3})", 400,
       "presence_penalty"},
      {"echo with logprobs", "POST", "/v1/completions", R"({"prompt": "hi", "echo": true, "logprobs": 1})", 400, ""},
      {"unknown model", "POST", "/v1/completions", R"({"model": "no-such-model", "prompt": "hi"})", 404, "model"},
      {"unknown model (chat)", "POST", "/v1/chat/completions",
       R"({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})", 404, "model"},
      {"unknown model (retrieve)", "GET", "/v1/models/no-such-model", "", 404, ""},
      {"generate without input", "POST", "/generate", R"({"sampling_params": {}})", 400, ""},
      {"generate unknown sampling param", "POST", "/generate", R"({"text": "hi", "sampling_params": {"foo": 1}})",
       400, "sampling_params.foo"},
      {"generate max_new_tokens 0", "POST", "/generate",
       R"({"text": "hi", "sampling_params": {"max_new_tokens": 0}})", 400, ""},
      {"detokenize wrong type", "POST", "/detokenize", R"({"tokens": "abc"})", 400, "tokens"},
      {"tokenize both inputs", "POST", "/tokenize", R"({"prompt": "a", "messages": []})", 400, ""},
      {"wrong method", "GET", "/v1/completions", "", 405, ""},
      {"wrong method (chat)", "DELETE", "/v1/chat/completions", "", 405, ""},
      {"wrong method (models)", "POST", "/v1/models", "{}", 405, ""},
      {"unknown route", "GET", "/v2/nothing", "", 404, ""},
      {"unknown route (post)", "POST", "/v1/embeddings", R"({"input": "hi"})", 404, ""},
  };
  for (const auto& k : cases) {
    HttpResult r;
    if (k.method == "POST") r = post(*c_, k.path, k.body);
    else if (k.method == "GET") r = get(*c_, k.path);
    else if (k.method == "DELETE") {
      auto x = c_->Delete(k.path);
      r = x ? HttpResult{x->status, x->body} : HttpResult{0, ""};
    }
    const Json e = expect_error(r, k.status, k.what);
    if (!k.param.empty() && e.is_object()) {
      EXPECT_EQ(e.value("param", Json()), k.param) << k.what << ": " << r.body;
    }
    if (k.status == 405 && e.is_object()) {
      EXPECT_EQ(e["code"], "method_not_allowed");
    }
  }
  // Oversize body: 413 (the default limit is 4 MiB).
  const std::string big = Json{{"prompt", std::string(5 << 20, 'a')}}.dump();
  expect_error(post(*c_, "/v1/completions", big), 413, "oversize body");
  // Nesting deep enough to overflow a recursive walk is refused while parsing.
  const std::string deep = "{\"prompt\": \"hi\", \"x\": " + std::string(100000, '[') + std::string(100000, ']') + "}";
  expect_error(post(*c_, "/v1/completions", deep), 400, "deeply nested body");
  // A body over 8 KiB sent as form-urlencoded (curl -d's default) is still read as JSON.
  {
    const Json long_prompt = {{"prompt", std::string(9000, ' ') + "hi"}, {"max_tokens", 1}};
    auto r = c_->Post("/v1/completions", long_prompt.dump(), "application/x-www-form-urlencoded");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->status == 200 || r->status == 400) << r->body;  // 400 only if the prompt is over the context
    if (r->status == 400) {
      EXPECT_EQ(Json::parse(r->body)["error"]["code"], "context_length_exceeded") << r->body;
    }
  }
  // The model name (and the --model path alias) are accepted.
  EXPECT_EQ(post(*c_, "/v1/completions", Json{{"model", model}, {"prompt", "hi"}, {"max_tokens", 1}}).status, 200);
  // After all of that the server is healthy and serves normally.
  EXPECT_EQ(get(*c_, "/health").status, 200);
  EXPECT_EQ(post(*c_, "/v1/completions", Json{{"prompt", "hi"}, {"max_tokens", 2}}).status, 200);
}

// Strict parse of the Prometheus text exposition format; returns sample name{labels} -> value.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  static const std::regex help_re(R"re(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)re");
  static const std::regex type_re(R"re(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))re");
  static const std::regex sample_re(
      R"re(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? ([-+]?([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|Inf|NaN)))re");
  std::istringstream in(text);
  std::string line, current;
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;  // histogram -> (le, count)
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.empty()) continue;
    if (std::regex_match(line, m, help_re)) continue;
    if (std::regex_match(line, m, type_re)) {
      EXPECT_FALSE(types.count(m[1])) << "family declared twice: " << m[1];
      types[m[1]] = m[2];
      current = m[1];
      continue;
    }
    if (!std::regex_match(line, m, sample_re)) {
      ADD_FAILURE() << "bad line: " << line;
      continue;
    }
    const std::string name = m[1], labels = m[2];
    const std::string type = types.count(current) ? types[current] : "";
    if (type == "histogram") {
      EXPECT_TRUE(name == current + "_bucket" || name == current + "_sum" || name == current + "_count") << line;
      if (name == current + "_bucket") {
        std::smatch lm;
        static const std::regex le_re(R"re(le="([^"]+)")re");
        if (!std::regex_search(labels, lm, le_re)) {
          ADD_FAILURE() << "bucket without le: " << line;
          continue;
        }
        const double le = lm[1] == "+Inf" ? INFINITY : std::stod(lm[1]);
        buckets[current].push_back({le, std::stod(m[5])});
      }
    } else {
      EXPECT_EQ(name, current) << "sample outside its family: " << line;
    }
    samples[name + labels] = std::stod(m[5]);
  }
  for (const auto& [h, b] : buckets) {
    for (size_t i = 1; i < b.size(); ++i) {
      EXPECT_LT(b[i - 1].first, b[i].first) << h;
      EXPECT_LE(b[i - 1].second, b[i].second) << h << ": buckets must be cumulative";
    }
    EXPECT_TRUE(std::isinf(b.back().first)) << h;
    EXPECT_EQ(b.back().second, samples[h + "_count"]) << h;
  }
  return samples;
}

TEST_F(ServerApi, MetricsParseAndCountersMove) {
  auto scrape = [&] {
    const HttpResult r = get(*c_, "/metrics");
    EXPECT_EQ(r.status, 200);
    return parse_prometheus(r.body);
  };
  auto idle = [&] {
    for (int i = 0; i < 200; ++i) {
      auto m = scrape();
      if (m["tandem:num_requests_running"] == 0 && m["tandem:kv_cache_usage_perc"] == 0) return m;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the engine did not go idle";
    return scrape();
  };
  const auto before = idle();
  for (const char* name :
       {"tandem:num_requests_running", "tandem:num_requests_waiting", "tandem:kv_cache_usage_perc",
        "tandem:prompt_tokens_total", "tandem:generation_tokens_total", "tandem:prefix_cache_queries_total",
        "tandem:prefix_cache_hits_total", "tandem:request_success_total{finished_reason=\"length\"}", "tandem:time_to_first_token_seconds_count",
        "tandem:inter_token_latency_seconds_count", "tandem:e2e_request_latency_seconds_count",
        "tandem:spec_decode_num_drafts_total", "tandem:spec_decode_num_draft_tokens_total",
        "tandem:spec_decode_num_accepted_tokens_total", "tandem:spec_accept_length"})
    EXPECT_TRUE(before.count(name)) << name;
  const HttpResult r = post(*c_, "/v1/completions", Json{{"prompt", kPrompt}, {"max_tokens", 7}, {"temperature", 0},
                                                          {"ignore_eos", true}});
  ASSERT_EQ(r.status, 200);
  const auto after = idle();
  auto delta = [&](const std::string& k) { return after.at(k) - before.at(k); };
  EXPECT_EQ(delta("tandem:generation_tokens_total"), 7);
  // Prompt tokens are computed or found in the prefix cache (an earlier test may have sent the same prompt).
  EXPECT_EQ(delta("tandem:prompt_tokens_total") + delta("tandem:prefix_cache_hits_total"), count_tokens(kPrompt));
  EXPECT_EQ(delta("tandem:prefix_cache_queries_total"), count_tokens(kPrompt));
  EXPECT_EQ(delta("tandem:request_success_total{finished_reason=\"length\"}"), 1);
  EXPECT_EQ(delta("tandem:time_to_first_token_seconds_count"), 1);
  EXPECT_EQ(delta("tandem:e2e_request_latency_seconds_count"), 1);
  EXPECT_EQ(delta("tandem:inter_token_latency_seconds_count"), 6);  // 7 tokens, one per step
  EXPECT_EQ(after.at("tandem:num_requests_waiting"), 0);
}

TEST_F(ServerApi, NativeAndInfoEndpoints) {
  // /generate, non-streaming.
  const Json g = ok_post("/generate", {{"text", kPrompt}, {"rid", "my-request"},
                                       {"sampling_params", {{"max_new_tokens", 8}, {"temperature", 0},
                                                            {"ignore_eos", true}}}});
  ASSERT_TRUE(g.is_object());
  const Json& mi = g["meta_info"];
  EXPECT_EQ(mi["id"], "my-request");
  EXPECT_EQ(mi["prompt_tokens"].get<int64_t>(), count_tokens(kPrompt));
  EXPECT_EQ(mi["completion_tokens"], 8);
  EXPECT_EQ(g["output_ids"].size(), 8u);
  EXPECT_EQ(mi["finish_reason"]["type"], "length");
  EXPECT_EQ(mi["finish_reason"]["length"], 8);
  EXPECT_TRUE(mi["e2e_latency"].is_number());
  // input_ids and a batch.
  const Json ids = ok_post("/tokenize", {{"prompt", kPrompt}})["tokens"];
  const Json gi = ok_post("/generate", {{"input_ids", ids},
                                        {"sampling_params", {{"max_new_tokens", 8}, {"temperature", 0},
                                                             {"ignore_eos", true}}}});
  EXPECT_EQ(gi["output_ids"], g["output_ids"]);
  const Json gb = ok_post("/generate", {{"text", {kPrompt, "Hello"}},
                                        {"sampling_params", {{"max_new_tokens", 8}, {"temperature", 0},
                                                             {"ignore_eos", true}}}});
  ASSERT_TRUE(gb.is_array());
  ASSERT_EQ(gb.size(), 2u);
  EXPECT_EQ(gb[0]["output_ids"], g["output_ids"]);
  // Streaming: cumulative text, finish_reason only at the end.
  const auto events = check_framing(post_stream(*c_, "/generate",
                                                {{"text", kPrompt}, {"stream", true},
                                                 {"sampling_params", {{"max_new_tokens", 8}, {"temperature", 0},
                                                                      {"ignore_eos", true}}}}));
  ASSERT_FALSE(events.empty());
  std::string prev;
  for (size_t i = 0; i < events.size(); ++i) {
    const std::string t = events[i]["text"];
    EXPECT_EQ(t.rfind(prev, 0), 0u) << "text must be cumulative";
    prev = t;
    EXPECT_EQ(events[i]["meta_info"]["finish_reason"].is_null(), i + 1 < events.size());
  }
  EXPECT_EQ(prev, g["text"]);
  // Logprobs in SGLang's layout.
  const Json gl = ok_post("/generate", {{"text", kPrompt}, {"return_logprob", true}, {"top_logprobs_num", 2},
                                        {"sampling_params", {{"max_new_tokens", 3}, {"temperature", 0}}}});
  ASSERT_EQ(gl["meta_info"]["output_token_logprobs"].size(), gl["output_ids"].size());
  EXPECT_EQ(gl["meta_info"]["output_token_logprobs"][0][1], gl["output_ids"][0]);
  EXPECT_EQ(gl["meta_info"]["output_top_logprobs"][0].size(), 2u);

  // /tokenize and /detokenize round-trip (vLLM shapes).
  const Json tk = ok_post("/tokenize", {{"prompt", kPrompt}, {"return_token_strs", true}});
  EXPECT_EQ(tk["count"].get<size_t>(), tk["tokens"].size());
  EXPECT_EQ(tk["token_strs"].size(), tk["tokens"].size());
  EXPECT_TRUE(tk["max_model_len"].is_number_integer());
  EXPECT_EQ(ok_post("/detokenize", {{"tokens", tk["tokens"]}})["prompt"], kPrompt);

  // Model and server info.
  const Json models = ok_get("/v1/models");
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  const Json& card = models["data"][0];
  EXPECT_EQ(card["object"], "model");
  EXPECT_TRUE(card["root"].is_string());
  EXPECT_EQ(ok_get("/v1/models/" + card["id"].get<std::string>())["id"], card["id"]);
  const Json info = ok_get("/get_model_info");
  EXPECT_EQ(info["is_generation"], true);
  EXPECT_TRUE(info["model_path"].is_string());
  const Json si = ok_get("/get_server_info");
  EXPECT_GT(si["max_total_num_tokens"].get<int64_t>(), 0);
  EXPECT_TRUE(si["internal_states"][0]["avg_spec_accept_length"].is_number());
  EXPECT_TRUE(si.contains("draft_precision"));
  EXPECT_EQ(si["max_running_requests"], 8);
  EXPECT_EQ(ok_get("/health_generate")["status"], "ok");
}

// A streaming /generate event carries the choice's cumulative state, so only the last one may carry a
// finish_reason (it was once seen on an earlier event: several engine outputs that arrived together were each
// rendered from the final state). The bug needs outputs to pile up between two reads of the stream, so many
// streams run at once, with every kind of finish (length, stop string, eos, stop token), and every event of
// every stream is checked.
TEST_F(ServerApi, StreamingGenerateFinishReasonOnlyOnTheLastEvent) {
  constexpr int kStreams = 48, kClients = 8;
  auto body_of = [](int i) {
    Json sp = {{"max_new_tokens", 4 + (i * 7) % 40}, {"temperature", 0}, {"ignore_eos", true}};
    // i % 4: 0 length, 1 a stop string (or length), 2 sampled until eos (or length), 3 a stop token (or
    // length).
    if (i % 4 == 1) sp["stop"] = Json::array({" the", "."});
    if (i % 4 == 2) sp = {{"max_new_tokens", 48}, {"temperature", 1.0}, {"sampling_seed", i}};
    if (i % 4 == 3) sp["stop_token_ids"] = Json::array({13, 11});
    Json b = {{"text", i % 3 ? kPrompt : "Hello"}, {"stream", true}, {"sampling_params", sp}};
    if (i % 5 == 0) b["return_logprob"] = true;
    return b;
  };
  std::vector<std::vector<Json>> streams(kStreams);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t)
    clients.emplace_back([&] {
      auto c = server_->client();
      for (int i; (i = next++) < kStreams;)
        streams[i] = check_framing(post_stream(*c, "/generate", body_of(i)));
    });
  for (auto& t : clients) t.join();

  std::map<std::string, int> finishes;
  size_t checked_events = 0;
  for (int i = 0; i < kStreams; ++i) {
    const std::vector<Json>& events = streams[i];
    const std::string what = "stream " + std::to_string(i) + " " + body_of(i).dump();
    ASSERT_FALSE(events.empty()) << what;
    std::string prev_text;
    Json prev_ids = Json::array();
    for (size_t k = 0; k < events.size(); ++k, ++checked_events) {
      const Json& e = events[k];
      const Json& mi = e["meta_info"];
      const bool last = k + 1 == events.size();
      EXPECT_EQ(mi["finish_reason"].is_null(), !last) << what << ": event " << k << " of " << events.size()
                                                      << " has finish_reason " << mi["finish_reason"];
      const std::string text = e["text"];
      EXPECT_EQ(text.rfind(prev_text, 0), 0u) << what << ": event " << k << ": text is not cumulative";
      ASSERT_TRUE(e["output_ids"].is_array()) << what;
      EXPECT_GE(e["output_ids"].size(), prev_ids.size()) << what << ": event " << k;
      EXPECT_TRUE(std::equal(prev_ids.begin(), prev_ids.end(), e["output_ids"].begin()))
          << what << ": event " << k << ": output_ids are not cumulative";
      EXPECT_EQ(mi["completion_tokens"], e["output_ids"].size()) << what << ": event " << k;
      prev_text = text;
      prev_ids = e["output_ids"];
    }
    const Json& fr = events.back()["meta_info"]["finish_reason"];
    if (fr.is_object()) ++finishes[fr["type"].get<std::string>()];
    // Greedy streams end where the same request without streaming ends.
    if (i % 4 != 2 && i < 12) {
      Json plain = body_of(i);
      plain.erase("stream");
      const Json full = ok_post("/generate", plain);
      EXPECT_EQ(events.back()["text"], full["text"]) << what;
      EXPECT_EQ(events.back()["meta_info"]["finish_reason"], full["meta_info"]["finish_reason"]) << what;
    }
  }
  std::cout << "checked " << checked_events << " events of " << kStreams << " streams; finishes:";
  for (const auto& [type, k] : finishes) std::cout << " " << type << "=" << k;
  std::cout << "\n";
  EXPECT_GE(finishes["length"], 1);
  EXPECT_GE(finishes["stop"], 1);
}

TEST_F(ServerApi, ClientDisconnectAbortsAndFreesKv) {
  auto scrape = [&] { return parse_prometheus(get(*c_, "/metrics").body); };
  const auto before = scrape();
  const int64_t max_len = max_model_len();
  const int64_t max_tokens = max_len - count_tokens(kPrompt);
  const StreamResult s = post_stream(*c_, "/v1/completions",
                                     {{"prompt", kPrompt}, {"max_tokens", max_tokens}, {"ignore_eos", true},
                                      {"temperature", 0}, {"stream", true}},
                                     /*stop_after=*/3);
  EXPECT_TRUE(s.cancelled);
  std::map<std::string, double> after;
  bool freed = false;
  for (int i = 0; i < 500 && !freed; ++i) {
    after = scrape();
    freed = after["tandem:num_requests_running"] == 0 && after["tandem:kv_cache_usage_perc"] == 0 &&
            after["tandem:request_success_total{finished_reason=\"abort\"}"] >
                before.at("tandem:request_success_total{finished_reason=\"abort\"}");
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(freed) << "the disconnected request was not aborted";
  EXPECT_LT(after["tandem:generation_tokens_total"] - before.at("tandem:generation_tokens_total"), max_tokens)
      << "the request ran to completion instead of being aborted";
  EXPECT_EQ(get(*c_, "/health").status, 200);
}

}  // namespace
}  // namespace tandem::test
