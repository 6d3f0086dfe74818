#include "metrics/metrics.hpp"

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

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
  // The single declaration of every family (names, types, labels): keep metrics/README.md in step.
  Family<Gauge>& certificate_expiration;
  Family<Gauge>& certificate_not_before;
  Family<Gauge>& certificate_renewal;
  Family<Gauge>& certificate_ready;
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
  Family<Gauge>& served_matches;
  Family<Gauge>& served_expiration;
  Family<Gauge>& leader;
  Family<Gauge>& managed_certificates;
  Family<Gauge>& build_info;

  // Series that exist from the start, so rate() and alerts see zeros instead of absent series.
  Counter& rate_limited_series;
  Counter& bad_nonce_series;
  Gauge& leader_series;
  Gauge& managed_series;

  // Bookkeeping for series that must be removed when a certificate stops being managed.
  struct Served {
    std::string owner_ns, owner_name;
    Gauge* matches = nullptr;
    Gauge* expiration = nullptr;
  };
  struct Cert {
    std::string common_name, issuer;
    Gauge* expiration = nullptr;
    Gauge* not_before = nullptr;
    Gauge* renewal = nullptr;
    Gauge* ready = nullptr;
  };
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, Cert> certs;
  std::map<std::string, Served, std::less<>> served;  // by host
  Gauge* build_info_series = nullptr;

  explicit Impl(prometheus::Registry& r)
      : certificate_expiration(prometheus::BuildGauge()
                                   .Name(full("certificate_expiration_timestamp_seconds"))
                                   .Help("Certificate notAfter as a Unix timestamp, per managed Secret.")
                                   .Register(r)),
        certificate_not_before(prometheus::BuildGauge()
                                   .Name(full("certificate_not_before_timestamp_seconds"))
                                   .Help("Certificate notBefore as a Unix timestamp, per managed Secret.")
                                   .Register(r)),
        certificate_renewal(prometheus::BuildGauge()
                                .Name(full("certificate_renewal_timestamp_seconds"))
                                .Help("When the sidecar plans to renew the certificate (Unix timestamp).")
                                .Register(r)),
        certificate_ready(prometheus::BuildGauge()
                              .Name(full("certificate_ready"))
                              .Help("1 when the Secret holds a valid certificate for the desired names.")
                              .Register(r)),
        issuance_total(prometheus::BuildCounter()
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
        served_matches(prometheus::BuildGauge()
                           .Name(full("served_certificate_matches_secret"))
                           .Help("1 when the certificate served by the controller for the host equals "
                                 "the Secret's.")
                           .Register(r)),
        served_expiration(prometheus::BuildGauge()
                              .Name(full("served_certificate_expiration_timestamp_seconds"))
                              .Help("notAfter of the certificate the controller serves for the host.")
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
        managed_series(managed_certificates.Add({})) {
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

  void drop_served(std::map<std::string, Served, std::less<>>::iterator it) {
    remove_series(served_matches, it->second.matches);
    remove_series(served_expiration, it->second.expiration);
    served.erase(it);
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
  const prometheus::Labels key{{"secret_namespace", std::string(ns)}, {"secret_name", std::string(name)}};
  if (c.expiration != nullptr && (c.common_name != common_name || c.issuer != issuer))
    remove_series(m.certificate_expiration, c.expiration);
  if (c.expiration == nullptr) {
    auto labels = key;
    labels["common_name"] = std::string(common_name);
    labels["issuer"] = std::string(issuer);
    c.expiration = &m.certificate_expiration.Add(labels);
    c.common_name = std::string(common_name);
    c.issuer = std::string(issuer);
  }
  if (c.not_before == nullptr) c.not_before = &m.certificate_not_before.Add(key);
  if (c.renewal == nullptr) c.renewal = &m.certificate_renewal.Add(key);
  if (c.ready == nullptr) c.ready = &m.certificate_ready.Add(key);
  c.expiration->Set(epoch_seconds(not_after));
  c.not_before->Set(epoch_seconds(not_before));
  c.renewal->Set(epoch_seconds(renewal_time));
  c.ready->Set(ready ? 1 : 0);
}

void Metrics::set_certificate_ready(std::string_view ns, std::string_view name, bool ready) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto& c = m.cert(ns, name);
  if (c.ready == nullptr)
    c.ready = &m.certificate_ready.Add({{"secret_namespace", std::string(ns)}, {"secret_name", std::string(name)}});
  c.ready->Set(ready ? 1 : 0);
}

void Metrics::remove_certificate(std::string_view ns, std::string_view name) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto it = m.certs.find({std::string(ns), std::string(name)});
  if (it != m.certs.end()) {
    auto& c = it->second;
    remove_series(m.certificate_expiration, c.expiration);
    remove_series(m.certificate_not_before, c.not_before);
    remove_series(m.certificate_renewal, c.renewal);
    remove_series(m.certificate_ready, c.ready);
    m.certs.erase(it);
  }
  for (auto s = m.served.begin(); s != m.served.end();) {
    auto next = std::next(s);
    if (s->second.owner_ns == ns && s->second.owner_name == name) m.drop_served(s);
    s = next;
  }
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
  if (it != m.served.end() && (it->second.owner_ns != ns || it->second.owner_name != name)) {
    // The host moved to another Secret: its old series must not linger under the old labels.
    m.drop_served(it);
    it = m.served.end();
  }
  if (it == m.served.end()) {
    it = m.served.emplace(std::string(host), Impl::Served{std::string(ns), std::string(name)}).first;
    it->second.matches = &m.served_matches.Add(
        {{"secret_namespace", std::string(ns)}, {"secret_name", std::string(name)}, {"host", std::string(host)}});
  }
  it->second.matches->Set(matches ? 1 : 0);
  if (served_not_after) {
    if (it->second.expiration == nullptr)
      it->second.expiration = &m.served_expiration.Add({{"host", std::string(host)}});
    it->second.expiration->Set(epoch_seconds(*served_not_after));
  } else {
    remove_series(m.served_expiration, it->second.expiration);
  }
}

void Metrics::remove_served_host(std::string_view host) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto it = m.served.find(host);
  if (it != m.served.end()) m.drop_served(it);
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

}  // namespace acme_sidecar::metrics
