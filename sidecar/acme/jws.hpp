#pragma once
// JWS in flattened JSON serialization (RFC 7515 §7.2.2) as RFC 8555 §6.2 wants it: protected header
// {alg, jwk|kid, nonce, url}, payload (empty string for POST-as-GET), ES256/ES384 raw R||S or RS256.
// Also External Account Binding (RFC 8555 §7.3.4) and a parser/verifier for tests and the CA stand-in.
#include <optional>
#include <string>
#include <string_view>

#include "crypto/key.hpp"

namespace acme_sidecar::acme {

// Signs `payload` (raw JSON text; "" means POST-as-GET). When `kid` is empty the public key is embedded
// as "jwk" (newAccount, revocation by certificate key), otherwise "kid" is used. Returns the JSON body.
std::string jws_sign(const crypto::PrivateKey& key, std::string_view kid, std::string_view nonce, std::string_view url,
                     std::string_view payload);

// The EAB inner JWS: HS256 over the account's public JWK, protected {alg:"HS256", kid:eab_kid, url}.
// `hmac_key_b64url` is the base64url HMAC key as CAs hand it out. Returns the JSON object text.
std::string eab_jws(const crypto::PublicKey& account_key, std::string_view eab_kid, std::string_view hmac_key_b64url,
                    std::string_view url);

// A decoded flattened JWS (for tests and the CA stand-in). Throws core::Error(Parse) on malformed input.
struct JwsMessage {
  std::string protected_json;  // decoded protected header
  std::string payload;         // decoded payload ("" for POST-as-GET)
  std::string signing_input;   // "protected.payload" as sent (base64url parts)
  std::string signature;       // decoded signature bytes
  std::string alg, kid, nonce, url;
  std::optional<crypto::PublicKey> jwk;  // when the header carried "jwk"
};
JwsMessage parse_jws(std::string_view body);
bool verify_jws(const JwsMessage& message, const crypto::PublicKey& key);
// Checks an EAB inner JWS against the HMAC key; returns the account JWK JSON it binds, or throws.
std::string verify_eab_jws(std::string_view eab_json, std::string_view hmac_key_b64url, std::string& eab_kid_out);

}  // namespace acme_sidecar::acme
