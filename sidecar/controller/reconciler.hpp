#pragma once
// Reconciles one certificate key ("namespace/secretName"): re-reads the caches, computes the desired
// certificate and the policy decision, and acts (issue through the CA, write the Secret as one
// create/update, emit Events, report to the observer). Returns when to look again or throws core::Error;
// the Controller's queue loop alone decides forget / retry / backoff.
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "controller/interfaces.hpp"
#include "core/backoff.hpp"

namespace acme_sidecar::controller {

struct ReconcilerConfig {
  core::DesiredConfig desired;
  core::RenewalConfig renewal;  // renewal.issuer = configured directory URL (written as annotation)
  bool owner_references = false;  // --owner-references
  int max_write_attempts = 3;     // create/update attempts on Conflict / AlreadyExists
};

struct Result {
  // Reconcile again after this long (renewal time, or the end of a backoff); nullopt: only on change/rescan.
  std::optional<core::Duration> requeue_after;
  // True when an issuance was held back because the key is still in failure backoff and nothing changed.
  bool deferred = false;
};

struct ReconcileOptions {
  // Set by the Controller while the key is in failure backoff: a new issuance of the same request is not
  // attempted before this time (a changed request — names, key algorithm, profile — goes ahead).
  std::optional<core::TimePoint> retry_not_before;
};

struct ReconcilerDeps {
  IngressLister& ingresses;
  SecretStore& secrets;
  CertificateIssuer& issuer;
  CertificateInspector& inspector;
  EventSink& events;
  core::Clock& clock;
  core::Logger log;
  core::RandomSource random;                 // ARI point inside the window
  ControllerObserver* observer = nullptr;    // optional
  RenewalInfoSource* renewal_info = nullptr;  // optional (ARI)
};

// Metadata view of a Secret for the policy chain.
core::SecretView secret_view(const SecretData& secret);
// "2025-01-02T03:04:05Z".
std::string format_rfc3339(core::TimePoint t);

class Reconciler {
 public:
  Reconciler(ReconcilerDeps deps, ReconcilerConfig config);

  // Safe to call concurrently for distinct keys.
  Result reconcile(const std::string& key, const ReconcileOptions& options = {}, std::stop_token stop = {});

  struct Scan {
    std::set<std::string> keys;  // every desired certificate in the cache, plus keys reported before
    std::size_t desired = 0;     // how many certificates are desired
  };
  // For the periodic rescan. Decides one Secret at a time from the lister's index: the desired state of
  // 10,000 Ingresses computed at once held ~14 MiB just to be counted.
  Scan scan() const;
  const ReconcilerConfig& config() const { return config_; }

 private:
  core::DesiredConfig desired_config() const;
  // Sends an Event unless the same one was sent for this certificate before; true when sent.
  bool emit_once(const std::string& cert_key, const core::IngressRef& ref, EventType type, std::string_view reason,
                 const std::string& message);
  void forget_skip_and_refusal(const std::string& cert_key);
  void emit_all(const core::DesiredCertificate& d, EventType type, std::string_view reason,
                const std::string& message, bool once);
  // One create/update with resourceVersion, re-reading on Conflict/AlreadyExists (bounded). False when the
  // Secret turned out not to be ours (reported, not written).
  bool write_secret(const core::DesiredCertificate& desired, std::optional<SecretData> existing,
                    const IssuedCertificate& issued, core::TimePoint not_after, const core::Logger& log);
  void validate(const core::DesiredCertificate& desired, const Inspection& inspection) const;
  double ari_point(const std::string& key, const core::RenewalWindow& window);
  void report(const CertificateReport& r);

  ReconcilerDeps deps_;
  ReconcilerConfig config_;

  mutable std::mutex mu_;
  std::set<std::string> emitted_;  // "certkey|ingress|reason|message" already sent as Event
  std::map<std::string, std::string> failed_request_;  // key -> fingerprint of the last failed issuance
  std::map<std::string, std::pair<std::pair<core::TimePoint, core::TimePoint>, double>> ari_points_;
  std::set<std::string> reported_;  // keys with a certificate_status report
};

}  // namespace acme_sidecar::controller
