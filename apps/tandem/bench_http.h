// What the HTTP benchmarks of `tandem bench serve` share: summary statistics (vLLM's definitions), the server's
// base URL, JSON GETs, and counters read from /metrics.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

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
/// Samples of /metrics whose name starts with `prefix`, keyed by the rest of the name (labels kept); empty when
/// /metrics cannot be read.
std::map<std::string, double> metric_samples(httplib::Client& cli, const std::string& prefix);

}  // namespace tandem::app
