#include "metrics/metrics.hpp"

#include <algorithm>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "metrics/text.hpp"

namespace acme_sidecar::metrics {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

std::string full(std::string_view name) { return std::string(kPrefix) + std::string(name); }

double epoch_seconds(TimePoint t) {
  return std::chrono::duration_cast<Seconds>(t.time_since_epoch()).count();
}

template <std::size_t N>
Histogram::BucketBoundaries buckets(const std::array<double, N>& b) {
  return Histogram::BucketBoundaries(b.begin(), b.end());
}

template <typename T>
void remove_series(Family<T>& family, T*& metric) {
  if (metric != nullptr) family.Remove(metric);
  metric = nullptr;
}

}  // namespace

std::string status_label(int status) {
  if (status == 0) return "error";
  if (status >= 100 && status <= 599) return std::to_string(status);
  return std::string(kOther);
}

struct Metrics::Impl {
  // The declaration of every family (names, types, labels), with the per-certificate ones in
  // append_exposition: keep metrics/README.md in step.
  Family<Counter>& issuance_total;
  Family<Histogram>& issuance_duration;
  Family<Counter>& acme_requests;
  Family<Histogram>& acme_request_duration;
  Family<Counter>& acme_rate_limited;
  Family<Counter>& acme_bad_nonce_retries;
  Family<Counter>& challenge_requests;
  Family<Counter>& kube_requests;
  Family<Counter>& kube_watch_restarts;
  Family<Gauge>& kube_watch_last_event;
  Family<Counter>& ingress_invalid_names;
  Family<Gauge>& leader;
  Family<Gauge>& managed_certificates;
  Family<Gauge>& build_info;

  // Series that exist from the start, so rate() and alerts see zeros instead of absent series.
  Counter& rate_limited_series;
  Counter& bad_nonce_series;
  Gauge& leader_series;
  Gauge& managed_series;

  // Per-certificate and per-host series are plain records rendered straight into the scrape: with
  // 10,000 certificates, prometheus-cpp series (a label map, a hash entry and a metric object each,
  // ~50,000 of them) cost ~10 MiB and a scrape copied them all into ClientMetrics before writing.
  struct Cert {
    std::string common_name, issuer;
    bool has_times = false;  // set_certificate was called (else only the readiness series exists)
    bool ready = false;
    double not_before = 0, not_after = 0, renewal = 0;
  };
  struct Served {
    std::string owner_ns, owner_name;
    bool matches = false;
    std::optional<double> not_after;
  };
  mutable std::mutex mu;
  std::map<std::pair<std::string, std::string>, Cert> certs;
  std::map<std::string, Served, std::less<>> served;  // by host
  Gauge* build_info_series = nullptr;
  prometheus::Registry& registry;

  explicit Impl(prometheus::Registry& r)
      : issuance_total(prometheus::BuildCounter()
                           .Name(full("issuance_total"))
                           .Help("Certificate issuance attempts by result and reason.")
                           .Register(r)),
        issuance_duration(prometheus::BuildHistogram()
                              .Name(full("issuance_duration_seconds"))
                              .Help("Duration of a certificate issuance (order to certificate).")
                              .Register(r)),
        acme_requests(prometheus::BuildCounter()
                          .Name(full("acme_requests_total"))
                          .Help("HTTP requests to the ACME CA by endpoint and status.")
                          .Register(r)),
        acme_request_duration(prometheus::BuildHistogram()
                                  .Name(full("acme_request_duration_seconds"))
                                  .Help("Latency of HTTP requests to the ACME CA by endpoint.")
                                  .Register(r)),
        acme_rate_limited(prometheus::BuildCounter()
                              .Name(full("acme_rate_limited_total"))
                              .Help("rateLimited problems (or 429) returned by the ACME CA.")
                              .Register(r)),
        acme_bad_nonce_retries(prometheus::BuildCounter()
                                   .Name(full("acme_bad_nonce_retries_total"))
                                   .Help("ACME requests retried after a badNonce problem.")
                                   .Register(r)),
        challenge_requests(prometheus::BuildCounter()
                               .Name(full("challenge_requests_total"))
                               .Help("HTTP-01 challenge requests answered by the responder, by result.")
                               .Register(r)),
        kube_requests(prometheus::BuildCounter()
                          .Name(full("kube_requests_total"))
                          .Help("Requests to the Kubernetes API by verb, resource and HTTP code.")
                          .Register(r)),
        kube_watch_restarts(prometheus::BuildCounter()
                                .Name(full("kube_watch_restarts_total"))
                                .Help("Watch streams restarted, by resource and reason.")
                                .Register(r)),
        kube_watch_last_event(prometheus::BuildGauge()
                                  .Name(full("kube_watch_last_event_timestamp_seconds"))
                                  .Help("Time of the last watch event or bookmark per resource.")
                                  .Register(r)),
        ingress_invalid_names(prometheus::BuildCounter()
                                  .Name(full("ingress_invalid_names_total"))
                                  .Help("Ingress host names that cannot be issued with HTTP-01, by reason.")
                                  .Register(r)),
        leader(prometheus::BuildGauge()
                   .Name(full("leader"))
                   .Help("1 while this replica holds the leader Lease.")
                   .Register(r)),
        managed_certificates(prometheus::BuildGauge()
                                 .Name(full("managed_certificates"))
                                 .Help("Number of certificates (Secrets) managed by this sidecar.")
                                 .Register(r)),
        build_info(prometheus::BuildGauge()
                       .Name(full("build_info"))
                       .Help("Always 1; labels carry the version and git revision.")
                       .Register(r)),
        rate_limited_series(acme_rate_limited.Add({})),
        bad_nonce_series(acme_bad_nonce_retries.Add({})),
        leader_series(leader.Add({})),
        managed_series(managed_certificates.Add({})),
        registry(r) {
    for (auto result : kChallengeResults) challenge_requests.Add({{"result", std::string(result)}});
    // Counters exist at 0 from the start: rate()/increase() then see the first issuance, and a
    // failure alert is not fooled by a success series that appears already at 1.
    for (auto reason : kIssuanceReasons) {
      issuance_total.Add({{"result", reason == "issued" ? "success" : "failure"}, {"reason", std::string(reason)}});
    }
    for (auto result : kIssuanceResults) {
      issuance_duration.Add({{"result", std::string(result)}}, buckets(kIssuanceBuckets));
    }
    for (auto reason : kInvalidNameReasons) ingress_invalid_names.Add({{"reason", std::string(reason)}});
    for (auto endpoint : kAcmeEndpoints) {
      acme_request_duration.Add({{"acme_endpoint", std::string(endpoint)}}, buckets(kAcmeLatencyBuckets));
    }
  }

  Cert& cert(std::string_view ns, std::string_view name) {
    return certs[{std::string(ns), std::string(name)}];
  }
};

Metrics::Metrics(prometheus::Registry& registry) : impl_(std::make_unique<Impl>(registry)) {}
Metrics::~Metrics() = default;

void Metrics::set_certificate(std::string_view ns, std::string_view name, std::string_view common_name,
                              std::string_view issuer, TimePoint not_before, TimePoint not_after,
                              TimePoint renewal_time, bool ready) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto& c = m.cert(ns, name);
  // A changed common_name/issuer simply renders under the new labels: the old series is gone.
  if (c.common_name != common_name) c.common_name = std::string(common_name);
  if (c.issuer != issuer) c.issuer = std::string(issuer);
  c.has_times = true;
  c.not_before = epoch_seconds(not_before);
  c.not_after = epoch_seconds(not_after);
  c.renewal = epoch_seconds(renewal_time);
  c.ready = ready;
}

void Metrics::set_certificate_ready(std::string_view ns, std::string_view name, bool ready) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  m.cert(ns, name).ready = ready;
}

void Metrics::remove_certificate(std::string_view ns, std::string_view name) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  m.certs.erase({std::string(ns), std::string(name)});
  std::erase_if(m.served, [&](const auto& s) { return s.second.owner_ns == ns && s.second.owner_name == name; });
}

void Metrics::issuance(std::string_view result, std::string_view reason, Seconds duration) {
  auto r = std::string(bounded(result, kIssuanceResults));
  impl_->issuance_total.Add({{"result", r}, {"reason", std::string(bounded(reason, kIssuanceReasons))}})
      .Increment();
  impl_->issuance_duration.Add({{"result", r}}, buckets(kIssuanceBuckets)).Observe(duration.count());
}

void Metrics::acme_request(std::string_view endpoint, int status, Seconds duration) {
  auto e = std::string(bounded(endpoint, kAcmeEndpoints));
  impl_->acme_requests.Add({{"acme_endpoint", e}, {"status", status_label(status)}}).Increment();
  impl_->acme_request_duration.Add({{"acme_endpoint", e}}, buckets(kAcmeLatencyBuckets)).Observe(duration.count());
}

void Metrics::acme_rate_limited() { impl_->rate_limited_series.Increment(); }
void Metrics::acme_bad_nonce_retry() { impl_->bad_nonce_series.Increment(); }

void Metrics::challenge_request(std::string_view result) {
  impl_->challenge_requests.Add({{"result", std::string(bounded(result, kChallengeResults))}}).Increment();
}

void Metrics::kube_request(std::string_view verb, std::string_view resource, int code) {
  impl_->kube_requests
      .Add({{"verb", std::string(bounded(verb, kKubeVerbs))},
            {"resource", std::string(bounded(resource, kKubeResources))},
            {"code", status_label(code)}})
      .Increment();
}

void Metrics::kube_watch_restart(std::string_view resource, std::string_view reason) {
  impl_->kube_watch_restarts
      .Add({{"resource", std::string(bounded(resource, kKubeResources))},
            {"reason", std::string(bounded(reason, kWatchRestartReasons))}})
      .Increment();
}

void Metrics::kube_watch_event(std::string_view resource, TimePoint timestamp) {
  impl_->kube_watch_last_event.Add({{"resource", std::string(bounded(resource, kKubeResources))}})
      .Set(epoch_seconds(timestamp));
}

void Metrics::ingress_invalid_name(std::string_view reason) {
  impl_->ingress_invalid_names.Add({{"reason", std::string(bounded(reason, kInvalidNameReasons))}}).Increment();
}

void Metrics::served_certificate(std::string_view ns, std::string_view name, std::string_view host, bool matches,
                                 std::optional<TimePoint> served_not_after) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto it = m.served.find(host);
  if (it == m.served.end()) it = m.served.emplace(std::string(host), Impl::Served{}).first;
  // A host that moved to another Secret renders under the new owner only: no stale series.
  auto& s = it->second;
  if (s.owner_ns != ns) s.owner_ns = std::string(ns);
  if (s.owner_name != name) s.owner_name = std::string(name);
  s.matches = matches;
  s.not_after = served_not_after ? std::optional<double>(epoch_seconds(*served_not_after)) : std::nullopt;
}

void Metrics::remove_served_host(std::string_view host) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  if (auto it = m.served.find(host); it != m.served.end()) m.served.erase(it);
}

void Metrics::leader(bool is_leader) { impl_->leader_series.Set(is_leader ? 1 : 0); }
void Metrics::managed_certificates(std::size_t n) { impl_->managed_series.Set(static_cast<double>(n)); }

void Metrics::build_info(std::string_view version, std::string_view revision) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  remove_series(m.build_info, m.build_info_series);
  m.build_info_series =
      &m.build_info.Add({{"version", std::string(version)}, {"revision", std::string(revision)}});
  m.build_info_series->Set(1);
}

void Metrics::append_exposition(std::string& out) const {
  // prometheus-cpp's families first: Collect() takes only its own per-family locks.
  append_text(out, impl_->registry.Collect());
  const auto& m = *impl_;
  std::lock_guard lock(m.mu);  // held while ~100 bytes per certificate are written: milliseconds at 10,000
  auto family = [&](std::string_view suffix, std::string_view help, auto&& each) {
    auto name = full(suffix);
    auto header_at = out.size();
    append_family_header(out, name, help, "gauge");
    auto samples_at = out.size();
    each(name);
    if (out.size() == samples_at) out.resize(header_at);  // as TextSerializer: no series, no family
  };
  family("certificate_expiration_timestamp_seconds", "Certificate notAfter as a Unix timestamp, per managed Secret.",
         [&](const std::string& name) {
           for (const auto& [k, c] : m.certs)
             if (c.has_times)
               append_series(out, name,
                             {{"common_name", c.common_name}, {"issuer", c.issuer}, {"secret_name", k.second},
                              {"secret_namespace", k.first}},
                             c.not_after);
         });
  family("certificate_not_before_timestamp_seconds", "Certificate notBefore as a Unix timestamp, per managed Secret.",
         [&](const std::string& name) {
           for (const auto& [k, c] : m.certs)
             if (c.has_times)
               append_series(out, name, {{"secret_name", k.second}, {"secret_namespace", k.first}}, c.not_before);
         });
  family("certificate_renewal_timestamp_seconds", "When the sidecar plans to renew the certificate (Unix timestamp).",
         [&](const std::string& name) {
           for (const auto& [k, c] : m.certs)
             if (c.has_times)
               append_series(out, name, {{"secret_name", k.second}, {"secret_namespace", k.first}}, c.renewal);
         });
  family("certificate_ready", "1 when the Secret holds a valid certificate for the desired names.",
         [&](const std::string& name) {
           for (const auto& [k, c] : m.certs)
             append_series(out, name, {{"secret_name", k.second}, {"secret_namespace", k.first}}, c.ready ? 1 : 0);
         });
  family("served_certificate_matches_secret",
         "1 when the certificate served by the controller for the host equals the Secret's.",
         [&](const std::string& name) {
           for (const auto& [host, s] : m.served)
             append_series(out, name,
                           {{"host", host}, {"secret_name", s.owner_name}, {"secret_namespace", s.owner_ns}},
                           s.matches ? 1 : 0);
         });
  family("served_certificate_expiration_timestamp_seconds",
         "notAfter of the certificate the controller serves for the host.", [&](const std::string& name) {
           for (const auto& [host, s] : m.served)
             if (s.not_after) append_series(out, name, {{"host", host}}, *s.not_after);
         });
}

std::string Metrics::exposition() const {
  std::string out;
  append_exposition(out);
  return out;
}

}  // namespace acme_sidecar::metrics
