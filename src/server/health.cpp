#include "server/health.h"

#include <fmt/format.h>

#include "core/error.h"

namespace tandem::server {

std::string probe_generation(ServerContext& ctx, double timeout_s) {
  engine::GenerateRequest r;
  try {
    r.prompt = ctx.tokenizer().encode("ping", /*add_special_tokens=*/true);
  } catch (const Error& e) {
    return fmt::format("tokenizer failed: {}", e.what());
  }
  if (r.prompt.empty()) r.prompt = {0};
  r.max_tokens = 1;
  r.sampling.temperature = 0.0f;
  r.ignore_eos = true;
  auto queue = std::make_shared<OutputQueue>();
  uint64_t id = 0;
  try {
    id = ctx.loop().submit(r, queue, 0, Clock::now(), /*observe=*/false);
  } catch (const Error& e) {
    return fmt::format("the engine rejected the probe: {}", e.what());
  }
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  int64_t tokens = 0;
  std::vector<TaggedOutput> outs;
  while (Clock::now() < deadline) {
    outs.clear();
    queue->pop_all(outs, std::chrono::milliseconds(50));
    for (const auto& o : outs) {
      tokens += static_cast<int64_t>(o.out.new_tokens.size());
      if (!o.out.finished()) continue;
      if (o.out.finish == engine::FinishReason::kError) return fmt::format("generation failed: {}", o.out.error);
      if (tokens != 1)
        return fmt::format("expected 1 token, got {} (finish: {})", tokens, engine::finish_reason_name(o.out.finish));
      return "";
    }
  }
  ctx.loop().abort(id);
  return fmt::format("no token within {} s", timeout_s);
}

}  // namespace tandem::server
