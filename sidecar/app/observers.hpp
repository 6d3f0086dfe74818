#pragma once
// Bridges from the modules' observer interfaces to the Prometheus families in metrics/. The modules
// never see prometheus-cpp; metrics/ never sees the modules.
#include "acme/observer.hpp"
#include "controller/interfaces.hpp"
#include "metrics/metrics.hpp"

namespace acme_sidecar::app {

class MetricsObserver final : public controller::ControllerObserver, public acme::Observer {
 public:
  explicit MetricsObserver(metrics::Metrics& m) : m_(m) {}
  // controller
  void certificate_status(const controller::CertificateReport& r) override;
  void certificate_removed(const std::string& ns, const std::string& name) override;
  void issuance(std::string_view result, std::string_view reason, std::chrono::duration<double> d) override;
  void managed_certificates(std::size_t count) override { m_.managed_certificates(count); }
  void name_rejected(std::string_view reason) override;
  // acme
  void on_request(acme::Endpoint endpoint, long status, std::chrono::nanoseconds duration) override;
  void on_bad_nonce_retry(acme::Endpoint) override { m_.acme_bad_nonce_retry(); }
  void on_rate_limited(acme::Endpoint) override { m_.acme_rate_limited(); }

  static std::string_view issuance_reason(std::string_view result, std::string_view reason);

 private:
  metrics::Metrics& m_;
};

}  // namespace acme_sidecar::app
