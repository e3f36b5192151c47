#include "bench_http.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "server/sse.h"

namespace tandem::app {

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const double rank = p / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

std::string base_of(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.size() >= 3 && u.substr(u.size() - 3) == "/v1") u.resize(u.size() - 3);
  if (u.rfind("http://", 0) != 0) fail("--url must start with http:// (got '{}')", url);
  return u;
}

nlohmann::json get_json(httplib::Client& cli, const std::string& path) {
  auto r = cli.Get(path);
  if (!r) fail("GET {} failed: {}", path, httplib::to_string(r.error()));
  if (r->status != 200) fail("GET {} returned {}: {}", path, r->status, r->body);
  try {
    return nlohmann::json::parse(r->body);
  } catch (const std::exception& e) {
    fail("GET {} returned invalid JSON: {}", path, e.what());
  }
}

StreamPost post_events(const std::string& base, const std::string& path, const std::string& body, double timeout_s,
                       const std::function<bool(const std::string&)>& on_event) {
  StreamPost res;
  httplib::Client cli(base);
  cli.set_read_timeout(static_cast<time_t>(timeout_s));
  cli.set_write_timeout(60);
  cli.set_connection_timeout(10);
  server::SseParser parser;
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (res.body.size() < 4096) res.body.append(data, std::min<size_t>(n, 4096));
    for (const std::string& ev : parser.push(std::string_view(data, n)))
      if (!on_event(ev)) return false;
    return true;
  };
  auto r = cli.send(req);
  if (!r) {
    res.error = httplib::to_string(r.error());
    return res;
  }
  res.status = r->status;
  if (r->status != 200 && !r->body.empty()) res.body = r->body;
  return res;
}

std::map<std::string, double> metric_samples(httplib::Client& cli, const std::string& prefix) {
  std::map<std::string, double> out;
  auto r = cli.Get("/metrics");
  if (!r || r->status != 200) return out;
  size_t pos = 0;
  const std::string& b = r->body;
  while (pos < b.size()) {
    size_t nl = b.find('\n', pos);
    if (nl == std::string::npos) nl = b.size();
    const std::string line = b.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos || sp < prefix.size()) continue;
    try {
      out[line.substr(prefix.size(), sp - prefix.size())] = std::stod(line.substr(sp + 1));
    } catch (const std::exception&) {
    }
  }
  return out;
}

}  // namespace tandem::app
