#include "crypto/key.hpp"

#include <sstream>
#include <type_traits>

#include <catch2/catch.hpp>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "crypto/internal.hpp"
#include "crypto/sign.hpp"
#include "test_util.hpp"

using namespace acme_sidecar::crypto;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

template <typename T, typename = void>
struct is_streamable : std::false_type {};
template <typename T>
struct is_streamable<T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

// Writes a key the way other tools do, for parser tests.
std::string write_pem(EVP_PKEY* key, bool traditional, const EVP_CIPHER* cipher = nullptr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  static char pass[] = "secret";
  int ok = 0;
  if (cipher != nullptr) {
    ok = PEM_write_bio_PKCS8PrivateKey(bio.get(), key, cipher, pass, 6, nullptr, nullptr);
  } else if (traditional) {
    ok = PEM_write_bio_PrivateKey_traditional(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    ok = PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  }
  REQUIRE(ok == 1);
  return detail::bio_contents(bio.get());
}

std::string generate_pem(const char* type, const char* curve_or_null, std::size_t bits = 0) {
  EvpPkeyPtr key(curve_or_null != nullptr ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, curve_or_null)
               : bits != 0               ? EVP_PKEY_Q_keygen(nullptr, nullptr, type, bits)
                                         : EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  REQUIRE(key);
  return write_pem(key.get(), false);
}

}  // namespace

static_assert(!is_streamable<PrivateKey>::value, "private keys must not be printable");

TEST_CASE("key algorithm flag strings round-trip", "[crypto][key]") {
  for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048, KeyAlgorithm::Rsa3072,
                   KeyAlgorithm::Rsa4096}) {
    CHECK(parse_key_algorithm(to_string(alg)) == alg);
  }
  CHECK(to_string(KeyAlgorithm::EcdsaP256) == "ecdsa-p256");
  CHECK(to_string(KeyAlgorithm::Rsa4096) == "rsa-4096");
}

TEST_CASE("unknown key algorithm strings are Config errors naming the accepted values", "[crypto][key]") {
  for (const char* bad : {"", "ECDSA-P256", "ecdsa-p521", "rsa-1024", "rsa", "ed25519", "ecdsa-p256 "}) {
    CAPTURE(bad);
    try {
      (void)parse_key_algorithm(bad);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Config);
      CHECK_THAT(e.message(), Catch::Contains("ecdsa-p256") && Catch::Contains("rsa-4096"));
    }
  }
}

TEST_CASE("every key algorithm: generate, PKCS#8 PEM, parse, same key, sign and verify", "[crypto][key]") {
  const auto alg = GENERATE(KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048,
                            KeyAlgorithm::Rsa3072, KeyAlgorithm::Rsa4096);
  CAPTURE(to_string(alg));
  const PrivateKey key = PrivateKey::generate(alg);
  CHECK(key.algorithm() == alg);

  const std::string pem = key.to_pkcs8_pem();
  CHECK_THAT(pem, Catch::StartsWith("-----BEGIN PRIVATE KEY-----\n"));
  const PrivateKey parsed = PrivateKey::from_pem(pem);
  CHECK(parsed.algorithm() == alg);
  CHECK(parsed.public_key() == key.public_key());
  CHECK(parsed.public_key_pem() == key.public_key_pem());
  CHECK(parsed.to_pkcs8_pem() == pem);

  const PublicKey pub = PublicKey::from_pem(key.public_key_pem());
  CHECK(pub == key.public_key());
  CHECK(pub.algorithm() == alg);
  CHECK(PublicKey::from_der(pub.to_der()) == pub);

  const Bytes sig = sign(parsed, std::string_view("signing input"));
  if (alg == KeyAlgorithm::Rsa2048) CHECK(sig.size() == 256);
  if (alg == KeyAlgorithm::Rsa3072) CHECK(sig.size() == 384);
  if (alg == KeyAlgorithm::Rsa4096) CHECK(sig.size() == 512);
  CHECK(verify(pub, std::string_view("signing input"), sig));
  CHECK_FALSE(verify(pub, std::string_view("signing inpuT"), sig));
  // A different key of the same algorithm does not verify it.
  if (alg == KeyAlgorithm::EcdsaP256 || alg == KeyAlgorithm::EcdsaP384) {
    CHECK_FALSE(verify(PrivateKey::generate(alg).public_key(), std::string_view("signing input"), sig));
  }
}

TEST_CASE("traditional EC and RSA PEM keys parse", "[crypto][key]") {
  for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048}) {
    CAPTURE(to_string(alg));
    const PrivateKey key = PrivateKey::generate(alg);
    const std::string pem = write_pem(key.native(), true);
    const bool ec = alg != KeyAlgorithm::Rsa2048;
    CHECK_THAT(pem, Catch::StartsWith(ec ? "-----BEGIN EC PRIVATE KEY-----" : "-----BEGIN RSA PRIVATE KEY-----"));
    const PrivateKey parsed = PrivateKey::from_pem(pem);
    CHECK(parsed.algorithm() == alg);
    CHECK(parsed.public_key() == key.public_key());
    // Re-encoded as PKCS#8 for Secrets.
    CHECK_THAT(parsed.to_pkcs8_pem(), Catch::StartsWith("-----BEGIN PRIVATE KEY-----"));
  }
}

TEST_CASE("openssl ecparam -genkey output (EC PARAMETERS block first) parses", "[crypto][key]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::string pem = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
                          write_pem(key.native(), true);
  CHECK(PrivateKey::from_pem(pem).public_key() == key.public_key());
}

TEST_CASE("a key PEM surrounded by other text and blocks parses", "[crypto][key]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::string text = "comment line\n" + key.public_key_pem() + "\n" + key.to_pkcs8_pem() + "trailer\n";
  CHECK(PrivateKey::from_pem(text).public_key() == key.public_key());
}

TEST_CASE("unsupported key types are refused with a clear Crypto error", "[crypto][key]") {
  const std::string p521 = generate_pem("EC", "P-521");
  const std::string ed25519 = generate_pem("ED25519", nullptr);
  const std::string rsa1024 = generate_pem("RSA", nullptr, 1024);
  for (const auto* pem : {&p521, &ed25519, &rsa1024}) {
    try {
      (void)PrivateKey::from_pem(*pem);
      FAIL("accepted an unsupported key");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Crypto);
      CHECK_THAT(e.message(), Catch::Contains("unsupported key type"));
      // The message never echoes key material.
      CHECK_THAT(e.what(), !Catch::Contains("MII") && !Catch::Contains("BEGIN"));
    }
  }
}

TEST_CASE("encrypted private keys are refused without prompting", "[crypto][key]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::string pem = write_pem(key.native(), false, EVP_aes_128_cbc());
  CHECK_THAT(pem, Catch::StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(pem), ErrorKind::Crypto);
}

TEST_CASE("a public key or certificate where a private key is expected is a Parse error", "[crypto][key]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(key.public_key_pem()), ErrorKind::Parse);
  const auto ca = acme_sidecar::crypto::test::make_root("Root");
  try {
    (void)PrivateKey::from_pem(ca.cert.to_pem());
    FAIL("accepted a certificate");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Parse);
    CHECK_THAT(e.message(), Catch::Contains("found CERTIFICATE"));
  }
}

TEST_CASE("a tampered private key is refused", "[crypto][key]") {
  // Swap the public point of an EC key (traditional form embeds it) for another key's.
  const PrivateKey a = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey b = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  auto der_of = [](const PrivateKey& k) {
    unsigned char* raw = nullptr;
    const int len = i2d_PrivateKey(k.native(), &raw);
    REQUIRE(len > 0);
    OsslBytesPtr holder(raw);
    return Bytes(raw, raw + len);
  };
  Bytes da = der_of(a);
  const Bytes db = der_of(b);
  REQUIRE(da.size() == db.size());
  // ECPrivateKey: the last 65 bytes are the uncompressed public point.
  std::copy(db.end() - 65, db.end(), da.end() - 65);
  const std::string pem = detail::to_pem("EC PRIVATE KEY", da);
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(pem), ErrorKind::Crypto, ErrorKind::Parse);
}

TEST_CASE("EC keys read through the fast path are the very keys OpenSSL wrote", "[crypto][key]") {
  for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384}) {
    for (bool traditional : {false, true}) {
      CAPTURE(to_string(alg), traditional);
      const PrivateKey key = PrivateKey::generate(alg);
      const PrivateKey parsed = PrivateKey::from_pem(write_pem(key.native(), traditional));
      CHECK(parsed.algorithm() == alg);
      // Same private scalar and public point: the PKCS#8 encodings are byte-identical.
      CHECK(parsed.to_pkcs8_pem() == key.to_pkcs8_pem());
      const Bytes sig = sign(parsed, std::string_view("input"));
      CHECK(verify(key.public_key(), std::string_view("input"), sig));
    }
  }
}

TEST_CASE("PKCS#8 written without OpenSSL's encoder is byte for byte what OpenSSL writes", "[crypto][key]") {
  // 200 keys per curve: scalars with leading zero bytes (1 in 256) and every length edge get covered.
  for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384}) {
    for (int i = 0; i < 200; ++i) {
      const PrivateKey key = PrivateKey::generate(alg);
      const std::string ours = key.to_pkcs8_pem();
      CAPTURE(to_string(alg), i);
      REQUIRE(ours == key.to_pkcs8_pem_openssl());
    }
  }
  // A key whose scalar starts with zero bytes is padded to the field size, as OpenSSL does.
  bool short_scalar_seen = false;
  for (int tries = 0; tries < 5000 && !short_scalar_seen; ++tries) {
    const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    BIGNUM* d = nullptr;
    REQUIRE(EVP_PKEY_get_bn_param(key.native(), "priv", &d) == 1);
    const int bytes = BN_num_bytes(d);
    BN_clear_free(d);
    if (bytes == 32) continue;
    CHECK(key.to_pkcs8_pem() == key.to_pkcs8_pem_openssl());
    CHECK(PrivateKey::from_pem(key.to_pkcs8_pem()).public_key() == key.public_key());
    short_scalar_seen = true;
  }
  CHECK(short_scalar_seen);  // 1 key in 256 has one: missing it 5,000 times is ~3e-9
  // RSA and keys asked to leave out the public point take OpenSSL's path.
  const PrivateKey rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  CHECK(rsa.to_pkcs8_pem() == rsa.to_pkcs8_pem_openssl());
  const PrivateKey ec = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  EvpPkeyPtr copy(EVP_PKEY_dup(ec.native()));
  REQUIRE(copy);
  REQUIRE(EVP_PKEY_set_int_param(copy.get(), "include-public", 0) == 1);
  const PrivateKey without_q = PrivateKey::from_native(copy.get());
  CHECK(without_q.to_pkcs8_pem() == without_q.to_pkcs8_pem_openssl());
  CHECK(without_q.to_pkcs8_pem().size() < ec.to_pkcs8_pem().size());
}

TEST_CASE("an EC key written without its public point still parses", "[crypto][key]") {
  // OpenSSL's encoder option include-public=0 leaves out [1] publicKey; OpenSSL's own reader (the
  // fallback) derives it.
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  EvpPkeyPtr copy(EVP_PKEY_dup(key.native()));
  REQUIRE(copy);
  REQUIRE(EVP_PKEY_set_int_param(copy.get(), "include-public", 0) == 1);
  const std::string pem = write_pem(copy.get(), false);
  CHECK(pem.size() < key.to_pkcs8_pem().size());
  const PrivateKey parsed = PrivateKey::from_pem(pem);
  CHECK(parsed.public_key() == key.public_key());
}

TEST_CASE("a PKCS#8 EC key with a foreign public point is refused", "[crypto][key]") {
  const PrivateKey a = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey b = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  auto der_of = [](const PrivateKey& k) {
    auto blocks = detail::parse_pem_blocks(k.to_pkcs8_pem());
    REQUIRE(blocks.size() == 1);
    return blocks.front().der;
  };
  Bytes da = der_of(a);
  const Bytes db = der_of(b);
  REQUIRE(da.size() == db.size());
  std::copy(db.end() - 65, db.end(), da.end() - 65);  // the point is the last 65 bytes
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(detail::to_pem("PRIVATE KEY", da)), ErrorKind::Crypto, ErrorKind::Parse);
  // Truncated DER is refused too (whichever reader sees it).
  Bytes cut(da.begin(), da.end() - 10);
  REQUIRE_CRYPTO_ERROR(PrivateKey::from_pem(detail::to_pem("PRIVATE KEY", cut)), ErrorKind::Crypto, ErrorKind::Parse);
}

namespace {

// The uncompressed point at the end of a key's SubjectPublicKeyInfo.
Bytes public_point_of(const PrivateKey& key) {
  const Bytes spki = key.public_key().to_der();
  const std::size_t n = key.algorithm() == KeyAlgorithm::EcdsaP256 ? 65 : 97;
  return Bytes(spki.end() - static_cast<std::ptrdiff_t>(n), spki.end());
}

}  // namespace

TEST_CASE("EcKeyVerifier returns the public point exactly when PrivateKey::from_pem accepts the EC key", "[crypto][key]") {
  const EcKeyVerifier verifier;
  for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384}) {
    for (bool traditional : {false, true}) {
      CAPTURE(to_string(alg), traditional);
      const PrivateKey key = PrivateKey::generate(alg);
      const std::string pem = write_pem(key.native(), traditional);
      const auto point = verifier.public_point(pem);
      REQUIRE(point);
      CHECK(point->algorithm == alg);
      CHECK(point->point == public_point_of(key));
      // Every flipped byte of the DER: either refused, or a key from_pem reads with that very point.
      const Bytes der = detail::parse_pem_blocks(pem).front().der;
      const std::string label = traditional ? "EC PRIVATE KEY" : "PRIVATE KEY";
      int wrong = 0, accepted = 0;
      for (std::size_t i = 0; i < der.size(); ++i) {
        for (const std::uint8_t mask : {0x01, 0x80}) {
          Bytes m = der;
          m[i] ^= mask;
          const std::string mutated = detail::to_pem(label, m);
          const auto p = verifier.public_point(mutated);
          if (!p) continue;
          ++accepted;
          try {
            const PrivateKey parsed = PrivateKey::from_pem(mutated);
            if (parsed.algorithm() != p->algorithm || public_point_of(parsed) != p->point) ++wrong;
          } catch (const acme_sidecar::core::Error&) {
            ++wrong;
          }
        }
      }
      CHECK(wrong == 0);
      // Every byte of these keys matters (version, OIDs, lengths, scalar, point): no flip survives.
      CHECK(accepted == 0);
    }
  }
  // Not for the verifier: RSA, encrypted, garbage, a tampered (inconsistent) key.
  CHECK_FALSE(verifier.public_point(PrivateKey::generate(KeyAlgorithm::Rsa2048).to_pkcs8_pem()));
  CHECK_FALSE(verifier.public_point("garbage"));
  CHECK_FALSE(verifier.public_point(""));
  const PrivateKey a = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey b = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  std::string pkcs8 = a.to_pkcs8_pem();
  CHECK_FALSE(verifier.public_point("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n" + pkcs8));
  CHECK_FALSE(verifier.public_point("Proc-Type: 4,ENCRYPTED\n" + pkcs8));
  Bytes da = detail::parse_pem_blocks(write_pem(a.native(), true)).front().der;
  const Bytes db = detail::parse_pem_blocks(write_pem(b.native(), true)).front().der;
  REQUIRE(da.size() == db.size());
  std::copy(db.end() - 65, db.end(), da.end() - 65);  // b's point with a's scalar
  CHECK_FALSE(verifier.public_point(detail::to_pem("EC PRIVATE KEY", da)));
}
