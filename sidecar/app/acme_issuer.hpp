#pragma once
// The controller's CertificateIssuer backed by the ACME client: a fresh key per issuance, resumable
// orders (state in OrderStateStore), http-01 answers through a ChallengePublisher, an optional self-check
// through the local ingress controller, and ARI (RenewalInfoSource) when the CA offers it.
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "acme/client.hpp"
#include "app/config.hpp"
#include "core/backoff.hpp"
#include "app/kube_adapters.hpp"
#include "controller/interfaces.hpp"
#include "http/client.hpp"

namespace acme_sidecar::app {

// Fetches http://<domain>/.well-known/acme-challenge/<token> through the controller's HTTP address and
// requires the key authorization back: a misrouted controller fails here, before the CA is asked.
acme::SelfCheck make_self_check(http::HttpClient& http, HostPort controller_http, core::Clock& clock,
                                core::Logger log, int attempts = 5,
                                std::chrono::milliseconds spacing = std::chrono::milliseconds(200));

// Where an order's state lives between a crash and the next leader; null = not resumable (one replica,
// no API access for it).
class AcmeIssuer final : public controller::CertificateIssuer {
 public:
  AcmeIssuer(acme::AcmeClient& client, acme::ChallengePublisher& publisher, OrderStateStore* orders,
             acme::SelfCheck self_check, std::string directory_url, core::Logger log);
  controller::IssuedCertificate issue(const core::DesiredCertificate& desired,
                                      const controller::IssueContext& ctx) override;

 private:
  acme::AcmeClient& client_;
  acme::ChallengePublisher& publisher_;
  OrderStateStore* orders_;
  acme::SelfCheck self_check_;
  std::string directory_;
  core::Logger log_;
};

// ARI windows are fetched at most every `check_interval` per certificate (or later when the CA's
// Retry-After says so), not on every reconcile: the CA is asked about twice a day, as RFC 9773 suggests.
// A certificate seen for the first time is checked at a random point of the first interval, so a restart
// sends nothing to the CA and many certificates never ask at once; until then the lifetime rule applies.
class AriSource final : public controller::RenewalInfoSource {
 public:
  AriSource(acme::AcmeClient& client, core::Clock& clock, core::Duration check_interval, core::RandomSource random,
            core::Logger log)
      : client_(client), clock_(clock), interval_(check_interval), random_(std::move(random)), log_(std::move(log)) {}
  std::optional<core::RenewalWindow> renewal_window(std::string_view ari_id) override;

 private:
  struct Entry {
    std::optional<core::RenewalWindow> window;
    core::TimePoint next_check;
  };
  acme::AcmeClient& client_;
  core::Clock& clock_;
  core::Duration interval_;
  core::RandomSource random_;
  core::Logger log_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // by leaf fingerprint
};

}  // namespace acme_sidecar::app
