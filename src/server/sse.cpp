#include "server/sse.h"

#include "server/json_fields.h"

namespace tandem::server {

std::string sse_event(const nlohmann::json& j) {
  std::string s = "data: ";
  s += dump_json(j);  // compact: never contains a raw newline, so one line per event
  s += "\n\n";
  return s;
}

}  // namespace tandem::server
