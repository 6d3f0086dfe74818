#include "tests/observability/prometheus_rig.hpp"

#include <cctype>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "http/curl_client.hpp"
#include "tests/support/process.hpp"

namespace acme_sidecar::testing {

using nlohmann::json;
using namespace std::chrono_literals;

namespace {
std::string prometheus_binary() {
  const char* p = std::getenv("PROMETHEUS");
  return p != nullptr && *p != '\0' ? p : "/usr/bin/prometheus";
}

std::string quoted(const std::string& s) { return json(s).dump(); }  // a JSON string is a YAML string
}  // namespace

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string PrometheusRig::config() const {
  // What the Prometheus Operator generates for the shipped PodMonitor, minus Kubernetes discovery:
  // job_name "podMonitor/<ns>/<name>/0", the job label rewritten to "<ns>/<name>", and the target
  // labels namespace, pod, container and endpoint (the port's name). honor_labels stays false, so a
  // clashing exported label would show up as exported_<label>.
  std::ostringstream y;
  y << "global:\n  scrape_interval: " << options_.scrape_interval << "\n  scrape_timeout: " << options_.scrape_interval
    << "\n  evaluation_interval: " << options_.scrape_interval << "\nrule_files:\n";
  for (const auto& f : options_.rule_files) y << "  - " << quoted(f.string()) << "\n";
  y << "scrape_configs:\n  - job_name: "
    << quoted("podMonitor/" + options_.podmonitor_namespace + "/" + options_.podmonitor_name + "/0")
    << "\n    honor_labels: false\n    metrics_path: /metrics\n    static_configs:\n";
  for (const auto& t : options_.targets) {
    y << "      - targets: [" << quoted(t.address) << "]\n        labels:\n          namespace: " << quoted(t.namespace_)
      << "\n          pod: " << quoted(t.pod) << "\n          container: " << quoted(options_.container)
      << "\n          endpoint: " << quoted(options_.endpoint) << "\n";
  }
  y << "    relabel_configs:\n      - target_label: job\n        replacement: " << quoted(job()) << "\n";
  return y.str();
}

PrometheusRig::PrometheusRig(PrometheusOptions options) : options_(std::move(options)) {
  dir_ = std::make_unique<TempDir>("acme-sidecar-prometheus");
  write_file(dir_->path() / "prometheus.yml", config());
  Subprocess::Options o;
  o.argv = {prometheus_binary(),
            "--config.file=" + (dir_->path() / "prometheus.yml").string(),
            "--storage.tsdb.path=" + (dir_->path() / "data").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(options_.port),
            // Debian's defaults point at /etc/prometheus; nothing here may depend on the host's files.
            "--web.console.templates=" + (dir_->path() / "consoles").string(),
            "--web.console.libraries=" + (dir_->path() / "console_libraries").string(),
            "--log.level=info"};
  o.log_file = dir_->path() / "prometheus.log";
  o.cwd = dir_->path();
  process_ = std::make_unique<Subprocess>(o);
  bool ready = poll_until(
      [&] {
        if (!process_->running()) return false;
        try {
          http::CurlClient client;
          http::Request r;
          r.url = "http://127.0.0.1:" + std::to_string(options_.port) + "/-/ready";
          r.timeout = 2s;
          return client.send(r).status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      60s);
  if (!ready) throw std::runtime_error("prometheus did not become ready; log:\n" + log());
}

PrometheusRig::~PrometheusRig() {
  if (process_) process_->stop(5000ms);
}

std::string PrometheusRig::log() const { return read_file(dir_->path() / "prometheus.log"); }

json PrometheusRig::post(const std::string& path, const Form& form) const { return call("POST", path, form); }
json PrometheusRig::get(const std::string& path, const Form& form) const { return call("GET", path, form); }

json PrometheusRig::call(const std::string& method, const std::string& path, const Form& form) const {
  std::string encoded;
  for (const auto& [k, v] : form) encoded += (encoded.empty() ? "" : "&") + url_encode(k) + "=" + url_encode(v);
  http::CurlClient client;
  http::Request r;
  r.method = method;
  r.url = "http://127.0.0.1:" + std::to_string(options_.port) + path;
  if (method == "GET") {
    if (!encoded.empty()) r.url += "?" + encoded;
  } else {
    r.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    r.body = encoded;
  }
  r.timeout = 30s;
  auto resp = client.send(r);
  auto doc = json::parse(resp.body, nullptr, false);
  if (doc.is_discarded())
    throw std::runtime_error("prometheus " + path + ": HTTP " + std::to_string(resp.status) + ", not JSON: " + resp.body);
  return doc;
}

json PrometheusRig::query(const std::string& expr, double time) const {
  Form f{{"query", expr}};
  if (time > 0) f.emplace_back("time", std::to_string(time));
  return post("/api/v1/query", f);
}

json PrometheusRig::query_range(const std::string& expr, double start, double end, double step_seconds) const {
  return post("/api/v1/query_range", {{"query", expr},
                                      {"start", std::to_string(start)},
                                      {"end", std::to_string(end)},
                                      {"step", std::to_string(step_seconds)}});
}

json PrometheusRig::vector(const std::string& expr) const {
  auto doc = query(expr);
  if (doc.value("status", "") != "success" || doc["data"].value("resultType", "") != "vector") return json::array();
  return doc["data"]["result"];
}

}  // namespace acme_sidecar::testing
