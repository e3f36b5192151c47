// tandem: one binary, subcommands generate | inspect | serve | bench | tokenize | quantize.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "commands.h"
#include "core/error.h"
#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("tandem"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  CLI::App app{"tandem: an inference server built around MTP / NextN speculative decoding"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "debug logging");
  std::vector<std::pair<CLI::App*, tandem::app::Run>> cmds;
  auto reg = [&](tandem::app::Run (*add)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    tandem::app::Run run = add(app);
    cmds.emplace_back(app.get_subcommands({})[before], std::move(run));
  };
  reg(tandem::app::add_generate);
  reg(tandem::app::add_inspect);
  reg(tandem::app::add_bench);
  reg(tandem::app::add_quantize);
  reg(tandem::app::add_serve);
  reg(tandem::app::add_tokenize);
  CLI11_PARSE(app, argc, argv);
  if (verbose) spdlog::set_level(spdlog::level::debug);
  try {
    for (auto& [cmd, run] : cmds)
      if (cmd->parsed()) return run();
  } catch (const tandem::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("internal error: {}", e.what());
    return 2;
  }
  return 0;
}
