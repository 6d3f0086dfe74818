#pragma once
// JSON Web Keys (RFC 7517/7518) and thumbprints (RFC 7638) for ACME account keys and key
// authorizations (token "." thumbprint).
#include <string>

#include "crypto/key.hpp"

namespace acme_sidecar::crypto {

// Canonical public JWK: only the required members, lexicographic order, no whitespace (RFC 7638 §3):
//   EC:  {"crv":"P-256","kty":"EC","x":"…","y":"…"}   (coordinates left-padded to the curve size)
//   RSA: {"e":"AQAB","kty":"RSA","n":"…"}              (big-endian, no leading zero bytes)
// This string is also valid as the "jwk" member of a JWS protected header.
std::string jwk_json(const PublicKey& key);
inline std::string jwk_json(const PrivateKey& key) { return jwk_json(key.public_key()); }

// base64url(SHA-256(jwk_json(key))), 43 characters.
std::string jwk_thumbprint(const PublicKey& key);
inline std::string jwk_thumbprint(const PrivateKey& key) { return jwk_thumbprint(key.public_key()); }

// Builds a public key from JWK members (base64url big-endian values). Used by tests and the
// hostile-CA stand-in to check JWS; bad input → Parse/Crypto error.
PublicKey rsa_public_key_from_jwk(std::string_view n_b64url, std::string_view e_b64url);
PublicKey ec_public_key_from_jwk(std::string_view crv, std::string_view x_b64url, std::string_view y_b64url);

}  // namespace acme_sidecar::crypto
