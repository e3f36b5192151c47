// What every route handler shares: the served model, its tokenizer, the engine loop, the output parsers, metrics,
// the server's lifecycle state, and the count of HTTP generations in flight (for draining on SIGTERM).
//
// Threading: model / tokenizer / loop / output parsers are set once by the loader before `state` becomes kReady (release
// store) and only read afterwards (acquire load in ready()); nothing else mutates them while serving.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "models/loaded_model.h"
#include "server/engine_loop.h"
#include "server/metrics.h"
#include "server/output_parsers.h"
#include "tokenizer/tokenizer.h"

namespace tandem::server {

enum class ServerState { kLoading, kReady, kDraining };

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string served_model_name;        // the `model` clients send; default: the --model argument
  std::string model_path;
  size_t max_body_bytes = 4u << 20;     // larger bodies get 413
  int http_threads = 0;                 // 0: enough for every running request to stream, plus headroom
  double health_timeout_s = 20.0;       // /health_generate gives up (503) after this long
};

class ServerContext {
 public:
  explicit ServerContext(ServerOptions options) : options_(std::move(options)) {}

  const ServerOptions& options() const { return options_; }
  Metrics& metrics() { return metrics_; }

  ServerState state() const { return state_.load(std::memory_order_acquire); }
  bool ready() const { return state() == ServerState::kReady; }
  void set_state(ServerState s) { state_.store(s, std::memory_order_release); }

  /// Installs what loading produced. Call before set_state(kReady).
  void attach(const models::LoadedModel& model, std::shared_ptr<const tokenizer::Tokenizer> tok, EngineLoop& loop,
              nlohmann::ordered_json server_args);
  const models::LoadedModel& model() const { return *model_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tokenizer_; }
  EngineLoop& loop() const { return *loop_; }  // the loop is thread-safe; const here means "read-only context"
  const nlohmann::ordered_json& server_args() const { return server_args_; }
  /// The tool-call and reasoning parsers of chat completions (none until set). Call before set_state(kReady).
  void set_output_parsers(OutputParsers parsers) { output_parsers_ = std::move(parsers); }
  const OutputParsers& output_parsers() const { return output_parsers_; }
  const std::vector<int32_t>& eos_token_ids() const { return eos_ids_; }
  int64_t max_model_len() const { return loop_->engine().max_model_len(); }
  int64_t created() const { return created_; }

  /// A fresh id "<prefix><24 hex>" for responses and logs.
  std::string new_id(const std::string& prefix);

  /// HTTP generations in flight (a streaming one lasts until its stream ends).
  void generation_started();
  void generation_finished();
  int64_t generations_in_flight() const;
  /// Waits until no generation is in flight or the timeout passes; true when idle.
  bool wait_generations_idle(std::chrono::milliseconds timeout);

 private:
  ServerOptions options_;
  std::atomic<ServerState> state_{ServerState::kLoading};
  Metrics metrics_;
  const models::LoadedModel* model_ = nullptr;
  std::shared_ptr<const tokenizer::Tokenizer> tokenizer_;
  EngineLoop* loop_ = nullptr;
  nlohmann::ordered_json server_args_;
  OutputParsers output_parsers_;
  std::vector<int32_t> eos_ids_;
  int64_t created_ = 0;

  std::mutex id_mu_;
  uint64_t id_state_ = 0;

  mutable std::mutex gen_mu_;
  std::condition_variable gen_cv_;
  int64_t generations_ = 0;
};

}  // namespace tandem::server
