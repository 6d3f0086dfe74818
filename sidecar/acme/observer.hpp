#pragma once
// What the ACME client reports about itself, so the metrics module can count requests, badNonce
// retries and rateLimited answers without the ACME code knowing Prometheus. Implementations must be
// thread-safe and cheap (called on every request).
#include <chrono>
#include <string_view>

namespace acme_sidecar::acme {

// The `endpoint` label of acme_sidecar_acme_requests_total (bounded set).
enum class Endpoint { Directory, Nonce, Account, Order, Authz, Challenge, Finalize, Certificate, RenewalInfo };
std::string_view to_string(Endpoint e);

class Observer {
 public:
  virtual ~Observer() = default;
  // One HTTP exchange. status is the HTTP status, 0 when no response arrived (transport error/timeout).
  virtual void on_request(Endpoint endpoint, long status, std::chrono::nanoseconds duration) = 0;
  // A request was re-sent with a fresh nonce after a badNonce answer.
  virtual void on_bad_nonce_retry(Endpoint endpoint) = 0;
  // The CA answered rateLimited (or HTTP 429).
  virtual void on_rate_limited(Endpoint endpoint) = 0;
};

// Does nothing; the default when no observer is given.
class NullObserver final : public Observer {
 public:
  void on_request(Endpoint, long, std::chrono::nanoseconds) override {}
  void on_bad_nonce_retry(Endpoint) override {}
  void on_rate_limited(Endpoint) override {}
};

}  // namespace acme_sidecar::acme
