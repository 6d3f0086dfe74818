// The observability, proven on real data: a real acme-sidecar (started by the end-to-end Stack:
// Pebble, nginx with the shipped snippet, the fake API server) issues one certificate and fails
// another; a real Prometheus scrapes it the way the shipped PodMonitor makes the Prometheus
// Operator scrape it, with the shipped alert rules loaded. Then every dashboard query (variables
// filled in as Grafana does) and every alert expression is evaluated through Prometheus's HTTP API,
// and a scrape of the running sidecar is compared with metrics/README.md.
#include <catch2/catch.hpp>
#include <array>
#include <chrono>
#include <cmath>
#include <set>
#include <yaml-cpp/yaml.h>

#include "http/curl_client.hpp"
#include "tests/e2e/stack.hpp"
#include "tests/observability/exposition.hpp"
#include "tests/observability/grafana.hpp"
#include "tests/observability/prometheus_rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::e2e;
using namespace acme_sidecar::observability;
using nlohmann::json;
using testing::PrometheusRig;

namespace {

constexpr const char* kSidecarNamespace = "acme-sidecar";  // the Stack's --namespace: the pod's namespace
constexpr const char* kPod = "sidecar-0";                   // the Stack's --pod-name of replica 0
constexpr const char* kIssuedHost = "web.demo.example";
constexpr const char* kBlockedHost = "blocked.demo.example";

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string tail(const std::string& s, std::size_t n = 4000) { return s.size() > n ? s.substr(s.size() - n) : s; }

http::Response http_request(const std::string& method, const std::string& url, const std::string& body = "") {
  http::CurlClient client;
  http::Request r;
  r.method = method;
  r.url = url;
  r.body = body;
  r.timeout = 10s;
  return client.send(r);
}

// The injected failure: the DNS mock Pebble resolves through answers 127.0.0.2 for this host, where
// no ingress controller listens, so Pebble's HTTP-01 validation fails while the sidecar's own
// self-check (through 127.0.0.1) passes — the classic "DNS points elsewhere".
void point_dns_elsewhere(Stack& stack, const std::string& host) {
  auto port = stack.pebble().options().challtestsrv_management_port;
  auto r = http_request("POST", "http://127.0.0.1:" + std::to_string(port) + "/add-a",
                        json{{"host", host}, {"addresses", {"127.0.0.2"}}}.dump());
  REQUIRE(r.status == 200);
}

StackOptions stack_options() {
  StackOptions o;
  o.leader_elect = true;  // as deployed: the leader metric and the Lease requests are real
  return o;
}

// One issuance and one injected failure (at least two failed attempts, so the failure counter has
// moved after its series appeared).
void issue_one_and_fail_one(Stack& stack) {
  stack.apply(ingress_yaml("demo", "web", {kIssuedHost}, "web-tls"));
  auto secret = stack.wait_secret("demo", "web-tls");
  REQUIRE(stack.chain_verifies(secret));
  stack.load_certificates();  // the controller serves it: the served-certificate probe has a match to report
  point_dns_elsewhere(stack, kBlockedHost);
  stack.apply(ingress_yaml("demo", "blocked", {kBlockedHost}, "blocked-tls"));
  bool failed_twice = testing::poll_until(
      [&] {
        return stack.metric(0, "acme_sidecar_issuance_total", {{"result", "failure"}, {"reason", "validation"}})
                   .value_or(0) >= 2;
      },
      120s);
  INFO("sidecar log tail:\n" << tail(stack.sidecar_log(0)));
  REQUIRE(failed_twice);
  REQUIRE_FALSE(stack.secret("demo", "blocked-tls").has_value());
  bool served = testing::poll_until(
      [&] {
        return stack.metric(0, "acme_sidecar_served_certificate_matches_secret", {{"host", kIssuedHost}}) == 1.0;
      },
      60s);
  REQUIRE(served);
}

// Series of a query result whose labels include all of `want`.
std::vector<json> matching(const json& result, const std::map<std::string, std::string>& want) {
  std::vector<json> out;
  if (!result.is_array()) return out;
  for (const auto& s : result) {
    bool ok = true;
    for (const auto& [k, v] : want)
      if (s["metric"].value(k, std::string("\x01")) != v) ok = false;
    if (ok) out.push_back(s);
  }
  return out;
}

double value_of(const json& series) { return std::stod(series["value"][1].get<std::string>()); }

// Largest finite value of a range-query series (NaN when it has none).
double max_of(const json& series) {
  double best = NAN;
  for (const auto& p : series.value("values", json::array())) {
    double v = std::stod(p[1].get<std::string>());
    if (std::isfinite(v) && (std::isnan(best) || v > best)) best = v;
  }
  return best;
}

std::set<std::string> label_names(const json& series) {
  std::set<std::string> out;
  for (const auto& [k, v] : series["metric"].items()) out.insert(k);
  return out;
}

struct Evaluated {
  DashboardQuery query;
  std::string expr;     // interpolated
  json instant;         // /api/v1/query result (data.result)
  json range;           // /api/v1/query_range result, for time series targets
};

}  // namespace

TEST_CASE("every dashboard and alert query evaluates on a real Prometheus scraping a real sidecar") {
  Stack stack(stack_options());
  testing::PrometheusOptions po;
  po.targets = {{"127.0.0.1:9402", kSidecarNamespace, kPod}};
  po.podmonitor_namespace = kSidecarNamespace;
  const auto rules_file = testing::source_dir() / "manifests/prometheus/acme-sidecar.rules.yml";
  po.rule_files = {rules_file};
  PrometheusRig prom(po);
  INFO("prometheus.yml:\n" << prom.config());

  // Scraped before anything happens, like a Prometheus that has been running for a while: counters
  // are seen from their first value on.
  REQUIRE(testing::poll_until([&] { return !prom.vector("up{job=\"" + prom.job() + "\"} == 1").empty(); }, 60s));
  const double range_start = now_seconds() - 1;

  issue_one_and_fail_one(stack);
  // Prometheus has scraped the final state (and a few more points for rate windows).
  REQUIRE(testing::poll_until(
      [&] {
        auto f = prom.vector("sum(acme_sidecar_issuance_total{result=\"failure\"}) >= 2");
        auto s = prom.vector("acme_sidecar_served_certificate_matches_secret == 1");
        return !f.empty() && !s.empty();
      },
      60s));
  // A few more scrapes of that state, so the last rate windows (4 × scrape interval) are full.
  const double settled = now_seconds();
  REQUIRE(testing::poll_until(
      [&] {
        auto t = prom.vector("timestamp(up{job=\"" + prom.job() + "\"})");
        return !t.empty() && value_of(t[0]) > settled + 5;
      },
      60s));

  // ---------------------------------------------------------------- scrape labels (PodMonitor-like)
  {
    auto up = prom.vector("up");
    REQUIRE(up.size() == 1);
    const auto& l = up[0]["metric"];
    CHECK(l.value("job", "") == "acme-sidecar/acme-sidecar");
    CHECK(l.value("namespace", "") == kSidecarNamespace);
    CHECK(l.value("pod", "") == kPod);
    CHECK(l.value("container", "") == "acme-sidecar");
    CHECK(l.value("endpoint", "") == "acme-metrics");
    // No exported label clashes with a target label (the reason certificates use secret_namespace).
    for (const char* clash : {"exported_namespace", "exported_pod", "exported_job", "exported_instance",
                              "exported_container", "exported_endpoint"}) {
      auto r = prom.vector(std::string("{__name__=~\"acme_sidecar_.+\", ") + clash + "=~\".+\"}");
      INFO(clash << ": " << r.dump().substr(0, 2000));
      INFO("(a sidecar label named like a PodMonitor target label is renamed exported_<label> by the scrape)");
      CHECK(r.empty());
    }
    // Scrapes are clean: no sample Prometheus had to drop.
    CHECK(prom.vector("scrape_samples_post_metric_relabeling > 0").size() == 1);
  }

  // ---------------------------------------------------------------- dashboards
  const double range_end = now_seconds();
  TimeRange tr;
  tr.from = range_start;
  tr.to = range_end;
  tr.scrape_interval = 1;
  INFO("$__interval=" << duration(tr.interval()) << " $__rate_interval=" << duration(tr.rate_interval()));
  // Two selections per dashboard: the real values a user picks, and "All".
  const Selection picked = {{"namespace", {kSidecarNamespace}},
                            {"pod", {kPod}},
                            {"secret_namespace", {"demo"}},
                            {"secret_name", {"web-tls"}},
                            {"datasource", {"prometheus"}}};
  Selection all = picked;
  all["namespace"] = {"$__all"};
  all["pod"] = {"$__all"};

  std::map<std::string, std::vector<Evaluated>> by_panel;  // "<file> / <panel>" -> its targets (picked values)
  std::size_t evaluated = 0;
  for (const char* file : {"acme-sidecar-fleet.json", "acme-sidecar-certificate.json"}) {
    auto dashboard = load_dashboard(testing::source_dir() / "grafana/dashboards" / file);
    REQUIRE(dashboard.queries.size() >= 8);
    for (const Selection* selection : std::array<const Selection*, 2>{&picked, &all}) {
      for (const auto& q : dashboard.queries) {
        std::vector<std::string> unresolved;
        auto expr = interpolate(q.expr, dashboard, *selection, tr, unresolved);
        INFO(file << " / " << q.panel << " " << q.ref_id << ": " << expr);
        CHECK(unresolved.empty());
        Evaluated e{q, expr, json::array(), json::array()};
        auto doc = prom.query(expr, range_end);
        INFO(doc.dump().substr(0, 2000));
        CHECK(doc.value("status", "") == "success");
        CHECK_FALSE(doc.contains("warnings"));
        if (doc.value("status", "") == "success") e.instant = doc["data"]["result"];
        ++evaluated;
        if (!q.instant && q.variable.empty()) {
          auto r = prom.query_range(expr, tr.from, tr.to, tr.interval());
          INFO(r.dump().substr(0, 2000));
          CHECK(r.value("status", "") == "success");
          if (r.value("status", "") == "success") e.range = r["data"]["result"];
        }
        if (!q.label.empty()) {
          // label_values(<selector>, <label>): what Grafana lists in the variable's drop-down.
          auto lv = prom.get("/api/v1/label/" + q.label + "/values",
                              testing::Form{{"match[]", expr},
                                            {"start", std::to_string(tr.from)},
                                            {"end", std::to_string(tr.to)}});
          INFO(lv.dump());
          CHECK(lv.value("status", "") == "success");
          if (selection == &picked) e.instant = lv.value("data", json::array());
        }
        if (selection == &picked) by_panel[std::string(file) + " / " + q.panel].push_back(e);
      }
    }
  }
  INFO("evaluated " << evaluated << " dashboard queries");

  auto panel = [&](const std::string& key, std::size_t target = 0) -> const Evaluated& {
    auto it = by_panel.find(key);
    if (it == by_panel.end() || it->second.size() <= target) FAIL("no panel " << key << " target " << target);
    return it->second[target];
  };
  auto expect_series = [&](const std::string& key, std::size_t target, const std::map<std::string, std::string>& want)
      -> json {
    const auto& e = panel(key, target);
    auto found = matching(e.instant, want);
    INFO(key << " [" << target << "] " << e.expr << "\n→ " << e.instant.dump().substr(0, 3000));
    CHECK(found.size() == 1);
    return found.empty() ? json() : found.front();
  };

  // Variables list the real values.
  for (const char* file : {"acme-sidecar-fleet.json", "acme-sidecar-certificate.json"}) {
    std::string f = file;
    CHECK(panel(f + " / variable namespace").instant == json::array({kSidecarNamespace}));
    CHECK(panel(f + " / variable pod").instant == json::array({kPod}));
  }
  CHECK(panel("acme-sidecar-certificate.json / variable secret_namespace").instant == json::array({"demo"}));
  {
    // The failed certificate has no Secret, hence no expiration series: only the issued one is listed.
    auto names = panel("acme-sidecar-certificate.json / variable secret_name").instant;
    CHECK(names == json::array({"web-tls"}));
  }

  // Certificate table: one row per certificate, with its labels.
  {
    const std::string t = "acme-sidecar-fleet.json / Certificates by time to expiry";
    auto expiry = expect_series(t, 0, {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}});
    if (!expiry.is_null()) {
      CHECK(label_names(expiry) == std::set<std::string>{"secret_namespace", "secret_name", "common_name", "issuer"});
      CHECK(expiry["metric"].value("common_name", "") == kIssuedHost);
      CHECK_FALSE(expiry["metric"].value("issuer", "").empty());
      CHECK(value_of(expiry) > 86400);
    }
    auto ready = expect_series(t, 1, {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}});
    if (!ready.is_null()) CHECK(value_of(ready) == 1);
    auto not_ready = expect_series(t, 1, {{"secret_namespace", "demo"}, {"secret_name", "blocked-tls"}});
    if (!not_ready.is_null()) CHECK(value_of(not_ready) == 0);
    auto renewal = expect_series(t, 2, {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}});
    if (!renewal.is_null()) CHECK(value_of(renewal) > 0);
  }
  // Expiry stats.
  {
    auto s = expect_series("acme-sidecar-certificate.json / Expires in", 0, {});
    if (!s.is_null()) CHECK(value_of(s) > 86400);
    auto soon = expect_series("acme-sidecar-fleet.json / Expiring in 14 days", 0, {});
    if (!soon.is_null()) CHECK(value_of(soon) == 0);  // Pebble's certificates last years
    auto nr = expect_series("acme-sidecar-fleet.json / Not ready", 0, {});
    if (!nr.is_null()) CHECK(value_of(nr) == 1);  // blocked-tls
    auto managed = expect_series("acme-sidecar-fleet.json / Certificates managed", 0, {});
    if (!managed.is_null()) CHECK(value_of(managed) == 2);
    auto failures = expect_series("acme-sidecar-fleet.json / Issuance failures (24 h)", 0, {});
    if (!failures.is_null()) CHECK(value_of(failures) >= 1);
  }
  // Issuance rate by result: both results are drawn, and each shows its attempts at some point.
  {
    const std::string p = "acme-sidecar-fleet.json / Issuance rate by result";
    for (const char* result : {"success", "failure"}) {
      auto s = expect_series(p, 0, {{"result", result}});
      if (!s.is_null()) CHECK(label_names(s) == std::set<std::string>{"result"});
      auto r = matching(panel(p).range, {{"result", result}});
      INFO(p << " range, result=" << result << ": " << panel(p).range.dump().substr(0, 3000));
      INFO("(a counter series that first appears with value 1 is invisible to rate()/increase(): it must exist at 0 "
           "before the first attempt)");
      CHECK(r.size() == 1);
      if (r.size() == 1) CHECK(max_of(r.front()) > 0);
    }
    const std::string reasons = "acme-sidecar-fleet.json / Issuance failures by reason";
    auto v = matching(panel(reasons).range, {{"reason", "validation"}});
    INFO(reasons << ": " << panel(reasons).range.dump().substr(0, 3000));
    INFO("(a failed HTTP-01 validation must be counted as reason=\"validation\", metrics/README.md)");
    CHECK(v.size() == 1);
    if (v.size() == 1) CHECK(max_of(v.front()) > 0);
    const std::string cert_panel = "acme-sidecar-certificate.json / Installation: issuance by result";
    CHECK(matching(panel(cert_panel).range, {{"result", "success"}, {"reason", "issued"}}).size() == 1);
    CHECK(matching(panel(cert_panel).range, {{"result", "failure"}, {"reason", "validation"}}).size() == 1);
    // Issuance duration: a quantile was drawn.
    auto d = panel("acme-sidecar-fleet.json / Issuance duration", 0).range;
    CHECK(d.size() == 1);
    if (d.size() == 1) CHECK(std::isfinite(max_of(d.front())));
  }
  // ACME request latency by endpoint: the endpoints of an order, with real quantiles.
  {
    const std::string p = "acme-sidecar-fleet.json / ACME request latency p50 / p99 by endpoint";
    const std::set<std::string> order_endpoints{"order", "authz", "challenge", "finalize", "certificate"};
    for (std::size_t target : {0u, 1u}) {
      const auto& e = panel(p, target);
      std::set<std::string> drawn;  // endpoints with a finite quantile somewhere in the range
      for (const auto& series : e.range)
        if (std::isfinite(max_of(series))) drawn.insert(series["metric"].value("acme_endpoint", ""));
      INFO(p << " [" << target << "] " << e.expr << "\n→ " << e.range.dump().substr(0, 3000));
      INFO("(the label is acme_endpoint: a sidecar `endpoint` label would clash with the PodMonitor's target label)");
      std::set<std::string> missing;
      for (const auto& want : order_endpoints)
        if (drawn.count(want) == 0) missing.insert(want);
      CHECK(missing.empty());
      for (const auto& series : e.instant) CHECK(label_names(series) == std::set<std::string>{"acme_endpoint"});
    }
  }
  // Challenge requests by result: Pebble's validation GETs arrived as hits.
  {
    for (const std::string p : {"acme-sidecar-fleet.json / Challenge requests by result",
                                "acme-sidecar-certificate.json / Installation: challenge requests"}) {
      auto s = expect_series(p, 0, {{"result", "hit"}});
      if (!s.is_null()) CHECK(label_names(s) == std::set<std::string>{"result"});
      auto r = matching(panel(p).range, {{"result", "hit"}});
      INFO(p << " range: " << panel(p).range.dump().substr(0, 3000));
      CHECK(r.size() == 1);
      if (r.size() == 1) CHECK(max_of(r.front()) > 0);
    }
  }
  // Leader: this pod, in the table and the time series.
  {
    auto t = expect_series("acme-sidecar-fleet.json / Leader", 0, {{"namespace", kSidecarNamespace}, {"pod", kPod}});
    if (!t.is_null()) CHECK(value_of(t) == 1);
    auto ts = by_panel["acme-sidecar-fleet.json / Leader"];
    REQUIRE(ts.size() == 2);  // the stat-row table and the time series share the title
    auto r = matching(ts[1].range, {{"namespace", kSidecarNamespace}, {"pod", kPod}});
    CHECK(r.size() == 1);
    if (r.size() == 1) CHECK(max_of(r.front()) == 1);
  }
  // The rest of the fleet overview and the certificate drill-down.
  {
    auto replicas = matching(panel("acme-sidecar-fleet.json / Replicas scraped").range, {{"namespace", kSidecarNamespace}});
    CHECK(replicas.size() == 1);
    if (replicas.size() == 1) CHECK(max_of(replicas.front()) == 1);
    expect_series("acme-sidecar-fleet.json / Versions", 0, {});
    auto served = expect_series("acme-sidecar-certificate.json / Served by the controller", 0,
                                {{"host", kIssuedHost}, {"pod", kPod}});
    if (!served.is_null()) CHECK(value_of(served) == 1);
    auto issued = expect_series("acme-sidecar-certificate.json / Issued certificate", 0, {{"common_name", kIssuedHost}});
    auto ready = expect_series("acme-sidecar-certificate.json / Ready", 0, {});
    if (!ready.is_null()) CHECK(value_of(ready) == 1);
    auto expiry_ts = panel("acme-sidecar-certificate.json / Time to expiry", 1).range;
    CHECK(matching(expiry_ts, {{"host", kIssuedHost}}).size() == 1);
    auto watch = panel("acme-sidecar-fleet.json / Time since last watch event or bookmark").instant;
    CHECK(matching(watch, {{"resource", "ingresses"}, {"pod", kPod}}).size() == 1);
    CHECK(matching(watch, {{"resource", "secrets"}, {"pod", kPod}}).size() == 1);
  }

  // ---------------------------------------------------------------- alert rules
  // Every rule group of the file is loaded and has been evaluated without error.
  auto file_rules = YAML::LoadFile(rules_file.string());
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> want_groups;  // group -> (alert, expr)
  for (const auto& g : file_rules["groups"])
    for (const auto& r : g["rules"])
      want_groups[g["name"].as<std::string>()].emplace_back(
          r["alert"] ? r["alert"].as<std::string>() : r["record"].as<std::string>(), r["expr"].as<std::string>());
  REQUIRE(want_groups.size() >= 3);
  json rules;
  bool all_evaluated = testing::poll_until(
      [&] {
        rules = prom.get("/api/v1/rules", {});
        if (rules.value("status", "") != "success") return false;
        std::size_t n = 0;
        for (const auto& g : rules["data"]["groups"])
          for (const auto& r : g["rules"])
            if (r.value("health", "") == "ok") ++n;
        std::size_t want = 0;
        for (const auto& [g, rs] : want_groups) want += rs.size();
        return n == want;
      },
      60s);
  INFO(rules.dump(1).substr(0, 6000));
  CHECK(all_evaluated);
  {
    std::map<std::string, std::set<std::string>> loaded;
    for (const auto& g : rules["data"]["groups"]) {
      for (const auto& r : g["rules"]) {
        INFO(g.value("name", "") << " / " << r.value("name", ""));
        CHECK(r.value("health", "") == "ok");
        CHECK(r.value("lastError", "") == "");
        CHECK(r.value("type", "") == "alerting");
        loaded[g.value("name", "")].insert(r.value("name", ""));
      }
    }
    for (const auto& [g, rs] : want_groups) {
      std::set<std::string> names;
      for (const auto& [name, expr] : rs) names.insert(name);
      CHECK(loaded[g] == names);
    }
  }
  // Every expression evaluates; on this data (one success, one failing certificate, a leader, a
  // healthy scrape) exactly the not-ready alert's expression has a result.
  std::map<std::string, json> alert_results;
  for (const auto& [g, rs] : want_groups) {
    for (const auto& [name, expr] : rs) {
      auto doc = prom.query(expr);
      INFO(name << ": " << expr << "\n→ " << doc.dump().substr(0, 2000));
      CHECK(doc.value("status", "") == "success");
      alert_results[name] = doc.value("data", json::object()).value("result", json::array());
    }
  }
  {
    auto nr = alert_results["AcmeSidecarCertificateNotReady"];
    INFO("AcmeSidecarCertificateNotReady → " << nr.dump());
    CHECK(nr.size() == 1);
    if (nr.size() == 1) CHECK(nr[0]["metric"] == json({{"secret_namespace", "demo"}, {"secret_name", "blocked-tls"}}));
  }
  for (const char* quiet : {"AcmeSidecarAbsent", "AcmeSidecarNoLeader", "AcmeSidecarIssuanceFailing",
                            "AcmeSidecarServedCertificateMismatch", "AcmeSidecarWatchStalled",
                            "AcmeSidecarCertificateExpiringSoon", "AcmeSidecarCertificateExpiringCritical",
                            "AcmeSidecarRateLimited"}) {
    INFO(quiet << " → " << alert_results[quiet].dump());
    CHECK(alert_results[quiet].empty());
  }
  // The rule manager agrees: the not-ready alert is pending for exactly that certificate.
  bool pending = testing::poll_until(
      [&] {
        auto a = prom.get("/api/v1/alerts", {});
        for (const auto& al : a["data"]["alerts"])
          if (al["labels"].value("alertname", "") == "AcmeSidecarCertificateNotReady" &&
              al["labels"].value("secret_name", "") == "blocked-tls" && al.value("state", "") == "pending")
            return true;
        return false;
      },
      30s);
  CHECK(pending);
}

TEST_CASE("a running sidecar exports exactly the metric families metrics/README.md documents") {
  const auto documented = documented_families(testing::source_dir() / "metrics/README.md");
  REQUIRE(documented.size() >= 15);
  Stack stack(stack_options());

  // Drive every code path that creates series: an issuance, a served certificate, a failed issuance,
  // an Ingress name that cannot be issued, a watch restart, challenge requests of every kind.
  issue_one_and_fail_one(stack);
  // (ingress_yaml writes hosts unquoted, and a bare `*` starts a YAML alias.)
  stack.apply(
      "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: wild\n  namespace: demo\nspec:\n"
      "  ingressClassName: nginx\n  tls:\n  - secretName: wild-tls\n    hosts: [\"*.wild.demo.example\"]\n");
  stack.api().drop_watches();
  for (const char* path : {"/.well-known/acme-challenge/unknown-token-0123456789", "/not-a-challenge"})
    (void)http_request("GET", std::string("http://127.0.0.1:8089") + path);

  Scrape scrape;
  auto missing = [&] {
    std::vector<std::string> out;
    for (const auto& [name, f] : documented) {
      bool has = false;
      for (const auto& s : scrape.samples)
        if (family_of(s.name, scrape.types) == name) has = true;
      if (!has) out.push_back(name);
    }
    return out;
  };
  bool complete = testing::poll_until(
      [&] {
        scrape = parse_exposition(stack.metrics(0));
        return !scrape.samples.empty() && missing().empty();
      },
      60s);
  std::string all_missing;
  for (const auto& m : missing()) all_missing += m + " ";
  INFO("families without samples: " << all_missing);
  CHECK(complete);
  CHECK(scrape.errors.empty());

  // Everything documented: TYPE as documented, HELP present, each sample with exactly the documented labels.
  for (const auto& [name, f] : documented) {
    INFO(name);
    auto t = scrape.types.find(name);
    REQUIRE(t != scrape.types.end());
    CHECK(t->second == f.type);
    CHECK_FALSE(scrape.helps[name].empty());
    std::set<std::string> seen_suffixes;
    for (const auto& s : scrape.samples) {
      if (family_of(s.name, scrape.types) != name) continue;
      std::set<std::string> labels;
      for (const auto& [k, v] : s.labels) labels.insert(k);
      auto want = f.labels;
      if (s.name == name + "_bucket") want.insert("le");
      INFO(s.name);
      CHECK(labels == want);
      seen_suffixes.insert(s.name.substr(name.size()));
    }
    if (f.type == "histogram") CHECK(seen_suffixes == std::set<std::string>{"_bucket", "_sum", "_count"});
    else CHECK(seen_suffixes == std::set<std::string>{""});
  }
  // Nothing undocumented: no TYPE and no sample outside the table.
  for (const auto& [name, type] : scrape.types) {
    INFO("exported family " << name << " (" << type << ")");
    CHECK(documented.count(name) == 1);
  }
  for (const auto& s : scrape.samples) {
    INFO("sample " << s.name);
    CHECK(documented.count(family_of(s.name, scrape.types)) == 1);
  }

  // The series the scenario must have produced, with their label values (counters exist at 0 from the
  // start, so a counter must also have moved).
  auto has = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    const bool counter = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    for (const auto& s : scrape.samples) {
      if (s.name != name) continue;
      bool ok = true;
      for (const auto& [k, v] : labels)
        if (s.labels.count(k) == 0 || s.labels.at(k) != v) ok = false;
      if (ok && (!counter || s.value > 0)) return true;
    }
    return false;
  };
  std::string issuance_samples;
  for (const auto& s : scrape.samples)
    if (s.name == "acme_sidecar_issuance_total")
      issuance_samples += s.labels.at("result") + "/" + s.labels.at("reason") + "=" + std::to_string(s.value) + " ";
  INFO("issuance_total: " << issuance_samples);
  CHECK(has("acme_sidecar_certificate_expiration_timestamp_seconds",
            {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}, {"common_name", kIssuedHost}}));
  CHECK(has("acme_sidecar_certificate_ready", {{"secret_namespace", "demo"}, {"secret_name", "blocked-tls"}}));
  CHECK(has("acme_sidecar_issuance_total", {{"result", "success"}, {"reason", "issued"}}));
  CHECK(has("acme_sidecar_issuance_total", {{"result", "failure"}, {"reason", "validation"}}));
  CHECK(has("acme_sidecar_ingress_invalid_names_total", {{"reason", "wildcard"}}));
  CHECK(has("acme_sidecar_kube_watch_restarts_total", {{"reason", "closed"}}));
  CHECK(has("acme_sidecar_challenge_requests_total", {{"result", "hit"}}));
  CHECK(has("acme_sidecar_served_certificate_matches_secret",
            {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}, {"host", kIssuedHost}}));
  CHECK(has("acme_sidecar_served_certificate_expiration_timestamp_seconds", {{"host", kIssuedHost}}));
  CHECK(has("acme_sidecar_leader", {}));
}
