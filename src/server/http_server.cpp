#include "server/http_server.h"

#include <fmt/format.h>
#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "server/anthropic_api.h"
#include "server/errors.h"
#include "server/health.h"
#include "server/native_api.h"
#include "server/openai_api.h"
#include "server/sse.h"

namespace tandem::server {

namespace {

/// httplib listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, fixed when Debian compiled the library):
/// 32 clients connecting at once overflow it and some connections die. Linux lets listen() be called again
/// on a listening socket to raise the backlog; this subclass exposes the socket to do that.
class BacklogServer : public httplib::Server {
 public:
  void raise_backlog(int backlog) {
    if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, backlog);
  }
};

enum class Needs { kNothing, kLoaded, kReady };

/// A route: the request (path matches, headers), its body, and its arrival time -> a Reply.
using RouteFn = std::function<Reply(const httplib::Request&, const std::string& body, Clock::time_point)>;

void write_error(httplib::Response& res, const ApiError& e, ErrorShape shape) {
  res.status = e.status();
  res.set_content(dump_json(error_body(e, shape)), "application/json");
}

/// The Anthropic routes answer in Anthropic's error shape, unknown paths under them included.
ErrorShape shape_of_path(const std::string& path) {
  return path.starts_with("/v1/messages") ? ErrorShape::kAnthropic : ErrorShape::kOpenAi;
}

/// Sends a Reply through httplib; an event stream is pulled on this connection's thread until it ends or
/// the client goes away (a failed write, or the socket no longer writable), which destroys the stream and
/// so aborts its engine requests.
void send(Reply r, httplib::Response& res, ErrorShape shape) {
  res.status = r.status;
  if (!r.stream) {
    res.set_content(r.body, r.content_type);
    return;
  }
  std::shared_ptr<EventStream> stream(std::move(r.stream));
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(r.content_type, [stream, shape](size_t, httplib::DataSink& sink) {
    std::string out;
    bool more = false;
    try {
      more = stream->next(out);
    } catch (const std::exception& e) {
      log::error("stream failed: {}", e.what());
      const ApiError err(500, fmt::format("stream failed: {}", e.what()), "", "internal_error");
      if (shape == ErrorShape::kAnthropic) {
        out += sse_event("error", error_body(err, shape));
      } else {
        out += sse_event(err.to_json());
        out += kSseDone;
      }
      more = false;
    }
    if (!out.empty() && !sink.write(out.data(), out.size())) return false;  // client gone
    if (!more) {
      sink.done();
      return true;
    }
    return out.empty() ? sink.is_writable() : true;
  });
}

std::string state_message(ServerState s) {
  return s == ServerState::kLoading ? "the model is loading" : "the server is shutting down";
}

}  // namespace

HttpServer::HttpServer(ServerContext& ctx) : ctx_(ctx), svr_(std::make_unique<BacklogServer>()) {
  const auto& o = ctx_.options();
  int threads = o.http_threads;
  if (threads <= 0) threads = 64;
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr_->set_payload_max_length(o.max_body_bytes);
  svr_->set_tcp_nodelay(true);  // SSE chunks are small; don't let Nagle hold them back
  // httplib's default options add SO_REUSEPORT, which lets a second server bind the same port and silently
  // share its connections; keep only SO_REUSEADDR (fast restarts), so a taken port is an error.
  svr_->set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  svr_->set_keep_alive_max_count(1000);
  svr_->set_keep_alive_timeout(5);
  install_routes();
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::install_routes() {
  // Every known path with the methods it allows; other methods get 405 from the same table.
  struct Route {
    std::string pattern;
    std::string method;
    Needs needs;
    RouteFn fn;
    ErrorShape shape = ErrorShape::kOpenAi;  // the body of its errors
  };
  ServerContext& ctx = ctx_;
  std::vector<Route> routes = {
      {"/v1/completions", "POST", Needs::kReady,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point t) { return handle_completions(ctx, b, t); }},
      {"/v1/chat/completions", "POST", Needs::kReady,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point t) {
         return handle_chat_completions(ctx, b, t);
       }},
      {"/v1/messages", "POST", Needs::kReady,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point t) { return handle_messages(ctx, b, t); },
       ErrorShape::kAnthropic},
      {"/v1/messages/count_tokens", "POST", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point) { return handle_count_tokens(ctx, b); },
       ErrorShape::kAnthropic},
      {"/generate", "POST", Needs::kReady,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point t) { return handle_generate(ctx, b, t); }},
      {"/v1/models", "GET", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) { return handle_models(ctx, ""); }},
      {R"(/v1/models/(.+))", "GET", Needs::kLoaded,
       [&ctx](const httplib::Request& q, const std::string&, Clock::time_point) {
         return handle_models(ctx, q.matches[1].str());
       }},
      {"/tokenize", "POST", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point) { return handle_tokenize(ctx, b); }},
      {"/detokenize", "POST", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string& b, Clock::time_point) { return handle_detokenize(ctx, b); }},
      {"/get_model_info", "GET", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) { return handle_model_info(ctx); }},
      {"/get_server_info", "GET", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) { return handle_server_info(ctx); }},
      {"/metrics", "GET", Needs::kLoaded,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) {
         return Reply::text(ctx.metrics().render(ctx.loop().snapshot(), ctx.loop().engine().speculative()),
                            "text/plain; version=0.0.4; charset=utf-8");
       }},
      {"/flush_cache", "POST", Needs::kReady,  // SGLang's: drops every prefix-cache key
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) {
         if (!ctx.loop().engine().prefix_caching())
           throw ApiError(400, "prefix caching is off (the server runs with --disable-prefix-caching)", "",
                          "invalid_request_error");
         if (!ctx.loop().flush_prefix_cache(std::chrono::seconds(30)))
           throw ApiError(503, "the engine did not get to the flush within 30 s", "", "service_unavailable");
         return Reply::text("Cache flushed.\n", "text/plain; charset=utf-8");
       }},
      {"/health", "GET", Needs::kNothing,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) {
         if (!ctx.ready()) throw ApiError(503, state_message(ctx.state()), "", "service_unavailable");
         return Reply::json({{"status", "ok"}});
       }},
      {"/health_generate", "GET", Needs::kReady,
       [&ctx](const httplib::Request&, const std::string&, Clock::time_point) {
         if (std::string err = probe_generation(ctx, ctx.options().health_timeout_s); !err.empty()) {
           log::warn("/health_generate failed: {}", err);
           throw ApiError(503, "health generation failed: " + err, "", "service_unavailable");
         }
         return Reply::json({{"status", "ok"}});
       }},
  };

  // POST bodies are read through a content reader: httplib's own body reading caps form-urlencoded bodies
  // (what `curl -d` sends by default) at 8 KiB; this way only --max-body-bytes applies, to every type.
  auto boundary = [&ctx](Needs needs, RouteFn fn, ErrorShape shape) {
    return [&ctx, needs, fn = std::move(fn), shape](const httplib::Request& req, httplib::Response& res,
                                                    const httplib::ContentReader* reader) {
      auto write_error = [&res, shape](const ApiError& e) { server::write_error(res, e, shape); };
      const auto arrival = Clock::now();
      std::string body;
      try {
        if (reader) {
          const bool read = (*reader)([&](const char* data, size_t n) {
            body.append(data, n);
            return true;
          });
          if (!read) {
            if (res.status == 413) throw ApiError(413, "the request body is too large", "", "payload_too_large");
            throw ApiError(400, "could not read the request body", "", "bad_request");
          }
        }
        const ServerState s = ctx.state();
        if ((needs == Needs::kReady && s != ServerState::kReady) || (needs == Needs::kLoaded && s == ServerState::kLoading))
          throw ApiError(503, state_message(s), "", "service_unavailable");
        send(fn(req, body, arrival), res, shape);
      } catch (const ApiError& e) {
        write_error(e);
      } catch (const std::bad_alloc&) {
        log::error("{} {}: out of memory", req.method, req.path);
        write_error(ApiError(500, "out of memory", "", "internal_error"));
      } catch (const std::exception& e) {
        log::error("{} {}: {}", req.method, req.path, e.what());
        write_error(ApiError(500, fmt::format("internal error: {}", e.what()), "", "internal_error"));
      } catch (...) {
        log::error("{} {}: unknown exception", req.method, req.path);
        write_error(ApiError(500, "internal error", "", "internal_error"));
      }
    };
  };
  auto not_allowed = [](std::string allow, ErrorShape shape) {
    return [allow = std::move(allow), shape](const httplib::Request& req, httplib::Response& res,
                                             const httplib::ContentReader* reader) {
      if (reader) (*reader)([](const char*, size_t) { return true; });  // drain, so keep-alive stays usable
      res.set_header("Allow", allow);
      write_error(res,
                  ApiError(405, fmt::format("method {} is not allowed on {}; use {}", req.method, req.path, allow),
                           "", "method_not_allowed"),
                  shape);
    };
  };
  for (auto& r : routes) {
    auto h = boundary(r.needs, std::move(r.fn), r.shape);
    auto bad = not_allowed(r.method, r.shape);
    const bool get = r.method == "GET";
    auto plain = [](auto f) {
      return httplib::Server::Handler([f](const httplib::Request& q, httplib::Response& s) { f(q, s, nullptr); });
    };
    auto with_body = [](auto f) {
      return httplib::Server::HandlerWithContentReader(
          [f](const httplib::Request& q, httplib::Response& s, const httplib::ContentReader& rd) { f(q, s, &rd); });
    };
    svr_->Get(r.pattern, get ? plain(h) : plain(bad));
    svr_->Post(r.pattern, get ? with_body(bad) : with_body(h));
    svr_->Put(r.pattern, with_body(bad));
    svr_->Patch(r.pattern, with_body(bad));
    svr_->Delete(r.pattern, with_body(bad));
  }

  // Statuses httplib produces itself (404 no route, 413 body too large, 400 unreadable request) get the
  // error body of the API the path belongs to too; responses that already carry a body are left alone.
  svr_->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                   httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg, code;
    switch (res.status) {
      case 404: msg = fmt::format("no route {} {}", req.method, req.path); code = "not_found"; break;
      case 413: msg = "the request body is too large"; code = "payload_too_large"; break;
      case 414: msg = "the request URI is too long"; code = "uri_too_long"; break;
      default: msg = fmt::format("HTTP {}", res.status); code = "bad_request"; break;
    }
    res.set_content(dump_json(error_body(ApiError(res.status, msg, "", code), shape_of_path(req.path))),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  svr_->set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log::error("{} {}: {}", req.method, req.path, what);
    write_error(res, ApiError(500, "internal error: " + what, "", "internal_error"), shape_of_path(req.path));
  });
  svr_->set_logger([](const httplib::Request& req, const httplib::Response& res) {
    log::info("http {} {} status={} remote={}", req.method, req.path, res.status, req.remote_addr);
  });
}

void HttpServer::start() {
  const auto& o = ctx_.options();
  if (o.port == 0) {
    port_ = svr_->bind_to_any_port(o.host);
    if (port_ <= 0) fail("cannot listen on {} (no free port)", o.host);
  } else {
    if (!svr_->bind_to_port(o.host, o.port))
      fail("cannot listen on {}:{} (address in use, or not a local address)", o.host, o.port);
    port_ = o.port;
  }
  static_cast<BacklogServer*>(svr_.get())->raise_backlog(SOMAXCONN);
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  svr_->stop();
  thread_.join();
}

}  // namespace tandem::server
