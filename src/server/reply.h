// What a route returns to the transport: a complete body, or an event stream that the transport pulls on
// the connection's own thread. Route code never sees httplib.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "server/json_fields.h"

namespace tandem::server {

/// An SSE body produced incrementally.
class EventStream {
 public:
  virtual ~EventStream() = default;
  /// Appends the next events to `out`, waiting briefly (about 100 ms at most) for engine output so the
  /// transport can notice a client that went away. Returns false after the last events, which `out` holds.
  virtual bool next(std::string& out) = 0;
};

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::unique_ptr<EventStream> stream;  // non-null: text/event-stream, body unused

  static Reply json(const nlohmann::json& j, int status = 200) {
    Reply r;
    r.status = status;
    r.body = dump_json(j);
    return r;
  }
  static Reply text(std::string body, std::string content_type, int status = 200) {
    Reply r;
    r.status = status;
    r.body = std::move(body);
    r.content_type = std::move(content_type);
    return r;
  }
  static Reply events(std::unique_ptr<EventStream> s) {
    Reply r;
    r.content_type = "text/event-stream";
    r.stream = std::move(s);
    return r;
  }
};

}  // namespace tandem::server
