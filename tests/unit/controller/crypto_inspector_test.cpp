#include <catch2/catch.hpp>

#include "controller/crypto_inspector.hpp"
#include "crypto/mint.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using namespace std::chrono_literals;

TEST_CASE("CryptoInspector turns real PEM into facts") {
  auto key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto nb = core::TimePoint(std::chrono::seconds(1'700'000'000));
  auto cert = crypto::make_self_signed(key, {"a.example", "b.example"}, nb, nb + 90 * 24h);
  CryptoInspector inspector;
  auto in = inspector.inspect(cert.to_pem(), key.to_pkcs8_pem());
  REQUIRE(in.facts);
  CHECK(in.error.empty());
  CHECK(in.facts->dns_names == std::vector<std::string>{"a.example", "b.example"});
  CHECK(in.facts->not_before == nb);
  CHECK(in.facts->not_after == nb + 90 * 24h);
  CHECK(in.facts->key_matches);
  CHECK(in.facts->key_algorithm == "ecdsa-p256");

  auto other = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto mismatch = inspector.inspect(cert.to_pem(), other.to_pkcs8_pem());
  REQUIRE(mismatch.facts);
  CHECK_FALSE(mismatch.facts->key_matches);
  auto bad_key = inspector.inspect(cert.to_pem(), "garbage");
  REQUIRE(bad_key.facts);
  CHECK_FALSE(bad_key.facts->key_matches);
}

TEST_CASE("CryptoInspector reports garbage instead of throwing") {
  CryptoInspector inspector;
  for (std::string_view pem : {"", "garbage", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}) {
    Inspection in;
    CHECK_NOTHROW(in = inspector.inspect(pem, ""));
    CHECK_FALSE(in.facts);
    CHECK_FALSE(in.error.empty());
  }
}

TEST_CASE("CryptoInspector answers the same bytes from its memo, and only the same bytes") {
  auto key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto other = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto nb = core::TimePoint(std::chrono::seconds(1'700'000'000));
  auto cert = crypto::make_self_signed(key, {"a.example"}, nb, nb + 90 * 24h);
  CryptoInspector inspector(2);
  auto first = inspector.inspect(cert.to_pem(), key.to_pkcs8_pem());
  CHECK(inspector.memo_hits() == 0);
  auto again = inspector.inspect(cert.to_pem(), key.to_pkcs8_pem());
  CHECK(inspector.memo_hits() == 1);
  REQUIRE(again.facts);
  CHECK(again.facts->key_matches);
  CHECK(again.facts->dns_names == first.facts->dns_names);
  // Another key with the same certificate is inspected afresh: a mismatch.
  auto mismatch = inspector.inspect(cert.to_pem(), other.to_pkcs8_pem());
  CHECK(inspector.memo_hits() == 1);
  REQUIRE(mismatch.facts);
  CHECK_FALSE(mismatch.facts->key_matches);
  // Bytes moved between chain and key are a different input.
  std::string chain = cert.to_pem(), k = key.to_pkcs8_pem();
  auto moved = inspector.inspect(chain + k.substr(0, 1), k.substr(1));
  CHECK(inspector.memo_hits() == 1);
  CHECK_FALSE((moved.facts && moved.facts->key_matches));
  // Bounded: capacity 2 per generation; old entries fall out, then are inspected again.
  for (int i = 0; i < 4; ++i) (void)inspector.inspect("garbage" + std::to_string(i), "");
  auto hits = inspector.memo_hits();
  (void)inspector.inspect(cert.to_pem(), key.to_pkcs8_pem());
  CHECK(inspector.memo_hits() == hits);
  // Without a memo every call inspects.
  CryptoInspector plain(0);
  (void)plain.inspect(cert.to_pem(), key.to_pkcs8_pem());
  (void)plain.inspect(cert.to_pem(), key.to_pkcs8_pem());
  CHECK(plain.memo_hits() == 0);
}
