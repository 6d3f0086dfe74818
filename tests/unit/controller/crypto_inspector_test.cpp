#include <catch2/catch.hpp>

#include "controller/crypto_inspector.hpp"
#include "crypto/encoding.hpp"
#include "crypto/mint.hpp"
#include "crypto/x509.hpp"

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

namespace {

std::string pem_of(const crypto::Bytes& der) {
  const std::string b64 = crypto::base64_encode(der);
  std::string out = "-----BEGIN CERTIFICATE-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END CERTIFICATE-----\n";
}

// Same verdict, same facts, same error text.
bool same_inspection(const Inspection& a, const Inspection& b) {
  if (a.error != b.error || a.facts.has_value() != b.facts.has_value()) return false;
  if (!a.facts) return true;
  const auto& x = *a.facts;
  const auto& y = *b.facts;
  return x.dns_names == y.dns_names && x.ip_addresses == y.ip_addresses && x.not_before == y.not_before &&
         x.not_after == y.not_after && x.key_matches == y.key_matches && x.key_algorithm == y.key_algorithm &&
         x.common_name == y.common_name && x.issuer_cn == y.issuer_cn && x.ari_id == y.ari_id &&
         x.leaf_sha256 == y.leaf_sha256;
}

}  // namespace

TEST_CASE("CryptoInspector's DER fast path answers exactly like the OpenSSL path") {
  const auto nb = core::TimePoint(std::chrono::seconds(1'700'000'000));
  auto root_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  crypto::CertificateSpec ca_spec;
  ca_spec.common_name = "Fast Path Root";
  ca_spec.not_before = nb - 24h;
  ca_spec.not_after = nb + 3650 * 24h;
  ca_spec.is_ca = true;
  const auto root = crypto::make_self_signed(root_key, ca_spec);
  auto inter_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP384);
  ca_spec.common_name = "Fast Path Intermediate";
  const auto inter = crypto::issue_certificate(root_key, root, inter_key.public_key(), ca_spec);
  auto ec = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto rsa = crypto::PrivateKey::generate(crypto::KeyAlgorithm::Rsa2048);
  auto other = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);

  crypto::CertificateSpec spec;
  spec.dns_names = {"Fast.example", "b.example"};
  spec.ip_addresses = {"192.0.2.7"};
  spec.not_before = nb;
  spec.not_after = core::TimePoint(std::chrono::seconds(2'600'000'000LL));  // GeneralizedTime
  const auto ec_leaf = crypto::issue_certificate(inter_key, inter, ec.public_key(), spec);
  spec.not_after = nb + 90 * 24h;
  const auto rsa_leaf = crypto::issue_certificate(inter_key, inter, rsa.public_key(), spec);

  CryptoInspector fast(0, true);
  CryptoInspector reference(0, false);
  const std::string inter_pem = inter.to_pem();
  struct Case {
    const crypto::Certificate* leaf;
    std::string key_pem;
  };
  const Case cases[] = {{&ec_leaf, ec.to_pkcs8_pem()}, {&rsa_leaf, rsa.to_pkcs8_pem()}};

  SECTION("well-formed chains, matching, mismatched and broken keys") {
    for (const auto& c : cases) {
      for (const std::string& key_pem : {c.key_pem, other.to_pkcs8_pem(), std::string("garbage")}) {
        const std::string chain = c.leaf->to_pem() + inter_pem;
        const auto a = fast.inspect(chain, key_pem);
        const auto b = reference.inspect(chain, key_pem);
        CHECK(same_inspection(a, b));
      }
      const auto a = fast.inspect(c.leaf->to_pem() + inter_pem, c.key_pem);
      REQUIRE(a.facts);
      CHECK(a.facts->key_matches);
      CHECK(a.facts->dns_names == std::vector<std::string>{"fast.example", "b.example"});
      CHECK(a.facts->issuer_cn == "Fast Path Intermediate");
      // What ARI, "replaces" and the served probe use instead of the leaf PEM.
      CHECK(a.facts->ari_id == crypto::ari_cert_id(*c.leaf));
      CHECK(crypto::hex_encode(crypto::ByteView(a.facts->leaf_sha256.data(), a.facts->leaf_sha256.size())) ==
            c.leaf->sha256_fingerprint_hex());
    }
  }

  SECTION("every flipped byte of the key, in PKCS#8 and with the wrong curve") {
    const std::string chain = ec_leaf.to_pem() + inter_pem;
    const std::string pem = ec.to_pkcs8_pem();
    const auto begin = pem.find('\n') + 1;
    const auto end = pem.find("-----END");
    const crypto::Bytes der = crypto::base64_decode(pem.substr(begin, end - begin));
    int differences = 0;
    for (std::size_t i = 0; i < der.size(); ++i) {
      for (const std::uint8_t mask : {0x01, 0x80}) {
        crypto::Bytes m = der;
        m[i] ^= mask;
        std::string key_pem = "-----BEGIN PRIVATE KEY-----\n" + crypto::base64_encode(m) + "\n-----END PRIVATE KEY-----\n";
        if (!same_inspection(fast.inspect(chain, key_pem), reference.inspect(chain, key_pem))) ++differences;
      }
    }
    CHECK(differences == 0);
    const std::string p384 = inter_key.to_pkcs8_pem();
    CHECK(same_inspection(fast.inspect(chain, p384), reference.inspect(chain, p384)));
  }

  SECTION("every flipped byte of the leaf and of the intermediate") {
    int differences = 0;
    std::string first;
    for (const auto& c : cases) {
      const crypto::Bytes leaf_der = c.leaf->to_der();
      const crypto::Bytes inter_der = inter.to_der();
      for (int which = 0; which < 2; ++which) {
        const crypto::Bytes& der = which == 0 ? leaf_der : inter_der;
        for (std::size_t i = 0; i < der.size(); ++i) {
          for (const std::uint8_t mask : {0x01, 0x80}) {
            crypto::Bytes m = der;
            m[i] ^= mask;
            const std::string chain = which == 0 ? pem_of(m) + inter_pem : c.leaf->to_pem() + pem_of(m);
            if (!same_inspection(fast.inspect(chain, c.key_pem), reference.inspect(chain, c.key_pem))) {
              if (differences++ == 0) first = "cert " + std::to_string(which) + " offset " + std::to_string(i);
            }
          }
        }
      }
    }
    INFO(first);
    CHECK(differences == 0);
  }
}
