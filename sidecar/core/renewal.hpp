#pragma once
// Renewal policy chain (cert-manager's policies): gathered facts about the Secret → ordered checks →
// one Action plus the time of the next check. Pure: the clock and the ARI random point are inputs.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/desired.hpp"

namespace acme_sidecar::core {

// Facts parsed from tls.crt / tls.key by the crypto module (outside core).
struct CertificateFacts {
  std::vector<std::string> dns_names;  // leaf dNSName SANs
  std::vector<std::string> ip_addresses;
  TimePoint not_before{};
  TimePoint not_after{};
  bool key_matches = false;   // tls.key is the leaf's key
  std::string key_algorithm;  // "ecdsa-p256"..., "" when unknown
  std::string common_name;    // leaf subject CN
  std::string issuer_cn;      // leaf issuer CN (metrics label)
  // What ARI, "replaces" and the served-certificate probe need of the leaf, instead of keeping its PEM
  // (~1 KiB per Secret in the caches).
  std::string ari_id;                        // RFC 9773 CertID; "" without an authority key identifier
  std::array<std::uint8_t, 32> leaf_sha256{};  // SHA-256 of the leaf's DER; all zero when unknown
};

// Metadata of a cached Secret.
struct SecretView {
  std::string namespace_name;
  std::string name;
  std::string resource_version;
  std::string type;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  bool managed() const;  // carries app.kubernetes.io/managed-by: acme-sidecar
  std::string annotation(const std::string& key) const;
};

struct CertStatus {
  std::optional<SecretView> secret;        // nullopt: no such Secret
  std::optional<CertificateFacts> facts;   // nullopt: missing or unparsable material
  std::string parse_error;                 // why facts is empty (when the Secret exists)
};

struct RenewalWindow {
  TimePoint start{};
  TimePoint end{};
};

struct RenewalConfig {
  double renew_before_fraction = 1.0 / 3.0;        // --renew-before-fraction
  double short_renew_before_fraction = 0.5;        // for short-lived certificates
  Duration short_lifetime = std::chrono::hours(24 * 10);
  std::string issuer;                              // configured directory URL; "" disables the check
  // Re-issue when the Secret's key is not of the desired algorithm (annotation or --key-algorithm changed).
  // On by default: a changed key algorithm is a user request; cert-manager does the same.
  bool reissue_on_key_algorithm_change = true;
};

enum class Action { None, Issue, Renew, Skip };
std::string_view to_string(Action action);

struct Violation {
  Action action = Action::Issue;
  std::string reason;  // bounded set, snake_case (metric label)
  std::string message;
};

struct PolicyInput {
  const DesiredCertificate& desired;
  const CertStatus& status;
  const RenewalConfig& config;
  TimePoint now;
  std::optional<RenewalWindow> ari_window{};  // ARI suggested window, when the CA offers one
  double ari_point = 0.5;                   // random in [0, 1), drawn by the caller
};

using Policy = std::function<std::optional<Violation>(const PolicyInput&)>;

// Individual checks (exposed for tests and reuse). Each assumes the previous ones passed.
std::optional<Violation> secret_missing(const PolicyInput& in);
std::optional<Violation> secret_not_managed(const PolicyInput& in);
std::optional<Violation> secret_wrong_type(const PolicyInput& in);
std::optional<Violation> certificate_unparsable(const PolicyInput& in);
std::optional<Violation> key_mismatch(const PolicyInput& in);
std::optional<Violation> names_differ(const PolicyInput& in);
std::optional<Violation> issuer_differs(const PolicyInput& in);
std::optional<Violation> key_algorithm_differs(const PolicyInput& in);
std::optional<Violation> certificate_expired(const PolicyInput& in);
std::optional<Violation> renewal_due(const PolicyInput& in);

// The chain in order: missing, not managed, wrong type, unparsable, key mismatch, names, issuer, key algorithm,
// expired, due.
std::vector<Policy> default_policies();

// Renewal point: not_after − fraction·lifetime (short_renew_before_fraction when lifetime < short_lifetime);
// with an ARI window, start + point·(end − start) instead. A validity ending before it starts → epoch (due).
TimePoint renewal_time(TimePoint not_before, TimePoint not_after, const RenewalConfig& config,
                       const std::optional<RenewalWindow>& ari_window = std::nullopt, double ari_point = 0.5);

struct Decision {
  Action action = Action::None;
  std::string reason;   // "" for None
  std::string message;
  // When the certificate in the Secret is due (None: schedule a check then). nullopt without parsed facts.
  std::optional<TimePoint> renewal_time;
};

// First violation wins; no violation → None with renewal_time set.
Decision decide(const PolicyInput& in, const std::vector<Policy>& policies);
Decision decide(const PolicyInput& in);

}  // namespace acme_sidecar::core
