#include "crypto/sign.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "crypto/jwk.hpp"
#include "test_util.hpp"

using namespace acme_sidecar::crypto;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

// RFC 7638 §3.1 example key.
constexpr const char* kRfc7638N =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknj"
    "hMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQ"
    "vRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzK"
    "nqDKgw";

// RFC 7515 Appendix A.3 (ES256).
constexpr const char* kA3X = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
constexpr const char* kA3Y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
constexpr const char* kA3Input =
    "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr const char* kA3Sig = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// RFC 7515 Appendix A.2 (RS256): public key and signature over the same input as A.3's payload.
constexpr const char* kA2N =
    "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
    "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
    "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
constexpr const char* kA2Input =
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr const char* kA2Sig =
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1d"
    "nZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDw"
    "usC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

}  // namespace

TEST_CASE("RFC 7515 A.2: the published RS256 signature verifies", "[crypto][jws]") {
  const PublicKey key = rsa_public_key_from_jwk(kA2N, "AQAB");
  CHECK(jws_alg(key) == "RS256");
  const Bytes sig = base64url_decode(kA2Sig);
  REQUIRE(sig.size() == 256);
  CHECK(verify(key, std::string_view(kA2Input), sig));
  CHECK_FALSE(verify(key, std::string_view(kA3Input), sig));
}

TEST_CASE("RFC 7638 §3.1: thumbprint of the example RSA key", "[crypto][jwk]") {
  const PublicKey key = rsa_public_key_from_jwk(kRfc7638N, "AQAB");
  CHECK(jwk_json(key) == std::string(R"({"e":"AQAB","kty":"RSA","n":")") + kRfc7638N + R"("})");
  CHECK(jwk_thumbprint(key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

TEST_CASE("EC JWK members are canonical and fixed-width", "[crypto][jwk]") {
  const PublicKey a3 = ec_public_key_from_jwk("P-256", kA3X, kA3Y);
  CHECK(jwk_json(a3) == std::string(R"({"crv":"P-256","kty":"EC","x":")") + kA3X + R"(","y":")" + kA3Y + R"("})");
  for (int i = 0; i < 20; ++i) {  // coordinates with leading zero bytes must still be 32/48 bytes
    for (auto alg : {KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384}) {
      const PrivateKey key = PrivateKey::generate(alg);
      const std::string json = jwk_json(key);
      const std::size_t b64len = alg == KeyAlgorithm::EcdsaP256 ? 43 : 64;
      const std::string crv = alg == KeyAlgorithm::EcdsaP256 ? "P-256" : "P-384";
      REQUIRE(json.size() == std::string(R"({"crv":"","kty":"EC","x":"","y":""})").size() + crv.size() + 2 * b64len);
      CHECK_THAT(json, Catch::StartsWith(R"({"crv":")" + crv + R"(","kty":"EC","x":")"));
      CHECK(jwk_thumbprint(key).size() == 43);
      // The JWK members rebuild the same public key.
      const std::size_t x_at = json.find(R"("x":")") + 5;
      const std::size_t y_at = json.find(R"("y":")") + 5;
      const PublicKey rebuilt = ec_public_key_from_jwk(crv, json.substr(x_at, b64len), json.substr(y_at, b64len));
      CHECK(rebuilt == key.public_key());
    }
  }
}

TEST_CASE("RSA JWK has no leading zero bytes and rebuilds the key", "[crypto][jwk]") {
  const PrivateKey key = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  const std::string json = jwk_json(key);
  CHECK_THAT(json, Catch::StartsWith(R"({"e":"AQAB","kty":"RSA","n":")"));
  const std::string n = json.substr(json.find(R"("n":")") + 5, 342);
  CHECK(base64url_decode(n).size() == 256);
  CHECK(base64url_decode(n)[0] != 0);
  CHECK(rsa_public_key_from_jwk(n, "AQAB") == key.public_key());
}

TEST_CASE("bad JWK members are rejected", "[crypto][jwk]") {
  REQUIRE_CRYPTO_ERROR(ec_public_key_from_jwk("P-521", kA3X, kA3Y), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(ec_public_key_from_jwk("P-256", "", kA3Y), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(ec_public_key_from_jwk("P-256", kA3Y, kA3Y), ErrorKind::Crypto);  // not on the curve
  REQUIRE_CRYPTO_ERROR(ec_public_key_from_jwk("P-256", "AQAB", kA3Y), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(rsa_public_key_from_jwk("AQAB", "AQAB"), ErrorKind::Crypto);  // tiny modulus
  REQUIRE_CRYPTO_ERROR(rsa_public_key_from_jwk("!!", "AQAB"), ErrorKind::Parse);
}

TEST_CASE("RFC 7515 A.3: the published ES256 signature verifies", "[crypto][jws]") {
  const PublicKey key = ec_public_key_from_jwk("P-256", kA3X, kA3Y);
  const Bytes sig = base64url_decode(kA3Sig);
  REQUIRE(sig.size() == 64);
  CHECK(jws_alg(key) == "ES256");
  CHECK(verify(key, std::string_view(kA3Input), sig));
  Bytes flipped = sig;
  flipped[10] ^= 1;
  CHECK_FALSE(verify(key, std::string_view(kA3Input), flipped));
  CHECK_FALSE(verify(key, std::string_view(kA3Input), ByteView(sig).first(63)));
  CHECK_FALSE(verify(key, std::string_view(kA3Input), Bytes{}));
}

TEST_CASE("JWS signatures: sizes and algorithms", "[crypto][jws]") {
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey p384 = PrivateKey::generate(KeyAlgorithm::EcdsaP384);
  const PrivateKey rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  CHECK(jws_alg(p256) == "ES256");
  CHECK(jws_alg(p384) == "ES384");
  CHECK(jws_alg(rsa) == "RS256");
  CHECK(jws_alg(KeyAlgorithm::Rsa4096) == "RS256");
  for (int i = 0; i < 50; ++i) {  // R or S with leading zeros must still give fixed widths
    const std::string input = "input-" + std::to_string(i);
    const Bytes s256 = sign(p256, input);
    const Bytes s384 = sign(p384, input);
    REQUIRE(s256.size() == 64);
    REQUIRE(s384.size() == 96);
    CHECK(verify(p256.public_key(), input, s256));
    CHECK(verify(p384.public_key(), input, s384));
    CHECK_FALSE(verify(p384.public_key(), input, s256));
  }
  const Bytes rs = sign(rsa, std::string_view("x"));
  CHECK(rs.size() == 256);
  CHECK(sign(rsa, std::string_view("x")) == rs);  // PKCS#1 v1.5 is deterministic
  CHECK(verify(rsa.public_key(), std::string_view("x"), rs));
  CHECK_FALSE(verify(rsa.public_key(), std::string_view("y"), rs));
  CHECK_FALSE(verify(rsa.public_key(), std::string_view("x"), ByteView(rs).first(255)));
}

TEST_CASE("ECDSA DER <-> raw conversion", "[crypto][jws]") {
  // SEQUENCE { INTEGER 1, INTEGER 0x80 (needs a leading zero in DER) }
  const Bytes der{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0x80};
  const Bytes raw = ecdsa_der_to_raw(der, 32);
  REQUIRE(raw.size() == 64);
  CHECK(raw[31] == 0x01);
  CHECK(raw[63] == 0x80);
  CHECK(ecdsa_raw_to_der(raw) == der);
  REQUIRE_CRYPTO_ERROR(ecdsa_der_to_raw(Bytes{0x30, 0x00}, 32), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(ecdsa_der_to_raw(Bytes{0x30}, 32), ErrorKind::Crypto);
  Bytes trailing = der;
  trailing.push_back(0);
  REQUIRE_CRYPTO_ERROR(ecdsa_der_to_raw(trailing, 32), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(ecdsa_der_to_raw(der, 0), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(ecdsa_raw_to_der(Bytes{1, 2, 3}), ErrorKind::Crypto);
  REQUIRE_CRYPTO_ERROR(ecdsa_raw_to_der(Bytes{}), ErrorKind::Crypto);
}

TEST_CASE("digests and HMAC match published vectors", "[crypto][digest]") {
  CHECK(hex_encode(sha256(std::string_view("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_encode(sha384(std::string_view("abc"))) ==
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
  // RFC 4231 test case 2.
  CHECK(hex_encode(hmac_sha256(as_bytes("Jefe"), std::string_view("what do ya want for nothing?"))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  REQUIRE_CRYPTO_ERROR(hmac_sha256(Bytes{}, std::string_view("x")), ErrorKind::Invalid);
}

TEST_CASE("JWS signing reuses initialised contexts across calls, copies and threads", "[crypto][jws]") {
  // RS256 is deterministic: the pooled path must give exactly what a fresh EVP_DigestSign gives.
  const PrivateKey rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048);
  EvpMdCtxPtr md_ctx(EVP_MD_CTX_new());
  REQUIRE(EVP_DigestSignInit(md_ctx.get(), nullptr, EVP_sha256(), nullptr, rsa.native()) == 1);
  Bytes reference(256);
  std::size_t len = reference.size();
  const std::string input = "payload.protected";
  REQUIRE(EVP_DigestSign(md_ctx.get(), reference.data(), &len,
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1);
  const PrivateKey rsa_copy = rsa;  // shares the key and its contexts
  for (int i = 0; i < 3; ++i) {
    CHECK(sign(rsa, input) == reference);
    CHECK(sign(rsa_copy, input) == reference);
  }

  // Several threads at once on one key: every signature verifies (no context is shared mid-use).
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const std::string msg = std::to_string(t) + "/" + std::to_string(i);
        if (verify(p256.public_key(), msg, sign(p256, msg))) ++good;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(good == 200);
}
