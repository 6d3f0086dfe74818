#pragma once
// RFC 8555 resources as plain values, and the parsers that turn CA responses into them. Every parser
// takes untrusted text and either returns a value or throws core::Error(Parse) with a clear message;
// they are the fuzz targets under tests/fuzz/acme/.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace acme_sidecar::acme {

struct DirectoryMeta {
  std::optional<std::string> terms_of_service;
  std::optional<std::string> website;
  std::vector<std::string> caa_identities;
  bool external_account_required = false;
  // Profile name -> human description (draft-aaron-acme-profiles).
  std::map<std::string, std::string> profiles;
};

struct Directory {
  std::string new_nonce;
  std::string new_account;
  std::string new_order;
  std::string new_authz;    // optional in RFC 8555
  std::string revoke_cert;
  std::string key_change;
  std::string renewal_info;  // RFC 9773 ARI; empty when not offered
  DirectoryMeta meta;
};

enum class Status { Pending, Ready, Processing, Valid, Invalid, Deactivated, Expired, Revoked };
std::string_view to_string(Status s);

struct Subproblem {
  std::string type;  // full URN as sent
  std::string detail;
  std::string identifier;  // identifier value, when given
};

// RFC 7807 problem document as used by RFC 8555 §6.7.
struct Problem {
  std::string type;  // full URN as sent, e.g. "urn:ietf:params:acme:error:badNonce"
  std::string detail;
  int status = 0;
  std::vector<Subproblem> subproblems;
  // Type without the ACME URN prefix ("badNonce"); the full type when it is not an ACME one.
  std::string short_type() const;
  // "detail [identifier: type detail; ...]" for error messages.
  std::string describe() const;
};

struct Identifier {
  std::string type;  // "dns"
  std::string value;
  bool operator==(const Identifier&) const = default;
};

struct Order {
  Status status = Status::Pending;
  std::optional<std::string> expires;
  std::vector<Identifier> identifiers;
  std::vector<std::string> authorizations;
  std::string finalize;
  std::optional<std::string> certificate;
  std::optional<Problem> error;
  std::optional<std::string> profile;
  std::optional<std::string> replaces;
};

struct Challenge {
  std::string type;
  std::string url;
  std::string token;
  Status status = Status::Pending;
  std::optional<Problem> error;
};

struct Authorization {
  Identifier identifier;
  Status status = Status::Pending;
  std::vector<Challenge> challenges;
  bool wildcard = false;
  // The http-01 challenge, or nullptr.
  const Challenge* find(std::string_view type) const;
};

struct Account {
  Status status = Status::Valid;
  std::vector<std::string> contact;
  std::optional<std::string> orders;
};

// RFC 9773 renewal information.
struct RenewalInfo {
  core::TimePoint window_start;
  core::TimePoint window_end;
  std::optional<std::string> explanation_url;
  std::optional<std::chrono::seconds> retry_after;  // from the HTTP header, filled by the client
};

// Parsers of CA responses (JSON text). Throw core::Error(Parse) on anything malformed.
Directory parse_directory(std::string_view json);
Order parse_order(std::string_view json);
Authorization parse_authorization(std::string_view json);
Challenge parse_challenge(std::string_view json);
Account parse_account(std::string_view json);
Problem parse_problem(std::string_view json);
RenewalInfo parse_renewal_info(std::string_view json);

// RFC 3339 timestamp ("2025-01-02T03:04:05.123Z", offsets allowed). Throws core::Error(Parse).
core::TimePoint parse_rfc3339(std::string_view text);

}  // namespace acme_sidecar::acme
