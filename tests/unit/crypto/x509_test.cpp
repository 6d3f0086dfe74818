#include "crypto/x509.hpp"

#include <catch2/catch.hpp>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "crypto/csr.hpp"
#include "crypto/mint.hpp"
#include "crypto/sign.hpp"
#include "test_util.hpp"

using namespace acme_sidecar::crypto;
using namespace acme_sidecar::crypto::test;
using acme_sidecar::core::ErrorKind;

TEST_CASE("inspection of a minted leaf", "[crypto][x509]") {
  const TestCa root = make_root("Test Root");
  const TestCa inter = make_intermediate(root, "Test Intermediate");
  const PrivateKey leaf_key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  CertificateSpec spec;
  spec.dns_names = {"WWW.Example.com", "example.com"};
  spec.ip_addresses = {"192.0.2.7", "2001:db8::1"};
  spec.not_before = kNow;
  spec.not_after = kNow + 90 * 24h;
  spec.serial = Bytes{0x00, 0x9a, 0x01};  // leading zero because the next byte has its top bit set
  const Certificate leaf = issue_certificate(inter.key, inter.cert, leaf_key.public_key(), spec);

  CHECK(leaf.not_before() == kNow);
  CHECK(leaf.not_after() == kNow + 90 * 24h);
  CHECK(leaf.dns_names() == std::vector<std::string>{"www.example.com", "example.com"});
  CHECK(leaf.ip_addresses() == std::vector<std::string>{"192.0.2.7", "2001:db8::1"});
  CHECK(leaf.serial_hex() == "9a01");
  CHECK(leaf.serial_bytes() == Bytes{0x00, 0x9a, 0x01});
  CHECK(leaf.subject_cn() == "WWW.Example.com");
  CHECK(leaf.issuer_cn() == "Test Intermediate");
  CHECK_FALSE(leaf.is_ca());
  CHECK(inter.cert.is_ca());
  CHECK(leaf.authority_key_id() == inter.cert.subject_key_id());
  CHECK(leaf.authority_key_id().size() == 20);
  CHECK(ari_cert_id(leaf) == base64url_encode(inter.cert.subject_key_id()) + ".AJoB");

  const std::string fp = leaf.sha256_fingerprint_hex();
  CHECK(fp.size() == 64);
  CHECK(fp == hex_encode(sha256(leaf.to_der())));
  CHECK(leaf.public_key() == leaf_key.public_key());

  // PEM / DER round trips give the same certificate.
  const Certificate again = Certificate::from_pem(leaf.to_pem());
  CHECK(again == leaf);
  CHECK(again.sha256_fingerprint_hex() == fp);
  CHECK(Certificate::from_der(leaf.to_der()) == leaf);
  // The fingerprint straight from PEM (no X.509 decoding) is the same, for a chain too.
  CHECK(leaf_fingerprint_hex(leaf.to_pem() + inter.cert.to_pem()) == fp);
  CHECK_THROWS_AS(leaf_fingerprint_hex(leaf_key.to_pkcs8_pem() + leaf.to_pem()), acme_sidecar::core::Error);
  CHECK_THROWS_AS(leaf_fingerprint_hex("no PEM here"), acme_sidecar::core::Error);
}

TEST_CASE("random serials are positive and 16 bytes", "[crypto][x509]") {
  const TestCa root = make_root("Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Certificate a = issue_certificate(root.key, root.cert, key.public_key(), {"a.example"}, kNow, 24h);
  const Certificate b = issue_certificate(root.key, root.cert, key.public_key(), {"a.example"}, kNow, 24h);
  CHECK(a.serial_bytes().size() == 16);
  CHECK((a.serial_bytes()[0] & 0x80) == 0);
  CHECK(a.serial_hex() != b.serial_hex());
  CHECK(a.serial_hex().size() == 32);
}

TEST_CASE("CN is omitted for long first names and SAN is then critical", "[crypto][x509]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::string long_name = std::string(70, 'a') + ".example";
  const Certificate cert = make_self_signed(key, {long_name, "b.example"}, kNow, kNow + 24h);
  CHECK(cert.subject_cn().empty());
  CHECK(cert.issuer_cn().empty());
  CHECK(cert.dns_names() == std::vector<std::string>{long_name, "b.example"});
}

TEST_CASE("validity after 2049 (GeneralizedTime) reads back exactly", "[crypto][x509]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const TimePoint y2100 = std::chrono::sys_days{std::chrono::year{2100} / 3 / 1} + 12h;
  const Certificate cert = make_self_signed(key, {"a.example"}, kNow, y2100);
  CHECK(cert.not_after() == y2100);
}

TEST_CASE("99991231235959Z (no expiry) saturates instead of overflowing", "[crypto][x509]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Certificate cert = make_self_signed(key, {"a.example"}, kNow, TimePoint::max());
  CHECK(cert.not_after() == TimePoint::max());
  CHECK(cert.not_before() == kNow);
  CHECK(Certificate::from_der(cert.to_der()).not_after() == TimePoint::max());
  CHECK(verify_chain({cert}, {cert.to_pem()}, kNow + 24h * 365 * 100).ok);
}

TEST_CASE("key_matches_certificate detects mismatches across algorithms", "[crypto][x509]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey other = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  const Certificate cert = make_self_signed(key, {"a.example"}, kNow, kNow + 24h);
  CHECK(key_matches_certificate(key, cert));
  CHECK(key_matches_certificate(PrivateKey::from_pem(key.to_pkcs8_pem()), cert));
  CHECK_FALSE(key_matches_certificate(other, cert));
  CHECK_FALSE(key_matches_certificate(rsa, cert));
  const Certificate rsa_cert = make_self_signed(rsa, {"a.example"}, kNow, kNow + 24h);
  CHECK(key_matches_certificate(rsa, rsa_cert));
  CHECK_FALSE(key_matches_certificate(key, rsa_cert));
}

TEST_CASE("parse_pem_chain keeps order and to_pem_chain round-trips", "[crypto][x509]") {
  const TestCa root = make_root("Root");
  const TestCa inter = make_intermediate(root, "Inter");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Certificate leaf = issue_certificate(inter.key, inter.cert, key.public_key(), {"a.example"}, kNow, 24h);
  const std::string text = "leading text\n" + leaf.to_pem() + "\r\n between \r\n" + inter.cert.to_pem();
  const auto chain = parse_pem_chain(text);
  REQUIRE(chain.size() == 2);
  CHECK(chain[0] == leaf);
  CHECK(chain[1] == inter.cert);
  CHECK(parse_pem_chain(to_pem_chain(chain)).size() == 2);
  CHECK(to_pem_chain(chain) == leaf.to_pem() + inter.cert.to_pem());
  // CRLF line endings (Windows-edited Secrets) parse too.
  std::string crlf;
  for (char c : leaf.to_pem()) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  CHECK(Certificate::from_pem(crlf) == leaf);
}

TEST_CASE("verify_chain: ok, wrong root, expired, not yet valid, missing intermediate", "[crypto][x509]") {
  const TestCa root = make_root("Root", KeyAlgorithm::EcdsaP384);
  const TestCa inter = make_intermediate(root, "Inter");
  const TestCa other_root = make_root("Other Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  const Certificate leaf = issue_certificate(inter.key, inter.cert, key.public_key(), {"a.example"}, kNow, 90 * 24h);
  const std::vector<Certificate> chain{leaf, inter.cert};

  const VerifyResult ok = verify_chain(chain, {root.cert.to_pem()}, kNow + 1h);
  CHECK(ok.ok);
  CHECK(ok.error.empty());
  // Several roots in one bundle, and several bundles.
  CHECK(verify_chain(chain, {other_root.cert.to_pem() + root.cert.to_pem()}, kNow + 1h));
  CHECK(verify_chain(chain, {other_root.cert.to_pem(), root.cert.to_pem()}, kNow + 1h));

  const VerifyResult wrong = verify_chain(chain, {other_root.cert.to_pem()}, kNow + 1h);
  CHECK_FALSE(wrong.ok);
  CHECK_THAT(wrong.error, Catch::Contains("issuer certificate"));

  const VerifyResult expired = verify_chain(chain, {root.cert.to_pem()}, kNow + 91 * 24h);
  CHECK_FALSE(expired.ok);
  CHECK_THAT(expired.error, Catch::Contains("expired"));

  const VerifyResult early = verify_chain(chain, {root.cert.to_pem()}, kNow - 1h);
  CHECK_FALSE(early.ok);
  CHECK_THAT(early.error, Catch::Contains("not yet valid"));

  CHECK_FALSE(verify_chain({leaf}, {root.cert.to_pem()}, kNow + 1h).ok);
  CHECK_FALSE(verify_chain({}, {root.cert.to_pem()}, kNow).ok);
  CHECK_FALSE(verify_chain(chain, {}, kNow).ok);
  REQUIRE_CRYPTO_ERROR(verify_chain(chain, {"not a pem"}, kNow), ErrorKind::Parse);

  // A leaf signed by a key that is not the intermediate's (same issuer name): signature failure.
  const TestCa impostor = make_intermediate(other_root, "Inter");
  const Certificate forged = issue_certificate(impostor.key, impostor.cert, key.public_key(), {"a.example"}, kNow, 24h);
  CHECK_FALSE(verify_chain({forged, inter.cert}, {root.cert.to_pem()}, kNow + 1h).ok);

  // Single links.
  CHECK(issued_by(leaf, inter.cert));
  CHECK(issued_by(inter.cert, root.cert));
  CHECK(issued_by(root.cert, root.cert));
  CHECK_FALSE(issued_by(leaf, root.cert));
  CHECK_FALSE(issued_by(forged, inter.cert));  // same issuer name, wrong key
  CHECK(self_issued(root.cert));
  CHECK_FALSE(self_issued(leaf));
}

TEST_CASE("issue_certificate from a CSR takes its key and names", "[crypto][x509][mint]") {
  const TestCa root = make_root("Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP384);
  const Csr csr = make_csr(key, {"b.example", "a.example"});
  const Certificate cert = issue_certificate(root.key, root.cert, csr.der, kNow, 7 * 24h);
  CHECK(key_matches_certificate(key, cert));
  CHECK(cert.dns_names() == std::vector<std::string>{"b.example", "a.example"});
  CHECK(cert.not_after() - cert.not_before() == 7 * 24h);
  CHECK(verify_chain({cert}, {root.cert.to_pem()}, kNow + 1h));
}

TEST_CASE("minting refuses a CA key that does not match and bad specs", "[crypto][mint]") {
  const TestCa root = make_root("Root");
  const PrivateKey other = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  REQUIRE_CRYPTO_ERROR(issue_certificate(other, root.cert, other.public_key(), {"a.example"}, kNow, 24h),
                       ErrorKind::Crypto);
  CertificateSpec spec;
  spec.dns_names = {"a.example"};
  spec.not_before = kNow;
  spec.not_after = kNow;
  REQUIRE_CRYPTO_ERROR(make_self_signed(other, spec), ErrorKind::Invalid);
  spec.not_after = kNow + 1h;
  spec.ip_addresses = {"999.1.1.1"};
  REQUIRE_CRYPTO_ERROR(make_self_signed(other, spec), ErrorKind::Invalid);
  spec.ip_addresses = {};
  spec.omit_key_identifiers = true;
  const Certificate bare = make_self_signed(other, spec);
  CHECK(bare.authority_key_id().empty());
  REQUIRE_CRYPTO_ERROR(ari_cert_id(bare), ErrorKind::Crypto);
}

TEST_CASE("minting many leaves from one CA works (benchmark path)", "[crypto][mint]") {
  const TestCa root = make_root("Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PublicKey pub = key.public_key();
  std::vector<std::string> fingerprints;
  for (int i = 0; i < 200; ++i) {
    const Certificate c = issue_certificate(root.key, root.cert, pub, {"h" + std::to_string(i) + ".example"}, kNow, 24h);
    fingerprints.push_back(c.sha256_fingerprint_hex());
  }
  std::sort(fingerprints.begin(), fingerprints.end());
  CHECK(std::unique(fingerprints.begin(), fingerprints.end()) == fingerprints.end());
}

TEST_CASE("odd but parseable certificates: negative serial, no SAN, unsupported key type", "[crypto][x509]") {
  const TestCa root = make_root("Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);

  CertificateSpec spec;
  spec.common_name = "only-cn";
  spec.not_before = kNow;
  spec.not_after = kNow + 24h;
  spec.serial = Bytes{0xff};  // INTEGER -1: not allowed by RFC 5280, seen in the wild
  const Certificate odd = issue_certificate(root.key, root.cert, key.public_key(), spec);
  CHECK(odd.serial_bytes() == Bytes{0xff});
  CHECK(odd.serial_hex() == "-1");
  CHECK(odd.dns_names().empty());
  CHECK(odd.ip_addresses().empty());
  CHECK(odd.subject_cn() == "only-cn");

  // An Ed25519 leaf (built by hand: the minting API only takes supported keys).
  EvpPkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  REQUIRE(ed);
  X509Ptr x(X509_new());
  REQUIRE(X509_set_version(x.get(), X509_VERSION_3) == 1);
  REQUIRE(ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 7) == 1);
  REQUIRE(X509_gmtime_adj(X509_getm_notBefore(x.get()), 0) != nullptr);
  REQUIRE(X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600) != nullptr);
  REQUIRE(X509_set_issuer_name(x.get(), X509_get_subject_name(root.cert.native())) == 1);
  REQUIRE(X509_set_pubkey(x.get(), ed.get()) == 1);
  REQUIRE(X509_sign(x.get(), root.key.native(), EVP_sha256()) > 0);
  const Certificate ed_cert = Certificate::from_der(Certificate::from_native(x.get()).to_der());
  CHECK(ed_cert.serial_hex() == "7");
  CHECK_FALSE(key_matches_certificate(key, ed_cert));
  REQUIRE_CRYPTO_ERROR(ed_cert.public_key(), ErrorKind::Crypto);
  CHECK(issued_by(ed_cert, root.cert));
}
