#pragma once
// Desired certificates computed from Ingresses: a certificate per (namespace, secretName) whose names
// are the union of the hosts of every selected TLS entry pointing at that Secret. Pure.
#include <compare>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ingress.hpp"

namespace acme_sidecar::core {

struct IngressRef {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string key() const { return namespace_name + "/" + name; }
  auto operator<=>(const IngressRef&) const = default;
};

// Why a host cannot go to the CA (bounded set: usable as a metric label).
enum class NameProblem {
  Empty,
  Wildcard,      // http-01 cannot validate wildcards
  IpAddress,     // http-01 here issues DNS names only
  TooLong,       // > 253 characters
  LabelTooLong,  // a label > 63 characters
  EmptyLabel,    // "a..b", leading dot
  NotAscii,      // IDNs must be written in their xn-- form
  InvalidCharacters,
};
std::string_view to_string(NameProblem problem);

// Lower-cases ASCII letters and strips surrounding blanks and one trailing dot (absolute form).
std::string normalize_name(std::string_view host);
// Problem of an already normalised name, nullopt when it is an issuable DNS name.
std::optional<NameProblem> check_dns_name(std::string_view name);

struct RejectedName {
  std::string name;  // normalised (truncated to 300 characters for display)
  NameProblem problem;
  IngressRef source;
};

// A problem with an Ingress or a TLS entry that is reported (Event + log) and otherwise skipped.
struct IngressIssue {
  IngressRef ingress;
  std::string reason;  // bounded: "tls_without_secret", "tls_without_hosts", "invalid_secret_name",
                       // "invalid_key_algorithm", "annotation_conflict"
  std::string message;
};

struct DesiredConfig {
  ClassConfig classes;
  std::string default_key_algorithm = "ecdsa-p256";  // --key-algorithm
  std::string default_profile;                        // --acme-profile ("" = none/classic)
  std::size_t default_name_limit = 100;
  std::map<std::string, std::size_t, std::less<>> name_limits{{"tlsserver", 25}, {"shortlived", 25}};
};

// Name limit for an ACME profile ("" and unknown profiles use the default).
std::size_t name_limit(const DesiredConfig& config, std::string_view profile);
// The key algorithms the crypto module implements ("ecdsa-p256", "ecdsa-p384", "rsa-2048/3072/4096").
bool is_known_key_algorithm(std::string_view text);

struct DesiredCertificate {
  std::string namespace_name;
  std::string secret_name;
  std::vector<std::string> names;   // sorted, lower-cased, de-duplicated, all issuable
  std::vector<IngressRef> sources;  // sorted by (namespace, name)
  std::string key_algorithm;
  std::string profile;  // "" = none
  std::vector<RejectedName> rejected_names;
  std::vector<IngressIssue> issues;  // annotation conflicts / invalid values affecting this certificate
  // Set when the certificate must not be requested at all (too many names, no valid name).
  std::optional<std::string> refusal;

  std::string key() const { return namespace_name + "/" + secret_name; }
  // Identity of what would be requested: names, key algorithm, profile. Equal fingerprints → same request.
  std::string fingerprint() const;
};

struct DesiredState {
  std::map<std::string, DesiredCertificate> certificates;  // key "namespace/secretName"
  std::vector<IngressIssue> issues;                          // TLS entries that were skipped
  std::vector<std::pair<IngressRef, Selection>> ignored;     // Ingresses that are not ours
};

// Selects the Ingresses (select_ingress with config.classes), then merges their TLS entries.
// Conflicting key-algorithm/profile annotations between Ingresses sharing a Secret: the first Ingress by
// (namespace, name) that sets a valid value wins; each disagreeing Ingress is reported.
DesiredState desired_certificates(const std::vector<IngressView>& ingresses, const DesiredConfig& config);

// Certificate keys ("namespace/secretName") an Ingress points at, whether or not it is ours:
// used by event handlers to enqueue both the old and the new keys of a change.
std::vector<std::string> certificate_keys(const IngressView& ingress);
// Splits "namespace/name"; nullopt when there is not exactly one '/' with both sides non-empty.
std::optional<std::pair<std::string, std::string>> split_key(std::string_view key);

}  // namespace acme_sidecar::core
