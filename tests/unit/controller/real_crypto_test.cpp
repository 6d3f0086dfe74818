// The reconciler with real certificates: a small CA minted by the crypto module and the production
// CryptoInspector, so the facts the policies compare (names, key algorithm, validity) are the real ones.
#include <catch2/catch.hpp>

#include "controller/crypto_inspector.hpp"
#include "controller/reconciler.hpp"
#include "crypto/mint.hpp"
#include "fakes.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using namespace acme_sidecar::controller::testing;
using namespace std::chrono_literals;

namespace {

class MintingIssuer final : public CertificateIssuer {
 public:
  explicit MintingIssuer(core::Clock& clock)
      : clock_(clock), ca_key_(crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256)), ca_(make_ca()) {}

  IssuedCertificate issue(const core::DesiredCertificate& d, const IssueContext&) override {
    ++calls;
    auto key = crypto::PrivateKey::generate(crypto::parse_key_algorithm(d.key_algorithm));
    auto nb = clock_.now();
    // Mixed case on purpose: CAs may echo names as requested; the comparison is case-insensitive.
    std::vector<std::string> names = d.names;
    if (!names.empty()) names[0][0] = static_cast<char>(std::toupper(static_cast<unsigned char>(names[0][0])));
    auto leaf = crypto::issue_certificate(ca_key_, ca_, key.public_key(), names, nb, std::chrono::hours(24 * 90));
    IssuedCertificate out;
    out.chain_pem = leaf.to_pem() + ca_.to_pem();
    out.key_pem = key.to_pkcs8_pem();
    out.not_before = leaf.not_before();
    out.not_after = leaf.not_after();
    out.issuer = "https://ca.test/dir";
    return out;
  }
  int calls = 0;

 private:
  crypto::Certificate make_ca() {
    crypto::CertificateSpec spec;
    spec.common_name = "Test CA";
    spec.is_ca = true;
    spec.not_before = clock_.now() - 1h;
    spec.not_after = clock_.now() + 24h * 3650;
    return crypto::make_self_signed(ca_key_, spec);
  }
  core::Clock& clock_;
  crypto::PrivateKey ca_key_;
  crypto::Certificate ca_;
};

}  // namespace

TEST_CASE("real certificates: issue, restart without re-issuing, re-issue on key algorithm change") {
  core::ManualClock clock;
  FakeLister lister;
  FakeSecretStore secrets;
  MintingIssuer issuer(clock);
  CryptoInspector inspector;
  RecordingEvents events;
  RecordingObserver observer;
  ReconcilerConfig config;
  config.renewal.issuer = "https://ca.test/dir";
  auto make = [&] {
    return std::make_unique<Reconciler>(
        ReconcilerDeps{lister, secrets, issuer, inspector, events, clock, core::Logger::discard(),
                       [] { return 0.5; }, &observer, nullptr},
        config);
  };
  auto ing = make_ingress("web", {"b.example", "a.example"}, "tls");
  lister.upsert(ing);

  make()->reconcile("default/tls");
  REQUIRE(issuer.calls == 1);
  auto s = secrets.peek("default/tls");
  REQUIRE(s);
  auto chain = crypto::parse_pem_chain(s->data.at("tls.crt"));
  CHECK(chain.size() == 2);  // leaf + chain
  CHECK(s->data.at("tls.key").find("-----BEGIN PRIVATE KEY-----") == 0);  // PKCS#8
  CHECK(observer.status.at("default/tls").common_name == "A.example");
  CHECK(observer.status.at("default/tls").issuer == "Test CA");

  clock.advance(24h);
  auto result = make()->reconcile("default/tls");  // a restart
  CHECK(issuer.calls == 1);
  CHECK(result.requeue_after == 59 * 24h);

  ing.annotations["acme-sidecar.io/key-algorithm"] = "ecdsa-p384";
  lister.upsert(ing);
  make()->reconcile("default/tls");
  CHECK(issuer.calls == 2);
  CHECK(observer.issuances.back() == "success:key_algorithm_changed");
  auto key = crypto::PrivateKey::from_pem(secrets.peek("default/tls")->data.at("tls.key"));
  CHECK(key.algorithm() == crypto::KeyAlgorithm::EcdsaP384);
}
