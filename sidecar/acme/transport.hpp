#pragma once
// The lower layers of the client (lego's acme/api): HTTP sender -> nonce pool -> JWS signer. Every
// request is reported to the Observer; every error response is decoded into core::Error; badNonce is
// retried here and nowhere else.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "acme/nonce_pool.hpp"
#include "acme/observer.hpp"
#include "core/clock.hpp"
#include "crypto/key.hpp"
#include "http/client.hpp"

namespace acme_sidecar::acme {

struct TransportOptions {
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
  // Re-sends after badNonce (each with a fresh nonce); the next badNonce is returned as an error.
  // 15 keeps even a 50% rejection rate (0.5^16 per request) from failing an issuance.
  int max_bad_nonce_retries = 15;
  std::string user_agent = "acme-sidecar";
};

// Who signs: the account key, with `kid` once the account URL is known (empty -> embedded "jwk").
struct SignerRef {
  const crypto::PrivateKey* key = nullptr;
  std::string kid;
};

class Transport {
 public:
  Transport(http::HttpClient& http, core::Clock& clock, Observer& observer, TransportOptions options = {});

  void set_new_nonce_url(std::string url) {
    std::lock_guard l(mu_);
    new_nonce_url_ = std::move(url);
  }

  // Unsigned GET (directory, renewalInfo). Error statuses throw core::Error (problem decoded).
  http::Response get(const std::string& url, Endpoint endpoint);
  // Signed POST; `payload` is JSON text, nullopt for POST-as-GET. `accept` sets the Accept header.
  // Error statuses throw core::Error (problem decoded); badNonce is retried with a fresh nonce.
  http::Response post(const std::string& url, Endpoint endpoint, const SignerRef& signer,
                      const std::optional<std::string>& payload, std::string_view accept = {});

  // Retry-After of a response (seconds or HTTP-date) relative to the injected clock.
  std::optional<std::chrono::seconds> retry_after(const http::Response& response) const;

  NoncePool& nonces() { return nonces_; }

 private:
  http::Response exchange(http::Request request, Endpoint endpoint);
  std::string fresh_nonce();
  [[noreturn]] void throw_error(const http::Response& response, Endpoint endpoint, const std::string& url);

  http::HttpClient& http_;
  core::Clock& clock_;
  Observer& observer_;
  TransportOptions options_;
  NoncePool nonces_;
  std::mutex mu_;
  std::string new_nonce_url_;
};

}  // namespace acme_sidecar::acme
