// `tandem quantize --model IN --out OUT --scheme fp8-channel|fp8-block [--format compressed-tensors|fp8]`
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "quant/quantize_checkpoint.h"

namespace tandem::app {

namespace {
struct QuantizeFlags {
  std::string in, out, scheme = "fp8-channel", format = "compressed-tensors";
  int block = 128;
};

int run_quantize(const QuantizeFlags& f) {
  quant::QuantizeOptions o;
  if (f.scheme == "fp8-channel") o.strategy = quant::Fp8Strategy::kChannel;
  else if (f.scheme == "fp8-block") o.strategy = quant::Fp8Strategy::kBlock;
  else fail("--scheme {}: use fp8-channel or fp8-block", f.scheme);
  if (f.format == "compressed-tensors") o.format = quant::CheckpointFormat::kCompressedTensors;
  else if (f.format == "fp8") o.format = quant::CheckpointFormat::kDeepSeekFp8;
  else fail("--format {}: use compressed-tensors or fp8", f.format);
  if (f.block < 1) fail("--block must be positive");
  o.block = f.block;
  const auto r = quant::quantize_checkpoint(f.in, f.out, o);
  std::cout << fmt::format("{} -> {}: {} linears in fp8, {} tensors kept, {:.2f} MB -> {:.2f} MB\n", f.in, f.out,
                           r.quantized, r.kept, r.bytes_in / 1e6, r.bytes_out / 1e6);
  return 0;
}
}  // namespace

Run add_quantize(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = app.add_subcommand("quantize", "write an FP8 copy of a BF16 checkpoint");
  cmd->add_option("--model", f->in, "input checkpoint folder")->required();
  cmd->add_option("--out", f->out, "output folder (new or empty)")->required();
  cmd->add_option("--scheme", f->scheme, "fp8-channel | fp8-block")->capture_default_str();
  cmd->add_option("--format", f->format, "compressed-tensors | fp8 (DeepSeek style)")->capture_default_str();
  cmd->add_option("--block", f->block, "block edge for fp8-block")->capture_default_str();
  return [f] { return run_quantize(*f); };
}

}  // namespace tandem::app
