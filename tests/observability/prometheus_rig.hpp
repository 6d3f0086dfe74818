#pragma once
// A real Prometheus (Debian's /usr/bin/prometheus, 2.42) on 127.0.0.1, per test run, inside the
// test's network namespace. It scrapes the given sidecars the way the shipped PodMonitor makes the
// Prometheus Operator scrape them (job "<namespace>/acme-sidecar", target labels namespace, pod,
// container, endpoint), loads the given rule files, and answers the HTTP API.
#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace acme_sidecar::testing {

class Subprocess;
class TempDir;

struct ScrapeTarget {
  std::string address;    // host:port of /metrics
  std::string namespace_; // the pod's namespace (target label `namespace`)
  std::string pod;        // target label `pod`
};

struct PrometheusOptions {
  int port = 9090;
  std::string scrape_interval = "1s";       // also the rule evaluation interval
  std::string podmonitor_namespace = "acme-sidecar";
  std::string podmonitor_name = "acme-sidecar";  // manifests/components/monitoring/podmonitor.yaml
  std::string container = "acme-sidecar";
  std::string endpoint = "acme-metrics";         // the PodMonitor's port name
  std::vector<ScrapeTarget> targets;
  std::vector<std::filesystem::path> rule_files;
};

using Form = std::vector<std::pair<std::string, std::string>>;

class PrometheusRig {
 public:
  // Starts Prometheus and waits until /-/ready answers. Throws std::runtime_error with its log.
  explicit PrometheusRig(PrometheusOptions options);
  ~PrometheusRig();
  PrometheusRig(const PrometheusRig&) = delete;
  PrometheusRig& operator=(const PrometheusRig&) = delete;

  // POST <path> with a form body (as Grafana does); the decoded JSON answer, whatever its status.
  // Throws std::runtime_error when the answer is not JSON.
  nlohmann::json post(const std::string& path, const Form& form) const;
  // GET <path>?<form> (endpoints that take no POST, e.g. /api/v1/label/<name>/values in 2.42).
  nlohmann::json get(const std::string& path, const Form& form) const;
  // /api/v1/query at `time` (Unix seconds; now when 0).
  nlohmann::json query(const std::string& expr, double time = 0) const;
  // /api/v1/query_range.
  nlohmann::json query_range(const std::string& expr, double start, double end, double step_seconds) const;
  // The `data` of a successful /api/v1/query (vector result), empty when the query failed.
  nlohmann::json vector(const std::string& expr) const;

  std::string config() const;  // the generated prometheus.yml
  std::string log() const;
  std::string job() const { return options_.podmonitor_namespace + "/" + options_.podmonitor_name; }
  const PrometheusOptions& options() const { return options_; }

 private:
  nlohmann::json call(const std::string& method, const std::string& path, const Form& form) const;
  PrometheusOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> process_;
};

// Percent-encoding for form bodies and query strings.
std::string url_encode(const std::string& s);

}  // namespace acme_sidecar::testing
