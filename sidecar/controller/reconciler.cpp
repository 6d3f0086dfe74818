#include "controller/reconciler.hpp"

#include <algorithm>
#include <ctime>

#include "core/error.hpp"
#include "core/names.hpp"

namespace acme_sidecar::controller {

using core::Action;
using core::Error;
using core::ErrorKind;

namespace {

std::string join(const std::vector<std::string>& v, std::string_view sep = ",") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string source_list(const core::DesiredCertificate& d) {
  std::vector<std::string> keys;
  for (const auto& s : d.sources) keys.push_back(s.key());
  return join(keys);
}

std::string string_of(std::string_view s) { return std::string(s); }

}  // namespace

InspectedTls inspect_tls(const std::map<std::string, std::string>& data, const CertificateInspector& inspector) {
  InspectedTls out;
  auto crt = data.find(string_of(core::names::kTlsCert));
  auto key = data.find(string_of(core::names::kTlsKey));
  if (crt == data.end() || key == data.end()) return out;
  out.present = true;
  out.inspection = inspector.inspect(crt->second, key->second);
  return out;
}

std::string_view to_string(EventType type) { return type == EventType::Normal ? "Normal" : "Warning"; }

core::SecretView secret_view(const SecretData& s) {
  core::SecretView v;
  v.namespace_name = s.namespace_name;
  v.name = s.name;
  v.resource_version = s.resource_version;
  v.type = s.type;
  v.labels = s.labels;
  v.annotations = s.annotations;
  return v;
}

std::string format_rfc3339(core::TimePoint t) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Reconciler::Reconciler(ReconcilerDeps deps, ReconcilerConfig config)
    : deps_(std::move(deps)), config_(std::move(config)) {
  if (!deps_.random) deps_.random = core::default_random_source();
  if (config_.max_write_attempts < 1) config_.max_write_attempts = 1;
}

core::DesiredConfig Reconciler::desired_config() const {
  auto cfg = config_.desired;
  if (!cfg.classes.class_is_default) {
    cfg.classes.class_is_default = core::class_is_default(deps_.ingresses.classes(), cfg.classes.ingress_class);
  }
  return cfg;
}

Reconciler::Scan Reconciler::scan() const {
  Scan out;
  const auto cfg = desired_config();
  for (const auto& key : deps_.ingresses.secret_keys()) {
    auto parts = core::split_key(key);
    if (!parts) continue;
    auto state = core::desired_certificates(deps_.ingresses.list_for_secret(parts->first, parts->second), cfg);
    if (state.certificates.count(key) == 0) continue;  // e.g. only Ingresses of another class name it
    out.keys.insert(key);
    ++out.desired;
  }
  std::lock_guard lock(mu_);
  out.keys.insert(reported_.begin(), reported_.end());
  return out;
}

bool Reconciler::emit_once(const std::string& cert_key, const core::IngressRef& ref, EventType type,
                           std::string_view reason, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    if (!emitted_.insert(cert_key + "|" + ref.key() + "|" + std::string(reason) + "|" + message).second) return false;
  }
  deps_.events.event(ref, type, reason, message);
  return true;
}

void Reconciler::forget_skip_and_refusal(const std::string& cert_key) {
  // Healthy again: a Skipped / refused state that comes back later is reported again. Name and annotation
  // warnings stay remembered: they describe the Ingress, which has not changed.
  std::lock_guard lock(mu_);
  auto prefix = cert_key + "|";
  std::erase_if(emitted_, [&](const std::string& e) {
    return e.compare(0, prefix.size(), prefix) == 0 &&
           (e.find("|Skipped|") != std::string::npos || e.find("|Failed|") != std::string::npos);
  });
}

void Reconciler::emit_all(const core::DesiredCertificate& d, EventType type, std::string_view reason,
                          const std::string& message, bool once) {
  for (const auto& ref : d.sources) {
    if (once) {
      emit_once(d.key(), ref, type, reason, message);
    } else {
      deps_.events.event(ref, type, reason, message);
    }
  }
}

void Reconciler::report(const CertificateReport& r) {
  {
    std::lock_guard lock(mu_);
    reported_.insert(r.namespace_name + "/" + r.secret_name);
  }
  if (deps_.observer) deps_.observer->certificate_status(r);
}

double Reconciler::ari_point(const std::string& key, const core::RenewalWindow& w) {
  // One random point per (key, window): the renewal time must not move on every reconcile.
  std::lock_guard lock(mu_);
  auto window = std::make_pair(w.start, w.end);
  auto it = ari_points_.find(key);
  if (it != ari_points_.end() && it->second.first == window) return it->second.second;
  double p = deps_.random();
  ari_points_[key] = {window, p};
  return p;
}

void Reconciler::validate(const core::DesiredCertificate& desired, const Inspection& inspection) const {
  if (!inspection.facts) {
    throw Error(ErrorKind::Crypto, "issued certificate is unusable: " + inspection.error);
  }
  const auto& f = *inspection.facts;
  if (!f.key_matches) throw Error(ErrorKind::Crypto, "issued certificate does not match the private key");
  std::set<std::string> have;
  for (const auto& n : f.dns_names) have.insert(core::normalize_name(n));
  std::vector<std::string> have_sorted(have.begin(), have.end());
  // Equality, not just coverage: extra names would make the names policy re-issue forever.
  if (have_sorted != desired.names || !f.ip_addresses.empty()) {
    throw Error(ErrorKind::Crypto, "issued certificate names [" + join(have_sorted) + "] differ from requested [" +
                                       join(desired.names) + "]");
  }
  if (f.not_after <= deps_.clock.now()) throw Error(ErrorKind::Crypto, "issued certificate is already expired");
}

// The metric's failure category: a failed HTTP-01 validation and a failed self-check are told apart
// from other CA problems, since they need different fixes (routing vs. the CA).
static std::string_view failure_reason(const Error& e) {
  static constexpr std::string_view kValidationProblems[] = {"connection", "incorrectResponse", "dns", "tls",
                                                             "unauthorized", "caa"};
  if (e.acme_type == "selfCheck") return "self_check";
  if (e.kind() == ErrorKind::AcmeProblem) {
    for (auto p : kValidationProblems)
      if (e.acme_type == p) return "validation";
  }
  return core::to_string(e.kind());
}

Result Reconciler::reconcile(const std::string& key, const ReconcileOptions& options, std::stop_token stop) {
  auto parts = core::split_key(key);
  if (!parts) throw Error(ErrorKind::Invalid, "malformed certificate key", {{"key", key}});
  const auto& [ns, secret_name] = *parts;
  auto log = deps_.log.with("secret", key);

  auto state = core::desired_certificates(deps_.ingresses.list_for_secret(ns, secret_name), desired_config());
  for (const auto& issue : state.issues) {
    emit_once("", issue.ingress, EventType::Warning, "InvalidTLS", issue.message);
  }
  auto it = state.certificates.find(key);
  if (it == state.certificates.end()) {
    // No Ingress of ours wants this Secret (any more). We never delete Secrets: only stop reporting.
    bool was_reported;
    {
      std::lock_guard lock(mu_);
      was_reported = reported_.erase(key) > 0;
      failed_request_.erase(key);
      ari_points_.erase(key);
    }
    if (was_reported && deps_.observer) deps_.observer->certificate_removed(ns, secret_name);
    log.debug("no Ingress wants this certificate");
    return {};
  }
  const auto& desired = it->second;
  log = log.with("ingresses", source_list(desired));

  for (const auto& rejected : desired.rejected_names) {
    auto message = "host \"" + rejected.name + "\" left out of Secret " + key + ": " +
                   string_of(core::to_string(rejected.problem)) +
                   (rejected.problem == core::NameProblem::Wildcard || rejected.problem == core::NameProblem::IpAddress
                        ? " (cannot be validated with http-01)"
                        : " (not a valid DNS name)");
    bool sent = emit_once(key, rejected.source, EventType::Warning, "NameRejected", message);
    if (sent) {
      log.warn("host rejected", {{"host", rejected.name}, {"reason", string_of(core::to_string(rejected.problem))}});
      if (deps_.observer) deps_.observer->name_rejected(core::to_string(rejected.problem));
    }
  }
  for (const auto& issue : desired.issues) {
    emit_once(key, issue.ingress, EventType::Warning, "AnnotationConflict", issue.message);
  }

  CertificateReport rep;
  rep.namespace_name = ns;
  rep.secret_name = secret_name;

  if (desired.refusal) {
    log.warn("certificate refused", {{"reason", *desired.refusal}});
    emit_all(desired, EventType::Warning, "Failed", "certificate refused: " + *desired.refusal, true);
    report(rep);
    return {};
  }

  auto secret = deps_.secrets.get(ns, secret_name);
  core::CertStatus status;
  std::string current_ari_id;  // of the certificate in the Secret
  if (secret) {
    status.secret = secret_view(*secret);
    // A caching store has inspected this resourceVersion already; otherwise inspect the bytes now.
    auto tls = secret->inspected ? secret->inspected
                                 : std::make_shared<const InspectedTls>(inspect_tls(secret->data, deps_.inspector));
    if (!tls->present) {
      status.parse_error = "tls.crt or tls.key missing";
    } else {
      status.facts = tls->inspection.facts;
      if (status.facts) current_ari_id = status.facts->ari_id;
      status.parse_error = tls->inspection.error;
    }
  }

  auto now = deps_.clock.now();
  std::optional<core::RenewalWindow> window;
  double point = 0.5;
  if (deps_.renewal_info && status.facts && status.secret && status.secret->managed()) {
    window = deps_.renewal_info->renewal_window(current_ari_id);
    if (window) point = ari_point(key, *window);
  }
  auto decision = core::decide(core::PolicyInput{desired, status, config_.renewal, now, window, point});
  if (status.facts) {
    rep.not_before = status.facts->not_before;
    rep.not_after = status.facts->not_after;
    rep.common_name = status.facts->common_name;
    rep.issuer = status.facts->issuer_cn;
    rep.renewal_time = decision.renewal_time;
  }

  switch (decision.action) {
    case Action::None: {
      rep.ready = true;
      report(rep);
      forget_skip_and_refusal(key);
      {
        std::lock_guard lock(mu_);
        failed_request_.erase(key);
      }
      auto wait = *decision.renewal_time - now;
      log.debug("certificate is valid", {{"renewal", format_rfc3339(*decision.renewal_time)}});
      return Result{std::max(wait, core::Duration(std::chrono::seconds(1))), false};
    }
    case Action::Skip: {
      log.warn("secret skipped", {{"reason", decision.reason}, {"detail", decision.message}});
      emit_all(desired, EventType::Warning, "Skipped", decision.message, true);
      report(rep);
      return {};
    }
    case Action::Issue:
    case Action::Renew:
      break;
  }

  auto fingerprint = desired.fingerprint();
  if (options.retry_not_before && now < *options.retry_not_before) {
    std::lock_guard lock(mu_);
    auto f = failed_request_.find(key);
    if (f != failed_request_.end() && f->second == fingerprint) {
      return Result{*options.retry_not_before - now, true};
    }
  }

  // Still serving a good certificate while a timely renewal runs; anything else is not ready.
  rep.ready = (decision.reason == "due" || decision.reason == "ari_window") && status.facts->key_matches;
  report(rep);

  auto verb = decision.action == Action::Issue ? "issuing" : "renewing";
  log.info(verb, {{"reason", decision.reason}, {"names", join(desired.names)}, {"detail", decision.message}});
  // A progress event: when the outcome follows soon, the sink may drop it (the outcome repeats the why).
  for (const auto& ref : desired.sources) {
    deps_.events.progress(ref, key, "Issuing",
                          std::string(verb) + " certificate for " + join(desired.names, ", ") + ": " + decision.message);
  }
  auto outcome = [&](EventType type, std::string_view reason, const std::string& message) {
    for (const auto& ref : desired.sources) deps_.events.outcome(ref, key, type, reason, message);
  };

  auto started = deps_.clock.now();
  auto elapsed = [&] { return std::chrono::duration<double>(deps_.clock.now() - started); };
  auto fail = [&](std::string_view reason, const std::string& message) {
    {
      std::lock_guard lock(mu_);
      failed_request_[key] = fingerprint;
    }
    if (deps_.observer) deps_.observer->issuance("failure", reason, elapsed());
    log.error("issuance failed", {{"reason", string_of(reason)}, {"error", message}});
    outcome(EventType::Warning, "Failed", message);
  };

  IssuedCertificate issued;
  try {
    IssueContext ctx{stop, log, current_ari_id, {}};
    if (status.facts) ctx.replaced_sha256 = status.facts->leaf_sha256;
    issued = deps_.issuer.issue(desired, ctx);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Cancelled) throw;
    // The issuer also stores order state in Kubernetes: only the CA's own answers are called refusals.
    const bool from_ca = e.kind() == ErrorKind::AcmeProblem || e.kind() == ErrorKind::RateLimited;
    std::string msg = (from_ca ? "CA refused: " : "issuance failed: ") + e.message();
    if (!e.acme_type.empty()) msg += " (" + e.acme_type + ")";
    if (e.retry_after) msg += "; retry after " + std::to_string(e.retry_after->count()) + "s";
    fail(failure_reason(e), msg);
    throw;
  } catch (const std::exception& e) {
    fail("internal", std::string("issuer failed: ") + e.what());
    throw Error(ErrorKind::Internal, std::string("issuer failed: ") + e.what(), {{"secret", key}});
  }

  auto inspection = deps_.inspector.inspect(issued.chain_pem, issued.key_pem);
  try {
    validate(desired, inspection);
  } catch (const Error& e) {
    fail("invalid_certificate", "rejected the issued certificate: " + e.message());
    throw;
  }
  const auto& fresh = *inspection.facts;

  bool written = false;
  try {
    written = write_secret(desired, std::move(secret), issued, fresh.not_after, log);
  } catch (const Error& e) {
    fail("secret_write", "could not write Secret " + key + ": " + e.message());
    throw;
  }
  if (!written) return {};  // a foreign Secret appeared meanwhile; reported by write_secret

  {
    std::lock_guard lock(mu_);
    failed_request_.erase(key);
  }
  forget_skip_and_refusal(key);
  if (deps_.observer) deps_.observer->issuance("success", decision.reason, elapsed());
  CertificateReport done = rep;
  done.ready = true;
  done.not_before = fresh.not_before;
  done.not_after = fresh.not_after;
  done.common_name = fresh.common_name;
  done.issuer = fresh.issuer_cn;
  done.renewal_time = core::renewal_time(fresh.not_before, fresh.not_after, config_.renewal);
  report(done);

  auto reason = decision.action == Action::Issue ? "Issued" : "Renewed";
  outcome(EventType::Normal, reason,
          std::string(reason) + " certificate for " + join(desired.names, ", ") + ", valid until " +
              format_rfc3339(*done.not_after) + " (" + decision.message + ")");
  log.info(decision.action == Action::Issue ? "issued" : "renewed",
           {{"not_after", format_rfc3339(*done.not_after)}, {"renewal", format_rfc3339(*done.renewal_time)}});
  return Result{std::max(*done.renewal_time - deps_.clock.now(), core::Duration(std::chrono::seconds(1))), false};
}

bool Reconciler::write_secret(const core::DesiredCertificate& desired, std::optional<SecretData> existing,
                              const IssuedCertificate& issued, core::TimePoint not_after, const core::Logger& log) {
  auto build = [&](const std::optional<SecretData>& base) {
    SecretData s;
    if (base) s = *base;  // copy: keep foreign labels, annotations and extra data keys (e.g. ca.crt)
    s.namespace_name = desired.namespace_name;
    s.name = desired.secret_name;
    s.type = string_of(core::names::kTlsSecretType);
    s.labels[string_of(core::names::kManagedByLabel)] = string_of(core::names::kManagedByValue);
    s.annotations[string_of(core::names::kSecretNames)] = join(desired.names);
    s.annotations[string_of(core::names::kSecretIssuer)] =
        config_.renewal.issuer.empty() ? issued.issuer : config_.renewal.issuer;
    s.annotations[string_of(core::names::kSecretNotAfter)] = format_rfc3339(not_after);
    s.annotations[string_of(core::names::kSecretIngresses)] = source_list(desired);
    s.data[string_of(core::names::kTlsCert)] = issued.chain_pem;
    s.data[string_of(core::names::kTlsKey)] = issued.key_pem;
    if (config_.owner_references) {
      std::erase_if(s.owner_references, [](const OwnerReference& o) { return o.kind == "Ingress"; });
      for (const auto& src : desired.sources) {
        s.owner_references.push_back(OwnerReference{"networking.k8s.io/v1", "Ingress", src.name, src.uid});
      }
    }
    return s;
  };

  // The cache's copy carries no data: the update must keep foreign keys (e.g. ca.crt), so read it whole.
  if (existing && existing->inspected) existing = deps_.secrets.get_fresh(desired.namespace_name, desired.secret_name);
  for (int attempt = 1;; ++attempt) {
    try {
      if (existing) {
        if (!secret_view(*existing).managed()) {
          // Someone took the Secret over while we were issuing: never modify it.
          auto msg = "Secret " + desired.key() + " now exists without label " +
                     string_of(core::names::kManagedByLabel) + "=" + string_of(core::names::kManagedByValue) +
                     "; the new certificate was not written";
          log.warn("secret skipped", {{"reason", "not_managed"}});
          emit_all(desired, EventType::Warning, "Skipped", msg, true);
          return false;
        }
        deps_.secrets.update(build(existing));
      } else {
        deps_.secrets.create(build(std::nullopt));
      }
      return true;
    } catch (const Error& e) {
      bool retry = e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::AlreadyExists ||
                   (e.kind() == ErrorKind::NotFound && existing);
      if (!retry || attempt >= config_.max_write_attempts) throw;
      log.info("secret write conflict, re-reading", {{"attempt", std::to_string(attempt)}});
      existing = deps_.secrets.get_fresh(desired.namespace_name, desired.secret_name);
    }
  }
}

}  // namespace acme_sidecar::controller
