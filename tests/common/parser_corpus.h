// The tool-call / reasoning parser corpus (tests/fixtures/parsers/*.json: real model outputs per format, with the
// expected message) as cases for the response-assembly tests of both chat APIs (server_chat_output_test,
// anthropic_output_test).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/chat_output.h"

namespace tandem::test {

struct ParserCase {
  std::string id;  // file/case
  std::string text;
  server::ChatOutputOptions options;
  nlohmann::json expect;  // the corpus's expected message (null for cases made elsewhere)
};

inline std::filesystem::path parser_corpus_dir() {
  return std::filesystem::path(TANDEM_SOURCE_DIR) / "tests" / "fixtures" / "parsers";
}

/// Every case of every corpus file, files in name order.
inline std::vector<ParserCase> load_parser_corpus() {
  namespace fs = std::filesystem;
  using nlohmann::json;
  std::vector<ParserCase> cases;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(parser_corpus_dir()))
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    std::ifstream in(file);
    const json doc = json::parse(in);
    for (const json& c : doc.at("cases")) {
      cases.push_back(
          {.id = file.stem().string() + "/" + c.at("name").get<std::string>(),
           .text = c.at("text").get<std::string>(),
           .options = {.tool_parser = c.value("tool_parser", doc.at("tool_parser").get<std::string>()),
                       .reasoning_parser = c.value("reasoning_parser", doc.at("reasoning_parser").get<std::string>()),
                       .starts_in_reasoning = c.value("starts_in_reasoning", false),
                       .schemas = parsers::ToolSchemas::from_openai_tools(doc.at("tools"))},
           .expect = c.at("expect")});
    }
  }
  return cases;
}

}  // namespace tandem::test
