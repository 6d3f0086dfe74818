#include "crypto/csr.hpp"

#include <catch2/catch.hpp>
#include <openssl/x509.h>

#include "test_util.hpp"

using namespace acme_sidecar::crypto;
using acme_sidecar::core::ErrorKind;

TEST_CASE("CSR carries exactly the names as DNS SANs and the first as CN", "[crypto][csr]") {
  const auto alg = GENERATE(KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048);
  const PrivateKey key = PrivateKey::generate(alg);
  const std::vector<std::string> names{"www.example.com", "example.com", "api.example.com"};
  const Csr csr = make_csr(key, names);
  CHECK_THAT(csr.pem, Catch::StartsWith("-----BEGIN CERTIFICATE REQUEST-----\n"));
  const CsrInfo info = parse_csr(csr.der);
  CHECK(info.dns_names == names);
  CHECK(info.common_name == "www.example.com");
  CHECK(info.public_key == key.public_key());
  // The PEM is the same request.
  const CsrInfo from_pem = parse_csr_pem(csr.pem);
  CHECK(from_pem.dns_names == names);

  // Signature algorithm: SHA-256, SHA-384 for P-384.
  const unsigned char* p = csr.der.data();
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr.der.size())));
  REQUIRE(req);
  const int nid = X509_REQ_get_signature_nid(req.get());
  if (alg == KeyAlgorithm::EcdsaP256) CHECK(nid == NID_ecdsa_with_SHA256);
  if (alg == KeyAlgorithm::EcdsaP384) CHECK(nid == NID_ecdsa_with_SHA384);
  if (alg == KeyAlgorithm::Rsa2048) CHECK(nid == NID_sha256WithRSAEncryption);
}

TEST_CASE("CSR CN only when the first name fits 64 bytes", "[crypto][csr]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::string exactly64 = std::string(60, 'a') + ".com";
  const std::string sixty5 = std::string(61, 'a') + ".com";
  REQUIRE(exactly64.size() == 64);
  REQUIRE(sixty5.size() == 65);

  CHECK(parse_csr(make_csr(key, {exactly64}).der).common_name == exactly64);

  const CsrInfo long_first = parse_csr(make_csr(key, {sixty5, "short.example"}).der);
  CHECK(long_first.common_name.empty());  // never a later name: CN must be a SAN, the first one
  CHECK(long_first.dns_names == std::vector<std::string>{sixty5, "short.example"});
}

TEST_CASE("CSR input validation", "[crypto][csr]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {}), ErrorKind::Invalid);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {""}), ErrorKind::Invalid);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {"a.example", "bad name"}), ErrorKind::Invalid);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {std::string("nul\0byte", 8)}), ErrorKind::Invalid);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {"b\xc3\xbc"
                                      "cher.example"}),
                       ErrorKind::Invalid);
  REQUIRE_CRYPTO_ERROR(make_csr(key, {std::string(254, 'a')}), ErrorKind::Invalid);
}

TEST_CASE("parse_csr rejects garbage and bad signatures", "[crypto][csr]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  Csr csr = make_csr(key, {"a.example"});
  REQUIRE_CRYPTO_ERROR(parse_csr(Bytes{}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(parse_csr(Bytes{0x30, 0x03, 0x02, 0x01, 0x00}), ErrorKind::Parse);
  Bytes truncated(csr.der.begin(), csr.der.end() - 10);
  REQUIRE_CRYPTO_ERROR(parse_csr(truncated), ErrorKind::Parse);
  // Flip a bit inside the signed name: the self-signature no longer verifies.
  Bytes tampered = csr.der;
  const std::string needle = "a.example";
  auto it = std::search(tampered.begin(), tampered.end(), needle.begin(), needle.end());
  REQUIRE(it != tampered.end());
  *it = 'b';
  REQUIRE_CRYPTO_ERROR(parse_csr(tampered), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(parse_csr_pem(key.to_pkcs8_pem()), ErrorKind::Parse);
}
