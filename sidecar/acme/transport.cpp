#include "acme/transport.hpp"

#include <chrono>

#include "acme/headers.hpp"
#include "acme/jws.hpp"
#include "acme/problem.hpp"
#include "core/error.hpp"

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;

std::string_view to_string(Endpoint e) {
  switch (e) {
    case Endpoint::Directory: return "directory";
    case Endpoint::Nonce: return "nonce";
    case Endpoint::Account: return "account";
    case Endpoint::Order: return "order";
    case Endpoint::Authz: return "authz";
    case Endpoint::Challenge: return "challenge";
    case Endpoint::Finalize: return "finalize";
    case Endpoint::Certificate: return "certificate";
    case Endpoint::RenewalInfo: return "renewal_info";
  }
  return "unknown";
}

Transport::Transport(http::HttpClient& http, core::Clock& clock, Observer& observer, TransportOptions options)
    : http_(http), clock_(clock), observer_(observer), options_(std::move(options)) {}

http::Response Transport::exchange(http::Request request, Endpoint endpoint) {
  request.timeout = options_.request_timeout;
  request.connect_timeout = options_.connect_timeout;
  request.headers.emplace_back("User-Agent", options_.user_agent);
  // Durations are real time (what the histogram wants), not the injected clock.
  auto start = std::chrono::steady_clock::now();
  http::Response response;
  try {
    response = http_.send(request);
  } catch (const Error& e) {
    observer_.on_request(endpoint, 0, std::chrono::steady_clock::now() - start);
    throw e.with("acme_endpoint", std::string(to_string(endpoint))).with("url", request.url);
  }
  observer_.on_request(endpoint, response.status, std::chrono::steady_clock::now() - start);
  if (auto n = header(response, "Replay-Nonce")) nonces_.push(*n);
  return response;
}

std::optional<std::chrono::seconds> Transport::retry_after(const http::Response& response) const {
  auto v = header(response, "Retry-After");
  if (!v) return std::nullopt;
  return parse_retry_after(*v, clock_.now());
}

void Transport::throw_error(const http::Response& response, Endpoint endpoint, const std::string& url) {
  Error e = response_error(response.status, header(response, "Content-Type").value_or(""), response.body,
                           retry_after(response), std::string("ACME ") + std::string(to_string(endpoint)));
  if (e.kind() == ErrorKind::RateLimited) observer_.on_rate_limited(endpoint);
  throw e.with("url", url);
}

http::Response Transport::get(const std::string& url, Endpoint endpoint) {
  http::Request req;
  req.method = "GET";
  req.url = url;
  http::Response r = exchange(std::move(req), endpoint);
  if (r.status >= 400) throw_error(r, endpoint, url);
  return r;
}

std::string Transport::fresh_nonce() {
  if (auto n = nonces_.pop()) return *n;
  std::string url;
  {
    std::lock_guard l(mu_);
    url = new_nonce_url_;
  }
  if (url.empty()) throw Error(ErrorKind::Internal, "ACME newNonce URL unknown (directory not loaded)");
  http::Request req;
  req.method = "HEAD";
  req.url = url;
  http::Response r = exchange(std::move(req), Endpoint::Nonce);
  if (r.status >= 400) throw_error(r, Endpoint::Nonce, url);
  if (auto n = nonces_.pop()) return *n;
  throw Error(ErrorKind::Invalid, "ACME newNonce answered without a usable Replay-Nonce header",
              {{"url", url}});
}

http::Response Transport::post(const std::string& url, Endpoint endpoint, const SignerRef& signer,
                               const std::optional<std::string>& payload, std::string_view accept) {
  if (!signer.key) throw Error(ErrorKind::Internal, "ACME POST without an account key");
  for (int attempt = 0;; ++attempt) {
    http::Request req;
    req.method = "POST";
    req.url = url;
    req.headers.emplace_back("Content-Type", "application/jose+json");
    if (!accept.empty()) req.headers.emplace_back("Accept", std::string(accept));
    req.body = jws_sign(*signer.key, signer.kid, fresh_nonce(), url, payload.value_or(std::string()));
    http::Response r = exchange(std::move(req), endpoint);
    if (r.status < 400) return r;
    try {
      throw_error(r, endpoint, url);
    } catch (const Error& e) {
      // RFC 8555 §6.5: the badNonce answer carries a fresh nonce (already pooled); retry, bounded.
      if (e.acme_type == "badNonce" && attempt < options_.max_bad_nonce_retries) {
        observer_.on_bad_nonce_retry(endpoint);
        continue;
      }
      throw;
    }
  }
}

}  // namespace acme_sidecar::acme
