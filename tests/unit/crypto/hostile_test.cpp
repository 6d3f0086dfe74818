// Hostile input: every parser must answer garbage with a clear core::Error, never a crash.
#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "crypto/csr.hpp"
#include "crypto/key.hpp"
#include "crypto/sign.hpp"
#include "crypto/x509.hpp"
#include "test_util.hpp"

using namespace acme_sidecar::crypto;
using namespace acme_sidecar::crypto::test;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

// Every inspection accessor, to make sure none of them crashes on odd certificates.
void inspect_all(const Certificate& c) {
  (void)c.dns_names();
  (void)c.ip_addresses();
  (void)c.serial_hex();
  (void)c.serial_bytes();
  (void)c.issuer_cn();
  (void)c.subject_cn();
  (void)c.authority_key_id();
  (void)c.subject_key_id();
  (void)c.is_ca();
  (void)c.sha256_fingerprint_hex();
  (void)c.to_pem();
  try {
    (void)c.not_before();
    (void)c.not_after();
    (void)c.public_key();
  } catch (const Error&) {
  }
}

}  // namespace

TEST_CASE("empty and whitespace input", "[crypto][hostile]") {
  for (std::string_view text : {std::string_view(""), std::string_view(" \n\t"), std::string_view("\0\0", 2)}) {
    REQUIRE_CRYPTO_ERROR(Certificate::from_pem(text), ErrorKind::Parse);
    REQUIRE_CRYPTO_ERROR(parse_pem_chain(text), ErrorKind::Parse);
    REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(text), ErrorKind::Parse);
    REQUIRE_CRYPTO_ERROR(PublicKey::from_pem(text), ErrorKind::Parse);
    REQUIRE_CRYPTO_ERROR(parse_csr_pem(text), ErrorKind::Parse);
  }
  REQUIRE_CRYPTO_ERROR(Certificate::from_der(Bytes{}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(PublicKey::from_der(Bytes{}), ErrorKind::Parse);
}

TEST_CASE("truncated PEM", "[crypto][hostile]") {
  const TestCa root = make_root("Root");
  const std::string pem = root.cert.to_pem();
  const std::string key_pem = root.key.to_pkcs8_pem();
  // Cut at many positions: never a crash, always a Parse error.
  for (std::size_t cut = 0; cut + 1 < pem.size(); cut += 7) {
    CAPTURE(cut);
    const std::string part = pem.substr(0, cut);
    REQUIRE_CRYPTO_ERROR(Certificate::from_pem(part), ErrorKind::Parse);
    // A chain whose second block is cut (text before a complete BEGIN line is just ignored text).
    if (part.find("-----BEGIN CERTIFICATE-----") != std::string::npos) {
      REQUIRE_CRYPTO_ERROR(parse_pem_chain(root.cert.to_pem() + part), ErrorKind::Parse);
    }
  }
  for (std::size_t cut = 0; cut < key_pem.size(); cut += 13) {
    CAPTURE(cut);
    REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(key_pem.substr(0, cut)), ErrorKind::Parse, ErrorKind::Crypto);
  }
  // Body lines removed but BEGIN/END intact.
  const std::size_t first_nl = pem.find('\n');
  const std::string missing_line = pem.substr(0, first_nl + 1) + pem.substr(first_nl + 66);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem(missing_line), ErrorKind::Parse);
}

TEST_CASE("garbage DER and garbage base64 bodies", "[crypto][hostile]") {
  REQUIRE_CRYPTO_ERROR(Certificate::from_der(as_bytes("hello world")), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_der(Bytes{0x30}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_der(Bytes{0x30, 0x82, 0xff, 0xff, 0x00}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
                       ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"),
                       ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
                       ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem("-----BEGIN CERTIFICATE-----\nMIIB\n-----END OTHER-----\n"),
                       ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem("-----BEGIN CERTIFICATE"), ErrorKind::Parse);
  // Trailing bytes after a valid DER certificate.
  const TestCa root = make_root("Root");
  Bytes der = root.cert.to_der();
  der.push_back(0);
  REQUIRE_CRYPTO_ERROR(Certificate::from_der(der), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
                       ErrorKind::Parse, ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
                       ErrorKind::Parse);
}

TEST_CASE("PEM of the wrong type and a private key where a certificate is expected", "[crypto][hostile]") {
  const TestCa root = make_root("Root");
  const std::string key_pem = root.key.to_pkcs8_pem();
  for (const auto& [text, found] : std::vector<std::pair<std::string, std::string>>{
           {key_pem, "PRIVATE KEY"},
           {root.key.public_key_pem(), "PUBLIC KEY"},
           {make_csr(root.key, {"a.example"}).pem, "CERTIFICATE REQUEST"}}) {
    for (auto parse : {+[](const std::string& t) { (void)Certificate::from_pem(t); },
                       +[](const std::string& t) { (void)parse_pem_chain(t); }}) {
      try {
        parse(text);
        FAIL("accepted " << found);
      } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Parse);
        CHECK_THAT(e.message(), Catch::Contains("found " + found));
        // A key handed in by mistake is never echoed back.
        CHECK_THAT(e.what(), !Catch::Contains(key_pem.substr(28, 40)));
      }
    }
  }
  // A key block inside a certificate bundle is refused too (tls.crt must not carry keys).
  REQUIRE_CRYPTO_ERROR(parse_pem_chain(root.cert.to_pem() + key_pem), ErrorKind::Parse);
  // Two certificates where one is expected.
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem(root.cert.to_pem() + root.cert.to_pem()), ErrorKind::Parse);
  // A certificate where a public key is expected.
  REQUIRE_CRYPTO_ERROR(PublicKey::from_pem(root.cert.to_pem()), ErrorKind::Parse);
  // A key of an unsupported type inside a certificate: parsing works, public_key() explains.
}

TEST_CASE("PEM with encryption headers is refused", "[crypto][hostile]") {
  const std::string legacy =
      "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END CERTIFICATE-----\n";
  REQUIRE_CRYPTO_ERROR(Certificate::from_pem(legacy), ErrorKind::Parse);
  const std::string key = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
                          "00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(key), ErrorKind::Crypto);
}

TEST_CASE("mutated certificate DER never crashes the parser or inspection", "[crypto][hostile]") {
  const TestCa root = make_root("Root");
  const TestCa inter = make_intermediate(root, "Inter");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  CertificateSpec spec;
  spec.dns_names = {"a.example", "b.example"};
  spec.ip_addresses = {"192.0.2.1"};
  spec.not_before = kNow;
  spec.not_after = kNow + 24h;
  const Bytes der = issue_certificate(inter.key, inter.cert, key.public_key(), spec).to_der();
  std::mt19937 rng(12345);  // fixed seed: reproducible
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    Bytes m = der;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const std::size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
        case 1: m[at] = static_cast<std::uint8_t>(rng()); break;
        default: m.resize(at + 1); break;
      }
    }
    try {
      const Certificate c = Certificate::from_der(m);
      ++parsed;
      inspect_all(c);
      (void)key_matches_certificate(key, c);
      (void)verify_chain({c, inter.cert}, {root.cert.to_pem()}, kNow + 1h);
    } catch (const Error& e) {
      CHECK_FALSE(e.message().empty());
    }
  }
  CHECK(parsed > 0);  // some mutations (e.g. in the signature) still parse: inspection ran on them
}

TEST_CASE("PEM labels must be short and printable", "[crypto][hostile]") {
  const std::string long_label(200, 'A');
  const std::string text = "-----BEGIN " + long_label + "-----\nAAAA\n-----END " + long_label + "-----\n";
  try {
    (void)parse_pem_chain(text);
    FAIL("accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Parse);
    CHECK_THAT(e.what(), !Catch::Contains(long_label));
  }
  REQUIRE_CRYPTO_ERROR(parse_pem_chain(std::string("-----BEGIN CERT\x01-----\nAAAA\n-----END CERT\x01-----\n")),
                       ErrorKind::Parse);
}

TEST_CASE("shared keys and certificates are safe to use from several threads", "[crypto][threads]") {
  const TestCa root = make_root("Root");
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Certificate leaf = issue_certificate(root.key, root.cert, key.public_key(), {"a.example"}, kNow, 24h);
  const std::string pem = leaf.to_pem();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string input = "t" + std::to_string(t) + "-" + std::to_string(i);
        const Bytes sig = sign(key, input);
        if (!verify(key.public_key(), input, sig)) ++failures;
        if (!key_matches_certificate(key, leaf)) ++failures;
        if (Certificate::from_pem(pem).dns_names() != std::vector<std::string>{"a.example"}) ++failures;
        if (!verify_chain({leaf}, {root.cert.to_pem()}, kNow + 1h)) ++failures;
        if (issue_certificate(root.key, root.cert, key.public_key(), {input + ".example"}, kNow, 24h).dns_names().size() != 1) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures.load() == 0);
}

TEST_CASE("a certificate with a malformed validity time is refused at parse time", "[crypto][hostile]") {
  const TestCa root = make_root("Root");
  Bytes der = root.cert.to_der();
  // notBefore is the first UTCTime (tag 0x17, 13 bytes "YYMMDDHHMMSSZ"): break its month.
  const Bytes tag{0x17, 0x0d};
  auto it = std::search(der.begin(), der.end(), tag.begin(), tag.end());
  REQUIRE(it != der.end());
  *(it + 2 + 2) = '9';  // month "9x"
  *(it + 2 + 3) = '9';
  try {
    (void)Certificate::from_der(der);
    FAIL("accepted month 99");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Parse);
    CHECK_THAT(e.message(), Catch::Contains("validity"));
  }
}
