#include "core/renewal.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/names.hpp"

namespace acme_sidecar::core {

namespace {

Violation violation(Action action, std::string reason, std::string message) {
  return Violation{action, std::move(reason), std::move(message)};
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ",";
    out += s;
  }
  return out;
}

std::string seconds_text(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}

}  // namespace

bool SecretView::managed() const {
  auto it = labels.find(std::string(names::kManagedByLabel));
  return it != labels.end() && it->second == names::kManagedByValue;
}

std::string SecretView::annotation(const std::string& key) const {
  auto it = annotations.find(key);
  return it == annotations.end() ? std::string() : it->second;
}

std::string_view to_string(Action action) {
  switch (action) {
    case Action::None: return "none";
    case Action::Issue: return "issue";
    case Action::Renew: return "renew";
    case Action::Skip: return "skip";
  }
  return "unknown";
}

std::optional<Violation> secret_missing(const PolicyInput& in) {
  if (in.status.secret) return std::nullopt;
  return violation(Action::Issue, "secret_missing", "Secret " + in.desired.key() + " does not exist");
}

std::optional<Violation> secret_not_managed(const PolicyInput& in) {
  if (in.status.secret->managed()) return std::nullopt;
  return violation(Action::Skip, "not_managed",
                   "Secret " + in.desired.key() + " exists without label " + std::string(names::kManagedByLabel) +
                       "=" + std::string(names::kManagedByValue) +
                       "; it is never modified (delete it or add the label to hand it over)");
}

std::optional<Violation> secret_wrong_type(const PolicyInput& in) {
  const auto& type = in.status.secret->type;
  if (type == names::kTlsSecretType) return std::nullopt;
  // The type of a Secret is immutable: an update cannot fix it, so we report instead of looping.
  return violation(Action::Skip, "wrong_type",
                   "Secret " + in.desired.key() + " has type \"" + type + "\", not " +
                       std::string(names::kTlsSecretType) + " (immutable: delete the Secret to let it be recreated)");
}

std::optional<Violation> certificate_unparsable(const PolicyInput& in) {
  if (in.status.facts) return std::nullopt;
  return violation(Action::Issue, "unparsable",
                   "certificate or key in Secret " + in.desired.key() + " is unusable: " +
                       (in.status.parse_error.empty() ? std::string("no data") : in.status.parse_error));
}

std::optional<Violation> key_mismatch(const PolicyInput& in) {
  if (in.status.facts->key_matches) return std::nullopt;
  return violation(Action::Issue, "key_mismatch", "tls.key does not belong to the certificate in tls.crt");
}

std::optional<Violation> names_differ(const PolicyInput& in) {
  std::set<std::string> have;
  for (const auto& n : in.status.facts->dns_names) have.insert(normalize_name(n));
  std::vector<std::string> have_sorted(have.begin(), have.end());
  if (have_sorted == in.desired.names && in.status.facts->ip_addresses.empty()) return std::nullopt;
  return violation(Action::Renew, "names_changed",
                   "certificate names [" + join(have_sorted) + "] differ from desired [" + join(in.desired.names) +
                       "]");
}

std::optional<Violation> issuer_differs(const PolicyInput& in) {
  if (in.config.issuer.empty()) return std::nullopt;
  auto have = in.status.secret->annotation(std::string(names::kSecretIssuer));
  if (have == in.config.issuer) return std::nullopt;
  return violation(Action::Renew, "issuer_changed",
                   "issued by \"" + have + "\", configured directory is \"" + in.config.issuer + "\"");
}

std::optional<Violation> key_algorithm_differs(const PolicyInput& in) {
  if (!in.config.reissue_on_key_algorithm_change) return std::nullopt;
  const auto& have = in.status.facts->key_algorithm;
  if (have.empty() || have == in.desired.key_algorithm) return std::nullopt;
  return violation(Action::Renew, "key_algorithm_changed",
                   "key algorithm " + have + " differs from desired " + in.desired.key_algorithm);
}

std::optional<Violation> certificate_expired(const PolicyInput& in) {
  if (in.now < in.status.facts->not_after) return std::nullopt;
  return violation(Action::Renew, "expired",
                   "certificate expired " + seconds_text(in.now - in.status.facts->not_after) + " ago");
}

std::optional<Violation> renewal_due(const PolicyInput& in) {
  const auto& f = *in.status.facts;
  auto due = renewal_time(f.not_before, f.not_after, in.config, in.ari_window, in.ari_point);
  if (in.now < due) return std::nullopt;
  return violation(Action::Renew, in.ari_window ? "ari_window" : "due",
                   std::string(in.ari_window ? "inside the CA's renewal window" : "renewal time reached") +
                       " (" + seconds_text(f.not_after - in.now) + " before expiry)");
}

std::vector<Policy> default_policies() {
  return {secret_missing,        secret_not_managed, secret_wrong_type, certificate_unparsable,
          key_mismatch,          names_differ,       issuer_differs,    key_algorithm_differs,
          certificate_expired,   renewal_due};
}

TimePoint renewal_time(TimePoint not_before, TimePoint not_after, const RenewalConfig& config,
                       const std::optional<RenewalWindow>& ari_window, double ari_point) {
  if (ari_window && ari_window->end >= ari_window->start) {
    double p = std::clamp(ari_point, 0.0, 1.0);
    auto span = ari_window->end - ari_window->start;
    return ari_window->start + Duration(static_cast<Duration::rep>(std::floor(static_cast<double>(span.count()) * p)));
  }
  auto lifetime = not_after - not_before;
  if (lifetime <= Duration::zero()) return TimePoint{};  // nonsense validity: due at once
  double fraction = lifetime < config.short_lifetime ? config.short_renew_before_fraction
                                                     : config.renew_before_fraction;
  fraction = std::clamp(fraction, 0.0, 1.0);
  auto before = Duration(static_cast<Duration::rep>(std::llround(static_cast<double>(lifetime.count()) * fraction)));
  return not_after - before;
}

Decision decide(const PolicyInput& in, const std::vector<Policy>& policies) {
  Decision d;
  if (in.status.facts) {
    d.renewal_time = renewal_time(in.status.facts->not_before, in.status.facts->not_after, in.config,
                                  in.ari_window, in.ari_point);
  }
  for (const auto& policy : policies) {
    if (auto v = policy(in)) {
      d.action = v->action;
      d.reason = std::move(v->reason);
      d.message = std::move(v->message);
      return d;
    }
  }
  return d;
}

Decision decide(const PolicyInput& in) { return decide(in, default_policies()); }

}  // namespace acme_sidecar::core
