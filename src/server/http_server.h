// The HTTP transport: cpp-httplib's thread pool, routes, and the error boundary. A handler converts the
// request body into a route call and the route's Reply into bytes; every exception stops here and becomes
// an error in the shape of the route's API (OpenAI's, or Anthropic's on /v1/messages*), so nothing a client
// sends can take the process down.
//
// Status rules: unknown route 404, known route with another method 405 (with Allow), body over the limit
// 413, generation routes 503 while loading or draining, info routes 503 only while loading.
#pragma once

#include <memory>
#include <thread>

#include "server/server_context.h"

namespace httplib {
class Server;
}

namespace tandem::server {

class HttpServer {
 public:
  explicit HttpServer(ServerContext& ctx);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds host:port (port 0: any free port, see port()) and serves on a background thread. Throws
  /// tandem::Error when it cannot bind.
  void start();
  /// Stops accepting, lets handlers in progress return, joins. Idempotent.
  void stop();
  int port() const { return port_; }

 private:
  void install_routes();

  ServerContext& ctx_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace tandem::server
