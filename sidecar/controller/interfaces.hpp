#pragma once
// The narrow interfaces through which the reconciler sees the world. main.cpp backs them with the kube
// informers/client, the ACME client and the crypto module; tests back them with in-memory fakes.
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/desired.hpp"
#include "core/ingress.hpp"
#include "core/log.hpp"
#include "core/renewal.hpp"

namespace acme_sidecar::controller {

// Cached Ingresses (informer store). Never blocks on the network.
class IngressLister {
 public:
  virtual ~IngressLister() = default;
  // Ingresses of one namespace; "" = every watched namespace.
  virtual std::vector<core::IngressView> list(std::string_view namespace_name) const = 0;
  // The Ingresses that matter for one certificate: those with a TLS entry naming `secret_name`, plus
  // those with a TLS entry that names no Secret (reported as invalid). The default filters list(); an
  // indexed lister answers without touching the rest of the cluster (one reconcile stays O(own Ingresses)).
  virtual std::vector<core::IngressView> list_for_secret(std::string_view namespace_name,
                                                         std::string_view secret_name) const {
    std::vector<core::IngressView> out;
    for (auto& ing : list(namespace_name)) {
      bool wanted = false;
      for (const auto& tls : ing.tls) wanted = wanted || tls.secret_name.empty() || tls.secret_name == secret_name;
      if (wanted) out.push_back(std::move(ing));
    }
    return out;
  }
  // "namespace/secret" of every TLS entry that names a Secret, each once: what a rescan visits. An indexed
  // lister answers from its index instead of copying every Ingress.
  virtual std::vector<std::string> secret_keys() const {
    std::set<std::string> keys;
    for (const auto& ing : list(""))
      for (auto& k : core::certificate_keys(ing)) keys.insert(std::move(k));
    return {keys.begin(), keys.end()};
  }
  // Cached IngressClasses (to learn whether ours is the default). Empty when not watched.
  virtual std::vector<core::IngressClassView> classes() const { return {}; }
};

struct OwnerReference {
  std::string api_version = "networking.k8s.io/v1";
  std::string kind = "Ingress";
  std::string name;
  std::string uid;
  bool operator==(const OwnerReference&) const = default;
};

struct InspectedTls;

// A Secret as read from / written to the API. `data` holds decoded bytes (not base64).
struct SecretData {
  std::string namespace_name;
  std::string name;
  std::string resource_version;  // "" for create
  std::string type;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  std::map<std::string, std::string> data;
  std::vector<OwnerReference> owner_references;
  // Set by a cache that keeps what tls.crt/tls.key say (inspected once per resourceVersion) instead of the
  // bytes: `data` is empty then, and a writer reads the whole object with get_fresh first.
  std::shared_ptr<const InspectedTls> inspected;
};

// Reads Secrets (cache or API) and writes them. Errors are core::Error: create of an existing Secret →
// AlreadyExists; update with a stale resource_version → Conflict; anything else as the client reports it.
class SecretStore {
 public:
  virtual ~SecretStore() = default;
  virtual std::optional<SecretData> get(const std::string& namespace_name, const std::string& name) = 0;
  // Read that bypasses any cache: used to re-read after Conflict / AlreadyExists, where a cache may still
  // hold the version that just lost. Defaults to get().
  virtual std::optional<SecretData> get_fresh(const std::string& namespace_name, const std::string& name) {
    return get(namespace_name, name);
  }
  // Returns the stored object's metadata (with its new resource_version); its data is not echoed back.
  virtual SecretData create(const SecretData& secret) = 0;
  // Replaces the object; secret.resource_version must be the one read.
  virtual SecretData update(const SecretData& secret) = 0;
};

struct IssueContext {
  std::stop_token stop;
  core::Logger log;
  // The certificate being replaced (none for a first issuance): its ARI CertID for the order's "replaces"
  // ("" when unknown) and the SHA-256 of its DER (all zero when unknown), to recognise a resumed order
  // whose certificate is already in the Secret.
  std::string replaces;
  std::array<std::uint8_t, 32> replaced_sha256{};
};

struct IssuedCertificate {
  std::string chain_pem;  // leaf first, then intermediates
  std::string key_pem;    // PKCS#8
  core::TimePoint not_before{};
  core::TimePoint not_after{};
  std::string issuer;  // directory URL that issued it
};

// Obtains a certificate from the CA (the whole order flow, resumable). Throws core::Error on failure: kind
// RateLimited/TooManyRequests with retry_after when the CA said so, AcmeProblem with acme_type, Config for a
// refusal that retrying cannot fix, Cancelled when `ctx.stop` fired.
class CertificateIssuer {
 public:
  virtual ~CertificateIssuer() = default;
  virtual IssuedCertificate issue(const core::DesiredCertificate& desired, const IssueContext& ctx) = 0;
};

// ARI (RFC 9773): the CA's suggested renewal window for a certificate. Optional collaborator.
class RenewalInfoSource {
 public:
  virtual ~RenewalInfoSource() = default;
  // nullopt when the CA offers no ARI or the lookup failed (the fraction rule applies then). Must not throw.
  // `ari_id`: the certificate's RFC 9773 CertID (CertificateFacts::ari_id); "" → nullopt.
  virtual std::optional<core::RenewalWindow> renewal_window(std::string_view ari_id) = 0;
};

// Parses Secret material into facts (crypto outside core). Must not throw for bad input: a parse
// problem is reported in `error`.
struct Inspection {
  std::optional<core::CertificateFacts> facts;
  std::string error;
};
class CertificateInspector {
 public:
  virtual ~CertificateInspector() = default;
  virtual Inspection inspect(std::string_view chain_pem, std::string_view key_pem) const = 0;
};

// What a Secret's tls.crt/tls.key amount to, for caches that do not keep the bytes.
struct InspectedTls {
  bool present = false;  // both tls.crt and tls.key exist
  Inspection inspection;
};
// Inspects `data`'s tls.crt/tls.key with `inspector`.
InspectedTls inspect_tls(const std::map<std::string, std::string>& data, const CertificateInspector& inspector);

enum class EventType { Normal, Warning };
std::string_view to_string(EventType type);

// Kubernetes Events on an Ingress. Best effort: implementations swallow their own errors.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void event(const core::IngressRef& ingress, EventType type, std::string_view reason,
                     std::string_view message) = 0;
  // Work in progress on `certificate` (its key) that its outcome() makes redundant when the outcome
  // comes soon: a sink may hold it back and drop it then. Default: a Normal event at once.
  virtual void progress(const core::IngressRef& ingress, std::string_view certificate, std::string_view reason,
                        std::string_view message) {
    (void)certificate;
    event(ingress, EventType::Normal, reason, message);
  }
  // How the work on `certificate` ended (Issued, Renewed, Failed). Default: an event at once.
  virtual void outcome(const core::IngressRef& ingress, std::string_view certificate, EventType type,
                       std::string_view reason, std::string_view message) {
    (void)certificate;
    event(ingress, type, reason, message);
  }
};

// What the controller reports for metrics (the lead maps it onto metrics::Metrics). Default: ignore.
struct CertificateReport {
  std::string namespace_name;
  std::string secret_name;
  bool ready = false;  // a valid, current certificate is in the Secret
  std::optional<core::TimePoint> not_before;
  std::optional<core::TimePoint> not_after;
  std::optional<core::TimePoint> renewal_time;
  std::string common_name;
  std::string issuer;  // issuer CN of the leaf
};
class ControllerObserver {
 public:
  virtual ~ControllerObserver() = default;
  virtual void certificate_status(const CertificateReport&) {}
  virtual void certificate_removed(const std::string& /*namespace_name*/, const std::string& /*secret_name*/) {}
  // result: "success" | "failure"; reason: bounded set (see README: issuance reasons).
  virtual void issuance(std::string_view /*result*/, std::string_view /*reason*/, std::chrono::duration<double>) {}
  virtual void managed_certificates(std::size_t /*count*/) {}
  // A host dropped from a certificate (reason: core::to_string(NameProblem)).
  virtual void name_rejected(std::string_view /*reason*/) {}
};

}  // namespace acme_sidecar::controller
