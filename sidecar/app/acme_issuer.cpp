#include "app/acme_issuer.hpp"

#include <algorithm>

#include "core/error.hpp"
#include "crypto/key.hpp"
#include "crypto/sign.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::app {

using core::Error;
using core::ErrorKind;

acme::SelfCheck make_self_check(http::HttpClient& http, HostPort controller_http, core::Clock& clock,
                                core::Logger log, int attempts, std::chrono::milliseconds spacing) {
  return [&http, controller_http, &clock, log, attempts, spacing](
             const std::string& domain, const std::string& token, const std::string& key_authorization) {
    std::string host = controller_http.host.empty() ? "127.0.0.1" : controller_http.host;
    HostPort target{host, controller_http.port};
    http::Request req;
    req.url = "http://" + target.str() + "/.well-known/acme-challenge/" + token;
    req.headers = {{"Host", domain}, {"User-Agent", "acme-sidecar self-check"}};
    req.timeout = std::chrono::seconds(5);
    std::string last;
    for (int i = 0; i < attempts; ++i) {
      try {
        auto resp = http.send(req);
        std::string body = resp.body;
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r' || body.back() == ' ')) body.pop_back();
        if (resp.status == 200 && body == key_authorization) return;
        last = "HTTP " + std::to_string(resp.status) +
               (resp.status >= 300 && resp.status < 400 ? " redirect to " + resp.header("Location").value_or("?")
                                                        : std::string());
      } catch (const Error& e) {
        last = e.what();
      }
      std::stop_source never;
      clock.sleep_for(spacing, never.get_token());
    }
    log.warn("self-check failed", {{"domain", domain}, {"controller", target.str()}, {"answer", last}});
    Error e(ErrorKind::Config,
            "self-check failed: the ingress controller at " + target.str() + " did not return the challenge for " +
                domain + " (" + last +
                "); route /.well-known/acme-challenge/ on every host to the sidecar (see manifests/overlays)",
            {{"domain", domain}});
    e.acme_type = "selfCheck";
    throw e;
  };
}

AcmeIssuer::AcmeIssuer(acme::AcmeClient& client, acme::ChallengePublisher& publisher, OrderStateStore* orders,
                       acme::SelfCheck self_check, std::string directory_url, core::Logger log)
    : client_(client),
      publisher_(publisher),
      orders_(orders),
      self_check_(std::move(self_check)),
      directory_(std::move(directory_url)),
      log_(std::move(log)) {}

controller::IssuedCertificate AcmeIssuer::issue(const core::DesiredCertificate& desired,
                                                const controller::IssueContext& ctx) {
  const std::string key = desired.key();
  acme::IssueRequest request;
  request.names = desired.names;
  if (!desired.profile.empty()) request.profile = desired.profile;
  request.self_check = self_check_;
  if (!ctx.replaces.empty() && client_.supports_renewal_info()) request.replaces = ctx.replaces;

  acme::IssuedCertificate result;
  std::string key_pem;  // of the certificate key, encoded once (order state and Secret)
  bool done = false;
  if (orders_) {
    if (auto state = orders_->load(key)) {
      if (state->names == desired.names) {
        try {
          request.key = crypto::PrivateKey::from_pem(state->key_pem);
          ctx.log.info("resuming order", {{"order", state->order_url}});
          result = client_.resume(state->order_url, request, publisher_, ctx.stop);
          auto leaf = crypto::parse_pem_chain(result.chain_pem).front();
          const auto digest = crypto::sha256(leaf.to_der());
          // An order whose certificate is already in the Secret was consumed: start afresh.
          done = !std::equal(digest.begin(), digest.end(), ctx.replaced_sha256.begin(), ctx.replaced_sha256.end());
          if (!done) ctx.log.info("resumed order was already written; starting a new one");
        } catch (const Error& e) {
          if (e.kind() == ErrorKind::Cancelled) throw;
          ctx.log.warn("could not resume order; starting a new one", {{"error", e.what()}});
        }
      }
      if (!done) orders_->remove(key);
    }
  }
  if (!done) {
    auto alg = crypto::parse_key_algorithm(desired.key_algorithm.empty() ? "ecdsa-p256" : desired.key_algorithm);
    auto cert_key = crypto::PrivateKey::generate(alg);
    request.key = cert_key;
    if (orders_) {
      request.on_order_created = [this, key, &desired, &cert_key, &key_pem](const std::string& order_url) {
        key_pem = cert_key.to_pkcs8_pem();
        orders_->save(OrderState{key, order_url, desired.names, key_pem});
      };
    }
    result = client_.issue(request, publisher_, ctx.stop);
  }

  controller::IssuedCertificate out;
  out.chain_pem = result.chain_pem;
  out.key_pem = key_pem.empty() ? request.key->to_pkcs8_pem() : std::move(key_pem);
  out.not_before = result.not_before;
  out.not_after = result.not_after;
  out.issuer = directory_;
  return out;
}

std::optional<core::RenewalWindow> AriSource::renewal_window(std::string_view ari_id) {
  if (ari_id.empty()) return std::nullopt;  // no authority key identifier: the lifetime rule applies
  const std::string id(ari_id);
  auto now = clock_.now();
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(id);
    if (it == cache_.end()) {
      if (cache_.size() > 100'000) cache_.clear();  // bounded: certificates come and go
      auto first = std::chrono::duration_cast<core::Duration>(interval_ * random_());
      cache_[id] = Entry{std::nullopt, now + first};
      return std::nullopt;
    }
    if (now < it->second.next_check) return it->second.window;
  }
  Entry entry{std::nullopt, now + interval_};
  try {
    if (client_.supports_renewal_info()) {
      if (auto info = client_.renewal_info_for_id(id)) {
        entry.window = core::RenewalWindow{info->window_start, info->window_end};
        if (info->retry_after && *info->retry_after > interval_) entry.next_check = now + *info->retry_after;
      }
    }
  } catch (const std::exception& e) {
    log_.warn("renewal information unavailable", {{"error", e.what()}});
    entry.next_check = now + std::min<core::Duration>(interval_, std::chrono::hours(1));
  }
  std::lock_guard lock(mu_);
  cache_[id] = entry;
  return entry.window;
}

}  // namespace acme_sidecar::app
