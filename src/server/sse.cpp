#include "server/sse.h"

#include "server/json_fields.h"

namespace tandem::server {

std::string sse_event(const nlohmann::json& j) {
  std::string s = "data: ";
  s += dump_json(j);  // compact: never contains a raw newline, so one line per event
  s += "\n\n";
  return s;
}

std::string sse_event(std::string_view name, const nlohmann::ordered_json& j) {
  std::string s = "event: ";
  s += name;
  s += "\ndata: ";
  s += dump_json(j);
  s += "\n\n";
  return s;
}

std::vector<std::string> SseParser::push(std::string_view bytes) {
  buf_.append(bytes);
  std::vector<std::string> events;
  for (;;) {
    // An event ends at a blank line.
    size_t end = std::string::npos, skip = 0;
    for (size_t i = 0; i + 1 < buf_.size(); ++i) {
      if (buf_[i] != '\n') continue;
      if (buf_[i + 1] == '\n') {
        end = i;
        skip = 2;
        break;
      }
      if (buf_[i + 1] == '\r' && i + 2 < buf_.size() && buf_[i + 2] == '\n') {
        end = i;
        skip = 3;
        break;
      }
    }
    if (end == std::string::npos) break;
    const std::string block = buf_.substr(0, end);
    buf_.erase(0, end + skip);
    std::string data;
    bool has_data = false;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t nl = block.find('\n', pos);
      if (nl == std::string::npos) nl = block.size();
      std::string line = block.substr(pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      pos = nl + 1;
      if (line.rfind("data:", 0) != 0) continue;
      std::string v = line.substr(5);
      if (!v.empty() && v[0] == ' ') v.erase(0, 1);
      if (has_data) data += '\n';
      data += v;
      has_data = true;
    }
    if (has_data) events.push_back(std::move(data));
  }
  return events;
}

}  // namespace tandem::server
