#include "server/server_context.h"

#include <fmt/format.h>

#include <random>

namespace tandem::server {

void ServerContext::attach(const models::LoadedModel& model, std::shared_ptr<const tokenizer::Tokenizer> tok,
                           EngineLoop& loop, nlohmann::ordered_json server_args) {
  model_ = &model;
  tokenizer_ = std::move(tok);
  loop_ = &loop;
  server_args_ = std::move(server_args);
  eos_ids_ = model.config.eos_token_ids;
  created_ = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                 .count();
  std::random_device rd;
  id_state_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(created_);
}

std::string ServerContext::new_id(const std::string& prefix) {
  // splitmix64: unique per call (a counter through a bijection), unpredictable enough for ids.
  uint64_t a, b;
  {
    std::lock_guard<std::mutex> lock(id_mu_);
    auto next = [&] {
      uint64_t z = (id_state_ += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      return z ^ (z >> 31);
    };
    a = next();
    b = next();
  }
  return fmt::format("{}{:016x}{:08x}", prefix, a, static_cast<uint32_t>(b));
}

void ServerContext::generation_started() {
  std::lock_guard<std::mutex> lock(gen_mu_);
  ++generations_;
}

void ServerContext::generation_finished() {
  {
    std::lock_guard<std::mutex> lock(gen_mu_);
    --generations_;
  }
  gen_cv_.notify_all();
}

int64_t ServerContext::generations_in_flight() const {
  std::lock_guard<std::mutex> lock(gen_mu_);
  return generations_;
}

bool ServerContext::wait_generations_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(gen_mu_);
  return gen_cv_.wait_for(lock, timeout, [&] { return generations_ == 0; });
}

}  // namespace tandem::server
