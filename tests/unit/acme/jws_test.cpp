#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "acme/jws.hpp"
#include "core/error.hpp"
#include "crypto/encoding.hpp"
#include "crypto/jwk.hpp"
#include "crypto/sign.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;

TEST_CASE("JWS sign/verify round trip for ES256, ES384, RS256", "[acme][jws]") {
  auto alg = GENERATE(crypto::KeyAlgorithm::EcdsaP256, crypto::KeyAlgorithm::EcdsaP384, crypto::KeyAlgorithm::Rsa2048);
  auto key = crypto::PrivateKey::generate(alg);
  SECTION("jwk form (newAccount)") {
    std::string body = jws_sign(key, "", "nonce1", "https://ca/new-acct", R"({"termsOfServiceAgreed":true})");
    JwsMessage m = parse_jws(body);
    CHECK(m.alg == crypto::jws_alg(key));
    CHECK(m.nonce == "nonce1");
    CHECK(m.url == "https://ca/new-acct");
    CHECK(m.kid.empty());
    REQUIRE(m.jwk);
    CHECK(*m.jwk == key.public_key());
    CHECK(m.payload == R"({"termsOfServiceAgreed":true})");
    CHECK(verify_jws(m, key.public_key()));
    if (alg == crypto::KeyAlgorithm::EcdsaP256) CHECK(m.signature.size() == 64);
    if (alg == crypto::KeyAlgorithm::EcdsaP384) CHECK(m.signature.size() == 96);
    // A different key or a tampered payload does not verify.
    CHECK_FALSE(verify_jws(m, crypto::PrivateKey::generate(alg).public_key()));
    m.signing_input += "x";
    CHECK_FALSE(verify_jws(m, key.public_key()));
  }
  SECTION("kid form and POST-as-GET has an empty payload") {
    std::string body = jws_sign(key, "https://ca/acct/1", "n2", "https://ca/order/1", "");
    auto j = nlohmann::json::parse(body);
    CHECK(j["payload"] == "");
    JwsMessage m = parse_jws(body);
    CHECK(m.kid == "https://ca/acct/1");
    CHECK_FALSE(m.jwk);
    CHECK(m.payload.empty());
    CHECK(verify_jws(m, key.public_key()));
    auto header = nlohmann::json::parse(m.protected_json);
    CHECK_FALSE(header.contains("jwk"));
  }
}

TEST_CASE("ES256 verifies the RFC 7515 A.3 example", "[acme][jws]") {
  auto pub = crypto::ec_public_key_from_jwk("P-256", "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                                            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
  std::string input =
      "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
  auto sig = crypto::base64url_decode(
      "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q");
  CHECK(crypto::verify(pub, input, crypto::ByteView(sig)));
}

TEST_CASE("External Account Binding: HS256 over the account JWK", "[acme][jws]") {
  auto key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  const std::string mac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
  std::string eab = eab_jws(key.public_key(), "kid-1", mac, "https://ca/new-acct");
  std::string kid;
  CHECK(verify_eab_jws(eab, mac, kid) == crypto::jwk_json(key.public_key()));
  CHECK(kid == "kid-1");
  auto header = nlohmann::json::parse(parse_jws(eab).protected_json);
  CHECK(header["alg"] == "HS256");
  CHECK(header["url"] == "https://ca/new-acct");
  CHECK_FALSE(header.contains("nonce"));  // RFC 8555 §7.3.4: the inner JWS has no nonce
  CHECK_THROWS_AS(verify_eab_jws(eab, "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH", kid),
                  core::Error);
  CHECK_THROWS_AS(eab_jws(key.public_key(), "kid", "", "u"), core::Error);
  CHECK_THROWS_AS(eab_jws(key.public_key(), "kid", "!!!", "u"), core::Error);
}

TEST_CASE("parse_jws rejects garbage", "[acme][jws]") {
  for (const char* bad : {"", "{}", "[]", R"({"protected":"!!","payload":"","signature":""})",
                          R"({"protected":"e30","payload":1,"signature":""})",
                          R"({"protected":"bm90IGpzb24","payload":"","signature":""})"})
    CHECK_THROWS_AS(parse_jws(bad), core::Error);
}
