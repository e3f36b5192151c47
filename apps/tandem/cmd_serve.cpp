// `tandem serve`: the OpenAI-compatible HTTP server. Listens first (so /health answers 503 while the model
// loads), loads, proves the engine works with a one-token generation, then serves; SIGTERM / SIGINT stop
// new generations (503), let the ones in flight finish, and exit 0.
#include <fmt/format.h>
#include <pthread.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <thread>

#include "core/proc_file.h"
#include "ops/backends.h"
#include "commands.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/engine.h"
#include "kv/kv_dtype.h"
#include "kv_flags.h"
#include "server/engine_loop.h"
#include "server/health.h"
#include "server/http_server.h"
#include "server/output_parsers.h"
#include "server/server_context.h"
#include "spec_flags.h"
#include "tokenizer/tokenizer.h"

namespace tandem::app {

namespace {

struct ServeFlags {
  ModelFlags model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int max_running_requests = 16;
  int64_t max_model_len = 0;
  int64_t kv_cache_tokens = 0;
  KvFlags kv;  // --kv-cache-dtype, --kv-cache-memory, --mem-fraction
  int64_t max_batch_tokens = 512;
  std::string served_model_name;
  size_t max_body_bytes = 4u << 20;
  int http_threads = 0;
  double shutdown_timeout_s = 60.0;
  std::string tool_call_parser;  // "": detect from the chat template; "none": off
  std::string reasoning_parser;  // likewise
};

/// Resident set size of this process in bytes (0 if /proc is unavailable).
size_t rss_bytes() { return proc_kib_field_bytes("/proc/self/status", "VmRSS:"); }

/// Prints a progress line every few seconds while `done` is false (load_model has no progress hook; time
/// and resident memory show that a large checkpoint is still being mapped and converted).
class LoadTicker {
 public:
  explicit LoadTicker(std::string what) : what_(std::move(what)), start_(std::chrono::steady_clock::now()) {
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return done_; }))
        log::info("loading {}: {:.0f} s, resident {:.2f} GiB", what_, elapsed(), rss_bytes() / double(1u << 30));
    });
  }
  ~LoadTicker() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string what_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

/// SIGTERM / SIGINT arrive here, on one thread, via sigwait (the signals are blocked everywhere else), so the
/// reaction can take locks and log — no async-signal-safety constraints.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGUSR1);  // internal: wakes the watcher when serve returns for another reason
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        std::lock_guard<std::mutex> lock(mu_);
        if (sig == SIGUSR1 && closing_) return;
        if (sig == SIGUSR1) continue;
        ++signals_;
        last_ = sig;
        cv_.notify_all();
        if (on_signal_) on_signal_(signals_);
      }
    });
  }
  ~SignalWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  /// Called on the watcher thread with the number of signals so far.
  void on_signal(std::function<void(int)> f) {
    std::lock_guard<std::mutex> lock(mu_);
    on_signal_ = std::move(f);
  }
  /// Blocks until the first SIGTERM / SIGINT; returns its name.
  std::string wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return signals_ > 0; });
    return last_ == SIGTERM ? "SIGTERM" : "SIGINT";
  }

 private:
  sigset_t set_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  int signals_ = 0;
  int last_ = 0;
  bool closing_ = false;
  std::function<void(int)> on_signal_;
};

std::string target_precision(const models::LoadedModel& m) {
  std::map<std::string, int> running;
  for (const auto& r : m.linears) {
    if (!m.mtp_prefix.empty() && r.prefix.rfind(m.mtp_prefix, 0) == 0) continue;
    std::string name(dtype_name(r.stored));
    if (r.dequantized) name = "BF16 (dequantized from " + name + ")";
    else if (r.quant != ops::WeightQuant::kNone) name += " scaled";
    running[name]++;
  }
  std::string s = "checkpoint quantization " + models::mtp::scheme_name(m.quant) + "; linears run in ";
  bool first = true;
  for (const auto& [k, n] : running) {
    s += fmt::format("{}{} x{}", first ? "" : ", ", k, n);
    first = false;
  }
  return s;
}

std::string default_model_name(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();
  return p.filename().empty() ? path : p.filename().string();
}

int run_serve(const ServeFlags& f) {
  f.model.validate();
  f.model.refuse_bench_only("serve");
  f.kv.validate();
  if (f.port < 0 || f.port > 65535) fail("--port must be in [0, 65535], got {}", f.port);
  if (f.max_running_requests < 1) fail("--max-running-requests must be >= 1, got {}", f.max_running_requests);
  if (f.max_body_bytes < 1024) fail("--max-body-bytes must be >= 1024, got {}", f.max_body_bytes);
  // Before the weights load (minutes for a full checkpoint; --load-format dummy makes weights, not a tokenizer).
  // A folder that does not exist is load_model's error to report.
  if (std::filesystem::is_directory(f.model.model) &&
      !std::filesystem::exists(std::filesystem::path(f.model.model) / "tokenizer.json"))
    fail("{} has no tokenizer.json: the server needs the checkpoint's tokenizer{}", f.model.model,
         f.model.load_options().load_format == models::LoadFormat::kDummy
             ? " (--load-format dummy makes the weights from config.json, not the tokenizer; `tandem bench` "
               "runs without one)"
             : "");
  std::signal(SIGPIPE, SIG_IGN);  // a client that disconnects mid-stream must not kill the process
  SignalWatcher signals;          // before any other thread, so every thread inherits the blocked mask

  server::ServerOptions so;
  so.host = f.host;
  so.port = f.port;
  so.model_path = f.model.model;
  so.served_model_name = f.served_model_name.empty() ? default_model_name(f.model.model) : f.served_model_name;
  so.max_body_bytes = f.max_body_bytes;
  so.http_threads = f.http_threads > 0 ? f.http_threads : std::max(64, 2 * f.max_running_requests + 16);

  // Declared before the context and the HTTP server, so they outlive every handler.
  std::unique_ptr<ops::Backend> backend;
  std::unique_ptr<models::LoadedModel> model;
  std::shared_ptr<tokenizer::Tokenizer> tok;
  std::unique_ptr<server::EngineLoop> loop;
  server::ServerContext ctx(so);
  server::HttpServer http(ctx);
  // The signal callbacks below reference ctx and loop: drop them before those go away, on every path.
  struct ClearCallbacks {
    SignalWatcher& s;
    ~ClearCallbacks() { s.on_signal(nullptr); }
  } clear_callbacks{signals};
  http.start();
  log::info("listening on http://{}:{} (loading; /health answers 503 until ready)", f.host, http.port());
  signals.on_signal([&ctx](int n) {
    if (ctx.state() == server::ServerState::kLoading) {
      // Nothing is in flight while loading, and load_model cannot be interrupted: leave now.
      log::info("shutdown requested while loading; exiting");
      spdlog::default_logger()->flush();
      std::_Exit(0);
    }
    if (n == 1) log::info("shutdown requested: draining in-flight requests (send again to abort them)");
  });

  models::LoadedModel* m = nullptr;
  {
    LoadTicker ticker(f.model.model);
    log::info("loading {} ...", f.model.model);
    backend = ops::make_backend(f.model.device, f.model.threads);
    model = models::load_model(f.model.model, f.model.load_options(), *backend);
    m = model.get();
    const auto dir = m->checkpoint->dir();
    tok = tokenizer::Tokenizer::from_dir(dir);
    // from_dir checked config.json's vocab_size; the model may run another (--json-model-override-args).
    tokenizer::check_model_vocabulary(*tok, m->config.vocab_size, "the model's vocab_size (after overrides)");
    log::info("loaded {} in {:.1f} s (resident weights {:.2f} GiB)", dir.string(), ticker.elapsed(),
              m->resident_weight_bytes() / double(1u << 30));
  }
  server::OutputParsers output_parsers = server::choose_output_parsers(f.tool_call_parser, f.reasoning_parser, *tok);

  engine::EngineOptions eo;
  eo.max_running_requests = f.max_running_requests;
  eo.kv_cache_tokens = f.kv_cache_tokens;
  eo.max_batch_tokens = f.max_batch_tokens;
  eo.max_model_len = f.max_model_len;
  f.kv.apply(eo);
  eo.enable_prefix_caching = f.kv.prefix_caching;
  eo.spec = f.model.spec_options();
  loop = std::make_unique<server::EngineLoop>(std::make_unique<engine::Engine>(*m, *backend, eo), ctx.metrics());
  const engine::Engine& eng = loop->engine();

  nlohmann::ordered_json args = {
      {"model_path", f.model.model},
      {"served_model_name", so.served_model_name},
      {"host", f.host},
      {"port", http.port()},
      {"max_running_requests", f.max_running_requests},
      {"max_model_len", eng.max_model_len()},
      {"kv_cache_tokens", f.kv_cache_tokens},
      {"kv_cache_dtype", kv::kv_cache_dtype_name(eo.kv_cache_dtype)},
      {"enable_prefix_caching", eo.enable_prefix_caching},
      {"kv_cache_memory", eo.kv_cache_memory},
      {"mem_fraction", eo.mem_fraction},
      {"max_batch_tokens", f.max_batch_tokens},
      {"threads", f.model.threads},
      {"speculative_algorithm", f.model.speculative() ? nlohmann::ordered_json(f.model.spec_algorithm) : nullptr},
      {"speculative_num_steps", f.model.spec_num_steps},
      {"speculative_eagle_topk", f.model.spec_eagle_topk},
      {"speculative_num_draft_tokens", f.model.spec_num_steps + 1},
      {"speculative_draft_model_quantization", f.model.draft_quant},
      {"max_body_bytes", f.max_body_bytes},
      {"http_threads", so.http_threads},
      {"tool_call_parser", output_parsers.tool_parser.empty() ? nlohmann::ordered_json()
                                                              : nlohmann::ordered_json(output_parsers.tool_parser)},
      {"reasoning_parser", output_parsers.reasoning_parser.empty()
                               ? nlohmann::ordered_json()
                               : nlohmann::ordered_json(output_parsers.reasoning_parser)},
      {"output_parsers", output_parsers.reason}};
  ctx.attach(*m, tok, *loop, args);
  ctx.set_output_parsers(output_parsers);

  if (std::string err = server::probe_generation(ctx, 600.0); !err.empty())
    fail("the start-up generation failed: {}", err);
  const auto& c = m->config;
  log::info("model       {} as '{}' (Glm4MoeForCausalLM, {} layers, hidden {}, vocab {}, max_model_len {})",
            m->checkpoint->dir().string(), so.served_model_name, c.num_hidden_layers, c.hidden_size, c.vocab_size,
            eng.max_model_len());
  log::info("target      {}", target_precision(*m));
  if (m->draft)
    log::info("draft       {} (stored {}): {}", m->draft_precision.running, m->draft_precision.stored,
              m->draft_precision.reason);
  else
    log::info("draft       none{}", m->checkpoint_has_mtp ? " (the checkpoint has an MTP layer; pass "
                                                             "--speculative-algorithm NEXTN to use it)" : "");
  log::info("kv cache    {} tokens of {} ({} MiB, block size {})", eng.kv_capacity_tokens(),
            kv::kv_cache_dtype_name(eo.kv_cache_dtype), eng.kv_cache_bytes() >> 20, eo.block_size);
  log::info("prefix cache {}", eo.enable_prefix_caching ? "on (target and draft KV; --disable-prefix-caching turns it off)"
                                                         : "off");
  if (eng.speculative())
    log::info("speculative {} with {} draft tokens per verify step (eagle_topk 1, {} tokens per verify pass)",
              f.model.spec_algorithm, eo.spec.num_steps, eo.spec.num_steps + 1);
  else
    log::info("speculative off");
  log::info("batching    max running requests {}, max batch tokens {}", f.max_running_requests, f.max_batch_tokens);
  log::info("parsers     {}", ctx.output_parsers().reason);
  ctx.set_state(server::ServerState::kReady);
  log::info("ready: http://{}:{} ({} http threads, body limit {} bytes)", f.host, http.port(), so.http_threads,
            f.max_body_bytes);

  // A second signal while draining aborts what is still running.
  signals.on_signal([&loop](int n) {
    if (n >= 2) {
      log::warn("second shutdown signal: aborting in-flight requests");
      loop->stop();
    }
  });
  const std::string sig = signals.wait();
  ctx.set_state(server::ServerState::kDraining);
  log::info("{}: no new requests (503); draining {} in flight", sig, ctx.generations_in_flight());
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f.shutdown_timeout_s * 1000));
  if (!ctx.wait_generations_idle(timeout)) {
    log::warn("drain timed out after {} s with {} requests in flight; aborting them", f.shutdown_timeout_s,
              ctx.generations_in_flight());
    loop->stop();
    ctx.wait_generations_idle(std::chrono::seconds(10));
  }
  http.stop();
  loop->stop();
  log::info("stopped");
  return 0;
}

}  // namespace

Run add_serve(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "serve the model over an OpenAI-compatible HTTP API");
  f->model.add(*cmd);
  cmd->add_option("--host", f->host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", f->port, "port to listen on (0: any free port)")->capture_default_str();
  cmd->add_option("--max-running-requests", f->max_running_requests, "requests in the running batch at most")
      ->capture_default_str();
  cmd->add_option("--max-model-len", f->max_model_len, "context length (0: the model's max_position_embeddings)")
      ->capture_default_str();
  cmd->add_option("--kv-cache-tokens", f->kv_cache_tokens, "KV cache capacity in tokens (0: automatic)")
      ->capture_default_str();
  f->kv.add_dtype(*cmd);
  f->kv.add_budget(*cmd);
  f->kv.add_prefix_caching(*cmd);
  cmd->add_option("--max-batch-tokens", f->max_batch_tokens, "token budget of one forward pass (chunked prefill)")
      ->capture_default_str();
  cmd->add_option("--served-model-name", f->served_model_name,
                  "the model name clients send (default: the --model folder's name)");
  cmd->add_option("--max-body-bytes", f->max_body_bytes, "larger request bodies get 413")->capture_default_str();
  cmd->add_option("--http-threads", f->http_threads,
                  "HTTP worker threads; each streaming request holds one (0: max(64, 2 x max running + 16))")
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", f->shutdown_timeout_s,
                  "seconds to let in-flight requests finish after SIGTERM before aborting them")
      ->capture_default_str();
  cmd->add_option("--tool-call-parser", f->tool_call_parser,
                  "format of the model's tool calls in chat completions (default: detected from the chat template; "
                  "none: do not parse tool calls)")
      ->check(CLI::IsMember(server::tool_parser_flag_values()));
  cmd->add_option("--reasoning-parser", f->reasoning_parser,
                  "format of the model's reasoning (<think>...</think>) in chat completions (default: detected from "
                  "the chat template; none: keep it in the content)")
      ->check(CLI::IsMember(server::reasoning_parser_flag_values()));
  return [f] { return run_serve(*f); };
}

}  // namespace tandem::app
