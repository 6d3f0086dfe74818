#include "acme/client.hpp"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "acme/chain.hpp"
#include "acme/headers.hpp"
#include "acme/jws.hpp"
#include "acme/problem.hpp"
#include "core/error.hpp"
#include "core/json_document.hpp"
#include "crypto/csr.hpp"
#include "crypto/jwk.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;
using nlohmann::json;

namespace {

constexpr std::string_view kPemChain = "application/pem-certificate-chain";

std::string join(const std::vector<std::string>& v, std::string_view sep = ",") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// Parses a CA response body with the given parser, adding where it came from to the error.
template <typename T, typename F>
T parse_body(F parser, const http::Response& r, const std::string& url) {
  try {
    return parser(r.body);
  } catch (const Error& e) {
    throw e.with("url", url);
  }
}

std::string required_location(const http::Response& r, const std::string& what) {
  auto loc = header(r, "Location");
  if (!loc || loc->empty()) throw Error(ErrorKind::Invalid, "ACME " + what + " response lacks a Location header");
  return *loc;
}

// Unpublishes every token it published when the flow ends, however it ends.
class PublishedTokens {
 public:
  PublishedTokens(ChallengePublisher& p, const core::Logger& log) : publisher_(p), log_(log) {}
  ~PublishedTokens() {
    for (const auto& t : tokens_) {
      try {
        publisher_.unpublish(t);
      } catch (const std::exception& e) {
        log_.warn("unpublishing challenge token failed", {{"error", e.what()}});
      }
    }
  }
  void publish(const std::string& token, const std::string& ka, const ChallengeContext& ctx) {
    if (std::find(tokens_.begin(), tokens_.end(), token) != tokens_.end()) return;
    publisher_.publish(token, ka, ctx);
    tokens_.push_back(token);
  }

 private:
  ChallengePublisher& publisher_;
  const core::Logger& log_;
  std::vector<std::string> tokens_;
};

bool is_account_gone(const Error& e) { return e.acme_type == "accountDoesNotExist"; }

// Why an authorization is not valid: the CA's validation error when it gave one.
Error authorization_error(const Authorization& a) {
  const Challenge* ch = a.find("http-01");
  if (ch && ch->error) return problem_error(*ch->error, 0, std::nullopt, "validation of " + a.identifier.value + " failed");
  return Error(ErrorKind::AcmeProblem, "authorization for " + a.identifier.value + " is " + std::string(to_string(a.status)));
}

}  // namespace

// Per-call state of one order flow.
struct AcmeClient::Flow {
  const IssueRequest& request;
  ChallengePublisher& publisher;
  std::stop_token stop;
  core::TimePoint deadline;
  std::string order_url;
  core::Logger log;
};

AcmeClient::AcmeClient(http::HttpClient& http, core::Clock& clock, core::Logger logger, AccountKeyStore& keys,
                       ClientOptions options, Observer* observer)
    : http_(http),
      clock_(clock),
      log_(logger.with("acme_directory", options.directory_url)),
      keys_(keys),
      options_(std::move(options)),
      observer_(observer ? *observer : null_observer_),
      transport_(http_, clock_, observer_, options_.transport) {
  if (options_.directory_url.empty()) throw Error(ErrorKind::Config, "ACME directory URL is empty");
}

AcmeClient::~AcmeClient() = default;

Directory AcmeClient::directory() {
  {
    std::lock_guard l(mu_);
    if (directory_) return *directory_;
  }
  auto r = transport_.get(options_.directory_url, Endpoint::Directory);
  Directory d = parse_body<Directory>(parse_directory, r, options_.directory_url);
  transport_.set_new_nonce_url(d.new_nonce);
  std::lock_guard l(mu_);
  directory_ = d;
  return d;
}

void AcmeClient::refresh() {
  std::lock_guard l(mu_);
  directory_.reset();
  account_url_.clear();
  transport_.nonces().clear();
}

const crypto::PrivateKey& AcmeClient::account_key() {
  std::lock_guard l(mu_);
  if (account_key_) return *account_key_;
  if (auto pem = keys_.load()) {
    try {
      account_key_ = crypto::PrivateKey::from_pem(*pem);
    } catch (const Error& e) {
      throw Error(ErrorKind::Config, "stored ACME account key is unusable: " + e.message());
    }
  } else {
    account_key_ = crypto::PrivateKey::generate(options_.account_key_algorithm);
    keys_.save(account_key_->to_pkcs8_pem());
    log_.info("generated a new ACME account key", {{"algorithm", std::string(crypto::to_string(account_key_->algorithm()))}});
  }
  return *account_key_;
}

SignerRef AcmeClient::signer() {
  const crypto::PrivateKey& key = account_key();
  std::string kid;
  {
    std::lock_guard l(mu_);
    kid = account_url_;
  }
  if (kid.empty()) kid = ensure_account();
  return SignerRef{&key, kid};
}

std::string AcmeClient::register_account(bool only_existing, bool* not_found) {
  Directory dir = directory();
  const crypto::PrivateKey& key = account_key();
  json payload = json::object();
  if (only_existing) {
    payload["onlyReturnExisting"] = true;
  } else {
    if (dir.meta.external_account_required && !options_.eab)
      throw Error(ErrorKind::Config,
                  "the CA requires External Account Binding: configure --acme-eab-kid and --acme-eab-hmac-file");
    if (!options_.contact.empty()) payload["contact"] = options_.contact;
    if (options_.agree_to_terms) payload["termsOfServiceAgreed"] = true;
    if (options_.eab) {
      payload["externalAccountBinding"] =
          json::parse(eab_jws(key.public_key(), options_.eab->key_id, options_.eab->hmac_key_b64url, dir.new_account));
    }
  }
  http::Response r;
  try {
    r = transport_.post(dir.new_account, Endpoint::Account, SignerRef{&key, ""}, payload.dump());
  } catch (const Error& e) {
    if (only_existing && not_found && is_account_gone(e)) {
      *not_found = true;
      return {};
    }
    throw;
  }
  std::string url = required_location(r, "newAccount");
  Account acct = parse_body<Account>(parse_account, r, dir.new_account);
  if (acct.status != Status::Valid)
    throw Error(ErrorKind::AcmeProblem, "ACME account is " + std::string(to_string(acct.status)), {{"account", url}});
  {
    std::lock_guard l(mu_);
    account_url_ = url;
  }
  log_.info(r.status == 201 ? "registered ACME account" : "found existing ACME account", {{"account", url}});
  return url;
}

std::string AcmeClient::ensure_account() {
  {
    std::lock_guard l(mu_);
    if (!account_url_.empty()) return account_url_;
  }
  // newAccount with an already-registered key returns that account (200), so no lookup first.
  return register_account(false, nullptr);
}

std::optional<std::string> AcmeClient::find_account() {
  bool not_found = false;
  std::string url = register_account(true, &not_found);
  if (not_found) return std::nullopt;
  return url;
}

std::string AcmeClient::key_authorization(const std::string& token) {
  const crypto::PrivateKey& key = account_key();
  std::lock_guard l(mu_);
  // The account key never changes once loaded: its thumbprint is computed once.
  if (account_thumbprint_.empty()) account_thumbprint_ = crypto::jwk_thumbprint(key);
  return token + "." + account_thumbprint_;
}

Order AcmeClient::fetch_order(const std::string& order_url) {
  auto r = transport_.post(order_url, Endpoint::Order, signer(), std::nullopt);
  return parse_body<Order>(parse_order, r, order_url);
}

Order AcmeClient::create_order(const IssueRequest& request, std::string& order_url) {
  Directory dir = directory();
  if (request.profile && !request.profile->empty() && !dir.meta.profiles.count(*request.profile)) {
    std::vector<std::string> offered;
    for (const auto& [k, v] : dir.meta.profiles) offered.push_back(k);
    throw Error(ErrorKind::Config, "ACME profile '" + *request.profile + "' is not offered by the CA",
                {{"offered", offered.empty() ? std::string("none") : join(offered)}});
  }
  bool with_replaces = request.replaces && !request.replaces->empty() && !dir.renewal_info.empty();
  // The payload as text (RFC 8555 §7.4: identifiers, and the profile and ARI extensions when used).
  const auto payload = [&](bool replaces) {
    std::string out = R"({"identifiers":[)";
    for (std::size_t i = 0; i < request.names.size(); ++i) {
      out += i == 0 ? R"({"type":"dns","value":)" : R"(,{"type":"dns","value":)";
      core::append_json_string(out, request.names[i]);
      out += '}';
    }
    out += ']';
    if (request.profile && !request.profile->empty()) {
      out += R"(,"profile":)";
      core::append_json_string(out, *request.profile);
    }
    if (replaces) {
      out += R"(,"replaces":)";
      core::append_json_string(out, *request.replaces);
    }
    out += '}';
    return out;
  };
  http::Response r;
  try {
    r = transport_.post(dir.new_order, Endpoint::Order, signer(), payload(with_replaces));
  } catch (const Error& e) {
    // The replaced certificate may already have a successor order; that must not block issuance.
    if (!with_replaces || e.acme_type != "alreadyReplaced") throw;
    log_.warn("CA refused 'replaces'; ordering without it", {{"error", e.message()}});
    r = transport_.post(dir.new_order, Endpoint::Order, signer(), payload(false));
  }
  order_url = required_location(r, "newOrder");
  return parse_body<Order>(parse_order, r, dir.new_order);
}

IssuedCertificate AcmeClient::with_account_recovery(const std::function<IssuedCertificate()>& body) {
  try {
    return body();
  } catch (const Error& e) {
    if (!is_account_gone(e)) throw;
    // The CA forgot the account (e.g. a test CA restarted): register the same key again, once.
    log_.warn("ACME account unknown to the CA; registering again", {{"error", e.message()}});
    refresh();
    ensure_account();
    return body();
  }
}

IssuedCertificate AcmeClient::issue(const IssueRequest& request, ChallengePublisher& publisher, std::stop_token stop) {
  if (request.names.empty()) throw Error(ErrorKind::Config, "no names to issue a certificate for");
  if (!request.key) throw Error(ErrorKind::Internal, "IssueRequest without a certificate key");
  return with_account_recovery([&] {
    ensure_account();
    std::string order_url;
    Order order = create_order(request, order_url);
    log_.info("created ACME order", {{"order", order_url}, {"status", std::string(to_string(order.status))},
                                     {"names", std::to_string(request.names.size())}});
    if (request.on_order_created) request.on_order_created(order_url);
    return drive(order_url, std::move(order), request, publisher, stop);
  });
}

IssuedCertificate AcmeClient::resume(const std::string& order_url, const IssueRequest& request,
                                     ChallengePublisher& publisher, std::stop_token stop) {
  if (!request.key) throw Error(ErrorKind::Internal, "IssueRequest without a certificate key");
  Order order;
  try {
    ensure_account();
    order = fetch_order(order_url);
  } catch (const Error& e) {
    if (e.http_status != 404 && !is_account_gone(e)) throw;
    log_.warn("ACME order to resume is gone; starting a new one", {{"order", order_url}, {"error", e.message()}});
    if (is_account_gone(e)) refresh();
    return issue(request, publisher, stop);
  }
  std::set<std::string> want(request.names.begin(), request.names.end()), have;
  for (const auto& id : order.identifiers) have.insert(id.value);
  if (want != have) {
    log_.info("names changed since the order was created; starting a new one", {{"order", order_url}});
    return issue(request, publisher, stop);
  }
  if (order.status == Status::Expired || order.status == Status::Deactivated) {
    log_.info("ACME order to resume expired; starting a new one", {{"order", order_url}});
    return issue(request, publisher, stop);
  }
  log_.info("resuming ACME order", {{"order", order_url}, {"status", std::string(to_string(order.status))}});
  return with_account_recovery([&] { return drive(order_url, order, request, publisher, stop); });
}

namespace {

// Waits before the next poll: the CA's Retry-After when given, else the configured interval.
// Never past the deadline; stop requests abort promptly.
// Without a Retry-After the wait grows 50 ms, 100 ms, ... up to `interval`: a CA that validates in
// milliseconds (Pebble, a private CA) is not kept waiting a whole second per step.
void poll_wait(core::Clock& clock, std::optional<std::chrono::seconds> retry_after, std::chrono::milliseconds interval,
               core::TimePoint deadline, const std::stop_token& stop, const std::string& what, int attempt = 10) {
  std::chrono::milliseconds quick(50LL << std::clamp(attempt, 0, 10));
  core::Duration d = retry_after ? core::Duration(*retry_after) : core::Duration(std::min(quick, interval));
  // Retry-After: 0 must not turn into a busy loop.
  d = std::max<core::Duration>(d, std::chrono::milliseconds(10));
  auto until = clock.now() + d;
  if (until > deadline) {
    Error e(ErrorKind::Timeout, "ACME order did not complete in time while waiting for " + what);
    e.retry_after = retry_after;
    throw e;
  }
  if (!clock.sleep_until(until, stop)) throw Error(ErrorKind::Cancelled, "ACME order cancelled while waiting for " + what);
}

void check_stop(const std::stop_token& stop) {
  if (stop.stop_requested()) throw Error(ErrorKind::Cancelled, "ACME order cancelled");
}

}  // namespace

void AcmeClient::deactivate_pending_authorizations(const Order& order) {
  for (const auto& url : order.authorizations) {
    try {
      auto r = transport_.post(url, Endpoint::Authz, signer(), std::nullopt);
      Authorization a = parse_authorization(r.body);
      if (a.status != Status::Pending) continue;
      transport_.post(url, Endpoint::Authz, signer(), std::string(R"({"status":"deactivated"})"));
      log_.info("deactivated pending authorization", {{"authz", url}, {"domain", a.identifier.value}});
    } catch (const std::exception& e) {
      log_.warn("deactivating authorization failed", {{"authz", url}, {"error", e.what()}});
    }
  }
}

IssuedCertificate AcmeClient::drive(const std::string& order_url, Order order, const IssueRequest& request,
                                    ChallengePublisher& publisher, std::stop_token stop) {
  const auto deadline = clock_.now() + options_.order_timeout;
  core::Logger log = log_.with("order", order_url);
  PublishedTokens published(publisher, log);
  std::optional<std::chrono::seconds> retry_after;

  // Fails the order: deactivates what is still pending, then throws the most specific error.
  auto fail = [&](const Order& o, std::optional<Error> cause) -> IssuedCertificate {
    deactivate_pending_authorizations(o);
    if (cause) throw cause->with("order", order_url);
    if (o.error) throw problem_error(*o.error, 0, std::nullopt, "ACME order " + std::string(to_string(o.status)))
        .with("order", order_url);
    throw Error(ErrorKind::AcmeProblem, "ACME order is " + std::string(to_string(o.status)), {{"order", order_url}});
  };

  auto refetch = [&] {
    auto r = transport_.post(order_url, Endpoint::Order, signer(), std::nullopt);
    retry_after = transport_.retry_after(r);
    order = parse_body<Order>(parse_order, r, order_url);
  };

  int processing_polls = 0;
  for (;;) {
    check_stop(stop);
    switch (order.status) {
      case Status::Pending: {
        // Answer every challenge first so the CA validates them in parallel.
        retry_after.reset();
        bool answered = false;
        for (const auto& url : order.authorizations) {
          check_stop(stop);
          auto r = transport_.post(url, Endpoint::Authz, signer(), std::nullopt);
          Authorization a = parse_body<Authorization>(parse_authorization, r, url);
          if (a.status == Status::Valid) continue;  // reused authorization: nothing to prove
          if (a.status != Status::Pending) return fail(order, authorization_error(a));
          const Challenge* ch = a.find("http-01");
          if (!ch || ch->token.empty())
            return fail(order, Error(ErrorKind::Config, "the CA offers no http-01 challenge for " + a.identifier.value));
          std::string ka = key_authorization(ch->token);
          published.publish(ch->token, ka, ChallengeContext{a.identifier.value, order_url, url});
          if (ch->status == Status::Pending) {
            if (request.self_check) {
              try {
                request.self_check(a.identifier.value, ch->token, ka);
              } catch (const Error& e) {
                return fail(order, e.with("domain", a.identifier.value));
              } catch (const std::exception& e) {
                return fail(order, Error(ErrorKind::Invalid, std::string("self-check failed: ") + e.what(),
                                         {{"domain", a.identifier.value}}));
              }
            }
            auto cr = transport_.post(ch->url, Endpoint::Challenge, signer(), std::string("{}"));
            if (auto ra = transport_.retry_after(cr)) retry_after = ra;
            answered = true;
            log.debug("asked the CA to validate", {{"domain", a.identifier.value}});
          }
        }
        // Then poll the order, not each authorization: it turns ready exactly when every
        // authorization is valid and invalid when one fails (RFC 8555 7.1.6), so one request per
        // poll covers every name and a ready answer leads straight to finalize. The failing
        // authorization is only read when the order turns invalid (case Invalid below).
        for (int attempt = 0;; ++attempt) {
          // Nothing answered (every authorization was valid already): look at once.
          if (answered || attempt > 0)
            poll_wait(clock_, retry_after, options_.poll_interval, deadline, stop, "validation", attempt);
          refetch();
          if (order.status != Status::Pending) break;
        }
        break;
      }
      case Status::Ready: {
        crypto::Csr csr = crypto::make_csr(*request.key, request.names);
        // base64url needs no escaping
        const std::string payload = R"({"csr":")" + crypto::base64url_encode(crypto::ByteView(csr.der)) + R"("})";
        try {
          auto r = transport_.post(order.finalize, Endpoint::Finalize, signer(), payload);
          retry_after = transport_.retry_after(r);
          order = parse_body<Order>(parse_order, r, order.finalize);
        } catch (const Error& e) {
          // orderNotReady on a resumed order: another attempt already moved it on; look again.
          if (e.acme_type != "orderNotReady") throw;
          log.info("finalize answered orderNotReady; re-reading the order");
          refetch();
          if (order.status == Status::Ready) throw;
        }
        log.info("finalized ACME order", {{"status", std::string(to_string(order.status))}});
        break;
      }
      case Status::Processing:
        poll_wait(clock_, retry_after, options_.poll_interval, deadline, stop, "certificate issuance",
                  processing_polls++);
        refetch();
        break;
      case Status::Valid: {
        if (!order.certificate || order.certificate->empty())
          throw Error(ErrorKind::Invalid, "ACME order is valid but has no certificate URL", {{"order", order_url}});
        const std::string& cert_url = *order.certificate;
        auto r = transport_.post(cert_url, Endpoint::Certificate, signer(), std::nullopt, kPemChain);
        const crypto::PrivateKey& csr_key = *request.key;
        CheckedChain chain;
        try {
          chain = check_chain(r.body, request.names, csr_key, options_.trusted_roots, clock_.now());
        } catch (const Error& e) {
          throw e.with("certificate_url", cert_url);
        }
        std::string chosen_url = cert_url;
        if (!options_.preferred_chain.empty() && !chain_matches_preferred(chain, options_.preferred_chain)) {
          auto alts = links_with_rel(parse_links(header_values(r, "Link"), cert_url), "alternate");
          for (const auto& alt : alts) {
            try {
              auto ar = transport_.post(alt, Endpoint::Certificate, signer(), std::nullopt, kPemChain);
              auto alt_chain = check_chain(ar.body, request.names, csr_key, options_.trusted_roots, clock_.now());
              if (chain_matches_preferred(alt_chain, options_.preferred_chain)) {
                chain = std::move(alt_chain);
                chosen_url = alt;
                break;
              }
            } catch (const Error& e) {
              log.warn("alternate chain unusable", {{"url", alt}, {"error", e.message()}});
            }
          }
          if (chosen_url == cert_url)
            log.info("preferred chain not offered; using the default chain",
                     {{"preferred", options_.preferred_chain}, {"root", chain_root_name(chain)}});
        }
        IssuedCertificate out;
        out.chain_pem = std::move(chain.pem);
        out.order_url = order_url;
        out.certificate_url = chosen_url;
        out.root_name = chain_root_name(chain);
        out.not_before = chain.not_before;
        out.not_after = chain.not_after;
        log.info("certificate issued", {{"names", std::to_string(request.names.size())}, {"root", out.root_name}});
        return out;
      }
      case Status::Invalid:
      case Status::Expired:
      case Status::Deactivated:
      case Status::Revoked: {
        // A failed authorization names the domain and the CA's validation error; prefer it to
        // the order's own error (only read on failure, so it costs nothing on the good path).
        std::optional<Error> cause;
        for (const auto& url : order.authorizations) {
          try {
            auto r = transport_.post(url, Endpoint::Authz, signer(), std::nullopt);
            Authorization a = parse_authorization(r.body);
            if (a.status != Status::Valid && a.status != Status::Pending) {
              cause = authorization_error(a);
              break;
            }
          } catch (const Error& e) {
            log.warn("reading a failed order's authorization failed", {{"authz", url}, {"error", e.message()}});
          }
        }
        return fail(order, std::move(cause));
      }
    }
    if (clock_.now() > deadline)
      throw Error(ErrorKind::Timeout, "ACME order did not complete in time", {{"order", order_url},
                                                                             {"status", std::string(to_string(order.status))}});
  }
}

bool AcmeClient::supports_renewal_info() { return !directory().renewal_info.empty(); }

std::optional<RenewalInfo> AcmeClient::renewal_info(const std::string& certificate_pem) {
  if (directory().renewal_info.empty()) return std::nullopt;
  return renewal_info_for_id(crypto::ari_cert_id(crypto::parse_pem_chain(certificate_pem).front()));
}

std::optional<RenewalInfo> AcmeClient::renewal_info_for_id(const std::string& cert_id) {
  Directory dir = directory();
  if (dir.renewal_info.empty()) return std::nullopt;
  std::string url = dir.renewal_info;
  if (url.back() != '/') url += '/';
  url += cert_id;
  auto r = transport_.get(url, Endpoint::RenewalInfo);
  RenewalInfo info = parse_body<RenewalInfo>(parse_renewal_info, r, url);
  info.retry_after = transport_.retry_after(r);
  return info;
}

}  // namespace acme_sidecar::acme
