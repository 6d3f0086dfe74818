#pragma once
// Digests, HMAC and the JWS signature primitives (RFC 7515/7518) for the ACME client.
#include <string>
#include <string_view>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"

namespace acme_sidecar::crypto {

Bytes sha256(ByteView data);
inline Bytes sha256(std::string_view data) { return sha256(as_bytes(data)); }
Bytes sha384(ByteView data);
inline Bytes sha384(std::string_view data) { return sha384(as_bytes(data)); }

// HMAC-SHA256 (JWS "HS256", used for ACME External Account Binding). An empty key is allowed by
// HMAC but refused here (Invalid): an EAB key is never empty.
Bytes hmac_sha256(ByteView key, ByteView data);
inline Bytes hmac_sha256(ByteView key, std::string_view data) { return hmac_sha256(key, as_bytes(data)); }

// "ES256" (P-256), "ES384" (P-384) or "RS256" (any RSA size).
std::string_view jws_alg(KeyAlgorithm alg) noexcept;
inline std::string_view jws_alg(const PrivateKey& key) noexcept { return jws_alg(key.algorithm()); }
inline std::string_view jws_alg(const PublicKey& key) noexcept { return jws_alg(key.algorithm()); }

// JWS signature over `data` (the "protected.payload" signing input):
//  ES256/ES384: raw R||S, each left-padded to the curve size (exactly 64 / 96 bytes), not DER;
//  RS256: RSASSA-PKCS1-v1_5 with SHA-256 (modulus-sized).
Bytes sign(const PrivateKey& key, ByteView data);
inline Bytes sign(const PrivateKey& key, std::string_view data) { return sign(key, as_bytes(data)); }

// Checks a JWS signature in the form sign() produces. Wrong length or a bad signature → false
// (never throws for bad signatures).
bool verify(const PublicKey& key, ByteView data, ByteView signature);
inline bool verify(const PublicKey& key, std::string_view data, ByteView signature) {
  return verify(key, as_bytes(data), signature);
}

// Conversions between ECDSA DER (what EVP produces) and JWS raw R||S of 2*size bytes.
// Malformed input or a size that does not fit → Crypto error.
Bytes ecdsa_der_to_raw(ByteView der, std::size_t coordinate_size);
Bytes ecdsa_raw_to_der(ByteView raw);

}  // namespace acme_sidecar::crypto
