#include <catch2/catch.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "metrics/metrics.hpp"
#include "scrape.hpp"

using namespace acme_sidecar::metrics;
using acme_sidecar::metrics::test::parse_exposition;
using acme_sidecar::metrics::test::ParsedFamily;
using std::chrono::seconds;

namespace {

std::map<std::string, ParsedFamily> scrape(const Metrics& m) { return parse_exposition(m.exposition()); }

TimePoint at(long s) { return TimePoint(seconds(s)); }

std::size_t series_with(const std::map<std::string, ParsedFamily>& fams, const std::string& key,
                        const std::string& value) {
  std::size_t n = 0;
  for (const auto& [name, f] : fams)
    for (const auto& s : f.samples) {
      auto it = s.labels.find(key);
      if (it != s.labels.end() && it->second == value) ++n;
    }
  return n;
}

double value_of(const ParsedFamily& f, const std::map<std::string, std::string>& labels) {
  for (const auto& s : f.samples)
    if (s.labels == labels) return s.value;
  FAIL("no series");
  return 0;
}

}  // namespace

TEST_CASE("metrics: families have their names, types and labels after use", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.set_certificate("default", "web-tls", "example.com", "R3", at(1000), at(2000), at(1700), true);
  m.issuance("success", "issued", seconds(12));
  m.acme_request("order", 201, std::chrono::milliseconds(80));
  m.kube_request("get", "secrets", 200);
  m.kube_watch_restart("ingresses", "expired");
  m.kube_watch_event("ingresses", at(1234));
  m.served_certificate("default", "web-tls", "example.com", true, at(2000));
  m.build_info("0.1.0", "abc");
  m.ingress_invalid_name("wildcard");

  auto f = scrape(m);
  struct Want {
    std::string name, type;
    std::set<std::string> labels;
  };
  const std::vector<Want> wants{
      {"acme_sidecar_certificate_expiration_timestamp_seconds", "gauge",
       {"secret_namespace", "secret_name", "common_name", "issuer"}},
      {"acme_sidecar_certificate_not_before_timestamp_seconds", "gauge", {"secret_namespace", "secret_name"}},
      {"acme_sidecar_certificate_renewal_timestamp_seconds", "gauge", {"secret_namespace", "secret_name"}},
      {"acme_sidecar_certificate_ready", "gauge", {"secret_namespace", "secret_name"}},
      {"acme_sidecar_issuance_total", "counter", {"result", "reason"}},
      {"acme_sidecar_issuance_duration_seconds", "histogram", {"result"}},
      {"acme_sidecar_acme_requests_total", "counter", {"acme_endpoint", "status"}},
      {"acme_sidecar_acme_request_duration_seconds", "histogram", {"acme_endpoint"}},
      {"acme_sidecar_acme_rate_limited_total", "counter", {}},
      {"acme_sidecar_acme_bad_nonce_retries_total", "counter", {}},
      {"acme_sidecar_challenge_requests_total", "counter", {"result"}},
      {"acme_sidecar_kube_requests_total", "counter", {"verb", "resource", "code"}},
      {"acme_sidecar_kube_watch_restarts_total", "counter", {"resource", "reason"}},
      {"acme_sidecar_kube_watch_last_event_timestamp_seconds", "gauge", {"resource"}},
      {"acme_sidecar_ingress_invalid_names_total", "counter", {"reason"}},
      {"acme_sidecar_served_certificate_matches_secret", "gauge", {"secret_namespace", "secret_name", "host"}},
      {"acme_sidecar_served_certificate_expiration_timestamp_seconds", "gauge", {"host"}},
      {"acme_sidecar_leader", "gauge", {}},
      {"acme_sidecar_managed_certificates", "gauge", {}},
      {"acme_sidecar_build_info", "gauge", {"version", "revision"}},
  };
  for (const auto& w : wants) {
    INFO(w.name);
    REQUIRE(f.count(w.name) == 1);
    CHECK(f.at(w.name).type == w.type);
    CHECK(f.at(w.name).label_names() == w.labels);
  }
  // No family uses a bare `namespace` label.
  CHECK(series_with(f, "namespace", "default") == 0);
  CHECK(value_of(f.at("acme_sidecar_certificate_expiration_timestamp_seconds"),
                 {{"secret_namespace", "default"}, {"secret_name", "web-tls"}, {"common_name", "example.com"},
                  {"issuer", "R3"}}) == 2000);
  CHECK(value_of(f.at("acme_sidecar_certificate_ready"), {{"secret_namespace", "default"}, {"secret_name", "web-tls"}}) ==
        1);
  CHECK(value_of(f.at("acme_sidecar_kube_watch_last_event_timestamp_seconds"), {{"resource", "ingresses"}}) == 1234);
}

TEST_CASE("metrics: process gauges and unlabelled counters exist from the start", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  auto f = scrape(m);
  CHECK(value_of(f.at("acme_sidecar_leader"), {}) == 0);
  CHECK(value_of(f.at("acme_sidecar_managed_certificates"), {}) == 0);
  CHECK(value_of(f.at("acme_sidecar_acme_rate_limited_total"), {}) == 0);
  CHECK(value_of(f.at("acme_sidecar_acme_bad_nonce_retries_total"), {}) == 0);
  for (auto r : kChallengeResults)
    CHECK(value_of(f.at("acme_sidecar_challenge_requests_total"), {{"result", std::string(r)}}) == 0);

  m.leader(true);
  m.managed_certificates(7);
  m.acme_rate_limited();
  m.acme_bad_nonce_retry();
  m.acme_bad_nonce_retry();
  m.challenge_request("hit");
  f = scrape(m);
  CHECK(value_of(f.at("acme_sidecar_leader"), {}) == 1);
  CHECK(value_of(f.at("acme_sidecar_managed_certificates"), {}) == 7);
  CHECK(value_of(f.at("acme_sidecar_acme_rate_limited_total"), {}) == 1);
  CHECK(value_of(f.at("acme_sidecar_acme_bad_nonce_retries_total"), {}) == 2);
  CHECK(value_of(f.at("acme_sidecar_challenge_requests_total"), {{"result", "hit"}}) == 1);
}

TEST_CASE("metrics: remove_certificate drops every series of that certificate only", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.set_certificate("ns1", "gone", "a.example", "R3", at(1), at(3), at(2), true);
  m.served_certificate("ns1", "gone", "a.example", true, at(3));
  m.served_certificate("ns1", "gone", "b.example", false, std::nullopt);
  m.set_certificate("ns1", "kept", "c.example", "R3", at(1), at(3), at(2), false);
  m.served_certificate("ns1", "kept", "c.example", true, at(3));

  m.remove_certificate("ns1", "gone");
  auto f = scrape(m);
  CHECK(series_with(f, "secret_name", "gone") == 0);
  CHECK(series_with(f, "host", "a.example") == 0);
  CHECK(series_with(f, "host", "b.example") == 0);
  // 4 certificate series + 1 served series stay for the other certificate.
  CHECK(series_with(f, "secret_name", "kept") == 5);
  CHECK(series_with(f, "host", "c.example") == 2);

  m.remove_certificate("ns1", "kept");
  m.remove_certificate("ns1", "never-existed");  // harmless
  f = scrape(m);
  CHECK(series_with(f, "secret_namespace", "ns1") == 0);
  CHECK(f.count("acme_sidecar_certificate_ready") == 0);  // empty families are not exported
}

TEST_CASE("metrics: a changed common name or issuer replaces the expiration series", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.set_certificate("ns", "s", "old.example", "R3", at(1), at(3), at(2), true);
  m.set_certificate("ns", "s", "new.example", "R10", at(4), at(6), at(5), true);
  auto f = scrape(m);
  const auto& exp = f.at("acme_sidecar_certificate_expiration_timestamp_seconds");
  REQUIRE(exp.samples.size() == 1);
  CHECK(exp.samples[0].labels.at("common_name") == "new.example");
  CHECK(exp.samples[0].labels.at("issuer") == "R10");
  CHECK(exp.samples[0].value == 6);
  CHECK(value_of(f.at("acme_sidecar_certificate_not_before_timestamp_seconds"),
                 {{"secret_namespace", "ns"}, {"secret_name", "s"}}) == 4);
}

TEST_CASE("metrics: per-certificate families are written once each, label values escaped", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.set_certificate("ns", "b", "quote\"d\\cn\nx", "R3", at(1), at(3), at(2), true);
  m.set_certificate("ns", "a", "a.example", "R3", at(1), at(4), at(2), false);
  m.served_certificate("ns", "a", "a.example", true, at(4));
  auto text = m.exposition();
  for (const char* fam : {"certificate_expiration_timestamp_seconds", "certificate_not_before_timestamp_seconds",
                          "certificate_renewal_timestamp_seconds", "certificate_ready",
                          "served_certificate_matches_secret", "served_certificate_expiration_timestamp_seconds"}) {
    INFO(fam);
    auto type_line = std::string("# TYPE acme_sidecar_") + fam + " gauge\n";
    auto first = text.find(type_line);
    REQUIRE(first != std::string::npos);
    CHECK(text.find(type_line, first + 1) == std::string::npos);
  }
  CHECK(text.find("common_name=\"quote\\\"d\\\\cn\\nx\"") != std::string::npos);
  auto f = parse_exposition(text);
  CHECK(value_of(f.at("acme_sidecar_certificate_expiration_timestamp_seconds"),
                 {{"secret_namespace", "ns"}, {"secret_name", "b"}, {"common_name", "quote\"d\\cn\nx"},
                  {"issuer", "R3"}}) == 3);
  CHECK(value_of(f.at("acme_sidecar_certificate_ready"), {{"secret_namespace", "ns"}, {"secret_name", "a"}}) == 0);
  CHECK(value_of(f.at("acme_sidecar_certificate_ready"), {{"secret_namespace", "ns"}, {"secret_name", "b"}}) == 1);
}

TEST_CASE("metrics: set_certificate_ready works before any certificate exists", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.set_certificate_ready("ns", "pending", false);
  auto f = scrape(m);
  CHECK(value_of(f.at("acme_sidecar_certificate_ready"), {{"secret_namespace", "ns"}, {"secret_name", "pending"}}) ==
        0);
  CHECK(f.count("acme_sidecar_certificate_expiration_timestamp_seconds") == 0);
  m.remove_certificate("ns", "pending");
  CHECK(scrape(m).count("acme_sidecar_certificate_ready") == 0);
}

TEST_CASE("metrics: a host moving to another Secret leaves no stale served series", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.served_certificate("ns", "one", "h.example", true, at(10));
  m.served_certificate("ns", "two", "h.example", false, at(11));
  auto f = scrape(m);
  const auto& match = f.at("acme_sidecar_served_certificate_matches_secret");
  REQUIRE(match.samples.size() == 1);
  CHECK(match.samples[0].labels.at("secret_name") == "two");
  CHECK(match.samples[0].value == 0);
  CHECK(value_of(f.at("acme_sidecar_served_certificate_expiration_timestamp_seconds"), {{"host", "h.example"}}) == 11);
  // The old owner going away must not remove the host now owned by "two".
  m.remove_certificate("ns", "one");
  CHECK(series_with(scrape(m), "host", "h.example") == 2);
  // A failed probe (no served certificate) drops the expiration series.
  m.served_certificate("ns", "two", "h.example", false, std::nullopt);
  CHECK(scrape(m).count("acme_sidecar_served_certificate_expiration_timestamp_seconds") == 0);
  m.remove_served_host("h.example");
  CHECK(series_with(scrape(m), "host", "h.example") == 0);
}

TEST_CASE("metrics: label values are bounded", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  for (int i = 0; i < 50; ++i) {
    auto junk = "junk-" + std::to_string(i);
    m.issuance(junk, junk, seconds(1));
    m.acme_request(junk, 1000 + i, seconds(1));
    m.challenge_request(junk);
    m.kube_request(junk, junk, -i);
    m.kube_watch_restart(junk, junk);
    m.kube_watch_event(junk, at(i));
    m.ingress_invalid_name(junk);
  }
  m.acme_request("nonce", 0, seconds(1));
  auto f = scrape(m);
  auto values = [&](const std::string& fam, const std::string& label) {
    std::set<std::string> out;
    for (const auto& s : f.at(fam).samples) out.insert(s.labels.at(label));
    return out;
  };
  using S = std::set<std::string>;
  // Pre-created at zero: success/issued, failure × each category; junk lands in "other" only.
  CHECK(values("acme_sidecar_issuance_total", "result") == S{"failure", "other", "success"});
  S reasons{"other"};
  for (auto r : kIssuanceReasons) reasons.insert(std::string(r));
  CHECK(values("acme_sidecar_issuance_total", "reason") == reasons);
  CHECK(values("acme_sidecar_issuance_duration_seconds", "result") == S{"failure", "other", "success"});
  CHECK(values("acme_sidecar_acme_requests_total", "acme_endpoint") == S{"nonce", "other"});
  CHECK(values("acme_sidecar_acme_requests_total", "status") == S{"error", "other"});
  CHECK(values("acme_sidecar_challenge_requests_total", "result") == S{"hit", "invalid", "miss", "other"});
  CHECK(values("acme_sidecar_kube_requests_total", "verb") == S{"other"});
  CHECK(values("acme_sidecar_kube_requests_total", "code") == S{"error", "other"});
  CHECK(values("acme_sidecar_kube_watch_restarts_total", "reason") == S{"other"});
  CHECK(values("acme_sidecar_kube_watch_last_event_timestamp_seconds", "resource") == S{"other"});
  CHECK(values("acme_sidecar_ingress_invalid_names_total", "reason") ==
        S{"invalid", "ip", "other", "too_long", "too_many", "wildcard"});
  CHECK(status_label(404) == "404");
  CHECK(status_label(99) == "other");
  CHECK(bounded("renewal_info", kAcmeEndpoints) == "renewal_info");
}

TEST_CASE("metrics: histogram buckets span ACME latencies and issuance durations", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.acme_request("directory", 200, std::chrono::milliseconds(30));
  m.issuance("failure", "timeout", seconds(4000));
  auto f = scrape(m);
  std::set<std::string> acme_le, issuance_le;
  for (const auto& s : f.at("acme_sidecar_acme_request_duration_seconds").samples)
    if (s.labels.count("le")) acme_le.insert(s.labels.at("le"));
  for (const auto& s : f.at("acme_sidecar_issuance_duration_seconds").samples)
    if (s.labels.count("le")) issuance_le.insert(s.labels.at("le"));
  CHECK(acme_le.count("0.05") == 1);
  CHECK(acme_le.count("120") == 1);
  CHECK(acme_le.count("+Inf") == 1);
  CHECK(issuance_le.count("3600") == 1);
  CHECK(kAcmeLatencyBuckets.front() == 0.05);
  CHECK(kAcmeLatencyBuckets.back() == 120);
}

TEST_CASE("metrics: updates from many threads while scraping", "[metrics]") {
  prometheus::Registry registry;
  Metrics m(registry);
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done) (void)scrape(m);
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        auto name = "s" + std::to_string(t) + "-" + std::to_string(i % 7);
        m.set_certificate("ns", name, "cn", "R3", at(1), at(3), at(2), i % 2 == 0);
        m.served_certificate("ns", name, name + ".example", true, at(3));
        m.challenge_request("hit");
        if (i % 3 == 0) m.remove_certificate("ns", name);
      }
    });
  for (auto& w : writers) w.join();
  done = true;
  scraper.join();
  auto f = scrape(m);
  CHECK(value_of(f.at("acme_sidecar_challenge_requests_total"), {{"result", "hit"}}) == 1200);
  for (int t = 0; t < 4; ++t)
    for (int i = 0; i < 7; ++i) m.remove_certificate("ns", "s" + std::to_string(t) + "-" + std::to_string(i));
  f = scrape(m);
  CHECK(series_with(f, "secret_namespace", "ns") == 0);
  CHECK(f.count("acme_sidecar_served_certificate_expiration_timestamp_seconds") == 0);
}
