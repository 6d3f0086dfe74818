#pragma once
// Every metric family of acme-sidecar, declared in one place (metrics.cpp) and documented in
// metrics/README.md (a unit test keeps the two equal). The registry is created by main and passed
// in: no global registry. prometheus-cpp is internally synchronised; our own lock guards the
// per-certificate records and is held by a scrape only while it writes them.
//
// Label values are bounded: every enumerated label is checked against a fixed set below and
// anything else is recorded as "other".
#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}

namespace acme_sidecar::metrics {

using TimePoint = std::chrono::system_clock::time_point;
using Seconds = std::chrono::duration<double>;

inline constexpr std::string_view kPrefix = "acme_sidecar_";
inline constexpr std::string_view kOther = "other";

// Fixed label value sets (anything else becomes "other").
inline constexpr std::array<std::string_view, 2> kIssuanceResults{"success", "failure"};
// Why an issuance ended: "issued" for success, otherwise the failure category.
inline constexpr std::array<std::string_view, 12> kIssuanceReasons{
    "issued",     "acme_problem", "rate_limited", "validation", "self_check", "invalid_names",
    "kube",       "transport",    "timeout",      "crypto",     "config",     "cancelled"};
inline constexpr std::array<std::string_view, 9> kAcmeEndpoints{
    "directory", "nonce", "account", "order", "authz", "challenge", "finalize", "certificate",
    "renewal_info"};
inline constexpr std::array<std::string_view, 3> kChallengeResults{"hit", "miss", "invalid"};
inline constexpr std::array<std::string_view, 8> kKubeVerbs{"get",   "list",   "watch", "create",
                                                            "update", "patch", "delete", "deletecollection"};
inline constexpr std::array<std::string_view, 8> kKubeResources{
    "ingresses", "ingressclasses", "secrets", "configmaps", "leases", "events", "namespaces", "discovery"};
inline constexpr std::array<std::string_view, 5> kWatchRestartReasons{"expired", "closed", "error",
                                                                      "timeout", "decode"};
inline constexpr std::array<std::string_view, 5> kInvalidNameReasons{"wildcard", "ip", "too_long",
                                                                     "invalid", "too_many"};

// Returns `value` when it is one of `allowed`, else "other".
template <std::size_t N>
constexpr std::string_view bounded(std::string_view value, const std::array<std::string_view, N>& allowed) {
  for (auto a : allowed)
    if (a == value) return a;
  return kOther;
}

// An HTTP status as a label: "200" for 100..599, "error" for 0 (no response), else "other".
std::string status_label(int status);

// Histogram buckets (seconds).
inline constexpr std::array<double, 12> kAcmeLatencyBuckets{0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                            5,    10,  20,   30,  60, 120};
inline constexpr std::array<double, 12> kIssuanceBuckets{1,   2.5, 5,    10,   20,   30,
                                                         60,  120, 300,  600,  1800, 3600};

class Metrics {
 public:
  // `registry` must outlive this object.
  explicit Metrics(prometheus::Registry& registry);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // --- certificates (keyed by the Secret) ---
  // Sets every per-certificate series; a changed common_name/issuer replaces the old expiration series.
  void set_certificate(std::string_view secret_namespace, std::string_view secret_name,
                       std::string_view common_name, std::string_view issuer, TimePoint not_before,
                       TimePoint not_after, TimePoint renewal_time, bool ready);
  // Only the readiness (e.g. a certificate that has no valid Secret yet).
  void set_certificate_ready(std::string_view secret_namespace, std::string_view secret_name, bool ready);
  // Drops every series of the certificate, including its served-certificate series.
  void remove_certificate(std::string_view secret_namespace, std::string_view secret_name);

  // --- issuance and ACME ---
  void issuance(std::string_view result, std::string_view reason, Seconds duration);
  void acme_request(std::string_view endpoint, int status, Seconds duration);
  void acme_rate_limited();
  void acme_bad_nonce_retry();

  // --- challenge responder ---
  void challenge_request(std::string_view result);

  // --- Kubernetes ---
  void kube_request(std::string_view verb, std::string_view resource, int code);
  void kube_watch_restart(std::string_view resource, std::string_view reason);
  void kube_watch_event(std::string_view resource, TimePoint timestamp);
  void ingress_invalid_name(std::string_view reason);

  // --- served-certificate probe ---
  // `served_not_after` empty when no certificate could be fetched (the host's expiration series is dropped).
  void served_certificate(std::string_view secret_namespace, std::string_view secret_name,
                          std::string_view host, bool matches, std::optional<TimePoint> served_not_after);
  void remove_served_host(std::string_view host);

  // --- process ---
  void leader(bool is_leader);
  void managed_certificates(std::size_t n);
  void build_info(std::string_view version, std::string_view revision);

  // --- exposition ---
  // Appends every family in text format 0.0.4: the registry's, then the per-certificate and per-host
  // ones, which are kept as plain records instead of prometheus-cpp series (see metrics.cpp).
  void append_exposition(std::string& out) const;
  std::string exposition() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acme_sidecar::metrics
