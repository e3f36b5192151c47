// `tandem` subcommands. Each registers its flags and returns the function to run after parsing.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace tandem::app {

using Run = std::function<int()>;

Run add_generate(CLI::App& app);
Run add_inspect(CLI::App& app);
Run add_bench(CLI::App& app);
Run add_quantize(CLI::App& app);
Run add_serve(CLI::App& app);
/// `bench serve`, a subcommand of the `bench` subcommand: pass bench's CLI::App.
Run add_bench_serve(CLI::App& bench);
Run add_tokenize(CLI::App& app);

}  // namespace tandem::app
