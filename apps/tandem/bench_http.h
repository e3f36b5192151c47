// What the HTTP benchmarks of `tandem bench serve` share: summary statistics (vLLM's definitions), the server's
// base URL, JSON GETs, and counters read from /metrics.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace tandem::app {

/// numpy.percentile's default (linear interpolation between closest ranks).
double percentile(std::vector<double> v, double p);
double mean(const std::vector<double>& v);
/// Splits "http://host:port" into what httplib::Client takes.
std::string base_of(const std::string& url);
/// GET path as JSON; throws tandem::Error naming the path on any failure.
nlohmann::json get_json(httplib::Client& cli, const std::string& path);
/// A streaming POST's outcome: the HTTP status (0: transport failure, `error` says which) and, for a status other
/// than 200, the body's first 4 KiB.
struct StreamPost {
  int status = 0;
  std::string error;
  std::string body;
};
/// POSTs a JSON body to base + path and hands each SSE event's data to on_event, as it arrives (on_event returns
/// false to stop reading).
StreamPost post_events(const std::string& base, const std::string& path, const std::string& body, double timeout_s,
                       const std::function<bool(const std::string&)>& on_event);

/// Samples of /metrics whose name starts with `prefix`, keyed by the rest of the name (labels kept); empty when
/// /metrics cannot be read.
std::map<std::string, double> metric_samples(httplib::Client& cli, const std::string& prefix);

}  // namespace tandem::app
