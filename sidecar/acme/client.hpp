#pragma once
// The ACME client (RFC 8555): directory, account, orders with http-01, finalize, download, ARI.
// Layers (lego's acme/api): HttpClient -> Transport (nonce pool, JWS, badNonce retry, problems)
// -> this class (resources). Thread-safe: several issuances may run at once on one client (and one
// CurlClient, so connections are reused).
//
// Orders are resumable: the order URL is handed to IssueRequest::on_order_created as soon as the CA
// has created it; resume(order_url, ...) continues from whatever state the order is in (pending ->
// answer challenges, ready -> finalize, processing -> poll, valid -> download).
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "acme/account_store.hpp"
#include "acme/observer.hpp"
#include "acme/resources.hpp"
#include "acme/transport.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "crypto/key.hpp"
#include "http/client.hpp"

namespace acme_sidecar::acme {

struct ExternalAccountBinding {
  std::string key_id;
  std::string hmac_key_b64url;  // as the CA hands it out
};

struct ClientOptions {
  std::string directory_url;
  std::vector<std::string> contact;  // e.g. "mailto:ops@example.org"
  // Agree to meta.termsOfService (the operator agreed by configuring the CA).
  bool agree_to_terms = true;
  std::optional<ExternalAccountBinding> eab;
  crypto::KeyAlgorithm account_key_algorithm = crypto::KeyAlgorithm::EcdsaP256;
  // Issuer common name of the preferred chain (Link rel="alternate"); empty = the CA's default.
  std::string preferred_chain;
  // Extra trust anchors (PEM) the issued chain must verify against; empty = only structural checks.
  std::vector<std::string> trusted_roots;
  // Polling when the CA sends no Retry-After, and the bound on the whole order flow.
  std::chrono::milliseconds poll_interval{1'000};
  std::chrono::milliseconds order_timeout{300'000};
  TransportOptions transport;
};

// Context handed to the challenge publisher with each token.
struct ChallengeContext {
  std::string domain;
  std::string order_url;
  std::string authorization_url;
};

// Where http-01 answers go (the in-memory store, ConfigMaps for several replicas, the one-shot
// responder). publish() must make the token servable before it returns.
class ChallengePublisher {
 public:
  virtual ~ChallengePublisher() = default;
  virtual void publish(const std::string& token, const std::string& key_authorization,
                       const ChallengeContext& context) = 0;
  virtual void unpublish(const std::string& token) = 0;
};

// Called before the CA is told to validate a challenge (e.g. fetch the token through the ingress
// controller). Throw core::Error to abort the order (its pending authorizations are deactivated).
using SelfCheck = std::function<void(const std::string& domain, const std::string& token,
                                     const std::string& key_authorization)>;

struct IssueRequest {
  std::vector<std::string> names;           // DNS names, lower-case, de-duplicated
  std::optional<crypto::PrivateKey> key;    // certificate key (the CSR is built from it); required
  std::optional<std::string> profile;       // refused when the CA does not offer it
  std::optional<std::string> replaces;      // ARI CertID of the certificate this one replaces
  SelfCheck self_check;                     // optional
  std::function<void(const std::string& order_url)> on_order_created;  // optional; record for resume()
};

struct IssuedCertificate {
  std::string chain_pem;        // leaf first, then the chain the client chose
  std::string order_url;
  std::string certificate_url;  // of the chosen chain
  std::string root_name;        // issuer CN of the topmost certificate
  core::TimePoint not_before{};
  core::TimePoint not_after{};
};

class AcmeClient {
 public:
  AcmeClient(http::HttpClient& http, core::Clock& clock, core::Logger logger, AccountKeyStore& keys,
             ClientOptions options, Observer* observer = nullptr);
  ~AcmeClient();
  AcmeClient(const AcmeClient&) = delete;
  AcmeClient& operator=(const AcmeClient&) = delete;

  // Fetched once, then cached (refresh() forgets it, e.g. after the CA was restarted).
  Directory directory();
  void refresh();

  // Loads (or creates and saves) the account key, then registers or finds the account. Returns its URL.
  std::string ensure_account();
  // onlyReturnExisting: the account URL for the stored key, or nullopt when the CA does not know it.
  std::optional<std::string> find_account();

  // The whole flow for a new order. Throws core::Error (see README for kinds).
  IssuedCertificate issue(const IssueRequest& request, ChallengePublisher& publisher, std::stop_token stop = {});
  // Continues an existing order. When the order is gone (404, or the CA forgot the account), falls
  // back to a new order; an invalid order is reported, not retried.
  IssuedCertificate resume(const std::string& order_url, const IssueRequest& request, ChallengePublisher& publisher,
                           std::stop_token stop = {});

  // RFC 9773: nullopt when the CA offers no renewalInfo. Throws on errors.
  std::optional<RenewalInfo> renewal_info(const std::string& certificate_pem);
  // The same by the certificate's RFC 9773 CertID (base64url(AKI keyid) "." base64url(serial)).
  std::optional<RenewalInfo> renewal_info_for_id(const std::string& cert_id);
  bool supports_renewal_info();

  // "token.thumbprint" for the account key (loads the key).
  std::string key_authorization(const std::string& token);

  // Best effort: deactivates every pending authorization of the order (errors are logged).
  void deactivate_pending_authorizations(const Order& order);

  Order fetch_order(const std::string& order_url);

 private:
  struct Flow;
  const crypto::PrivateKey& account_key();
  SignerRef signer();
  std::string register_account(bool only_existing, bool* not_found);
  Order create_order(const IssueRequest& request, std::string& order_url);
  IssuedCertificate drive(const std::string& order_url, Order order, const IssueRequest& request,
                          ChallengePublisher& publisher, std::stop_token stop);
  IssuedCertificate with_account_recovery(const std::function<IssuedCertificate()>& body);

  http::HttpClient& http_;
  core::Clock& clock_;
  core::Logger log_;
  AccountKeyStore& keys_;
  ClientOptions options_;
  NullObserver null_observer_;
  Observer& observer_;
  Transport transport_;

  std::mutex mu_;  // guards the cached state below
  std::optional<Directory> directory_;
  std::optional<crypto::PrivateKey> account_key_;
  std::string account_thumbprint_;  // RFC 7638, of account_key_
  std::string account_url_;
};

}  // namespace acme_sidecar::acme
