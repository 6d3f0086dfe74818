#include "app/observers.hpp"

namespace acme_sidecar::app {

void MetricsObserver::certificate_status(const controller::CertificateReport& r) {
  if (r.not_after && r.not_before) {
    m_.set_certificate(r.namespace_name, r.secret_name, r.common_name, r.issuer, *r.not_before, *r.not_after,
                       r.renewal_time.value_or(*r.not_after), r.ready);
  } else {
    m_.set_certificate_ready(r.namespace_name, r.secret_name, r.ready);
  }
}

void MetricsObserver::certificate_removed(const std::string& ns, const std::string& name) {
  m_.remove_certificate(ns, name);
}

// The controller reports the decision (success) or the error kind (failure); the metric keeps a small,
// documented set of reasons (metrics/README.md).
std::string_view MetricsObserver::issuance_reason(std::string_view result, std::string_view reason) {
  if (result == "success") return "issued";
  if (reason == "rate_limited" || reason == "too_many_requests") return "rate_limited";
  if (reason == "acme_problem") return "acme_problem";
  if (reason == "validation") return "validation";
  if (reason == "self_check") return "self_check";
  if (reason == "transport" || reason == "server_error") return "transport";
  if (reason == "timeout") return "timeout";
  if (reason == "crypto" || reason == "invalid_certificate" || reason == "parse") return "crypto";
  if (reason == "config") return "config";
  if (reason == "cancelled") return "cancelled";
  if (reason == "secret_write" || reason == "conflict" || reason == "forbidden" || reason == "unauthorized" ||
      reason == "not_found" || reason == "already_exists" || reason == "gone")
    return "kube";
  if (reason == "invalid_names" || reason == "invalid") return "invalid_names";
  return "other";
}

void MetricsObserver::issuance(std::string_view result, std::string_view reason, std::chrono::duration<double> d) {
  m_.issuance(result, issuance_reason(result, reason), d);
}

void MetricsObserver::name_rejected(std::string_view reason) {
  // core::NameProblem names map onto the bounded reason set of the metric.
  if (reason == "wildcard") m_.ingress_invalid_name("wildcard");
  else if (reason == "ip_address") m_.ingress_invalid_name("ip");
  else if (reason == "too_long" || reason == "label_too_long") m_.ingress_invalid_name("too_long");
  else if (reason == "too_many") m_.ingress_invalid_name("too_many");
  else m_.ingress_invalid_name("invalid");
}

void MetricsObserver::on_request(acme::Endpoint endpoint, long status, std::chrono::nanoseconds duration) {
  m_.acme_request(acme::to_string(endpoint), static_cast<int>(status),
                  std::chrono::duration_cast<std::chrono::duration<double>>(duration));
}

}  // namespace acme_sidecar::app
