#pragma once
// Byte encodings used by ACME/JWS and Kubernetes: base64url without padding (RFC 4648 §5, as JWS
// requires), standard base64 (RFC 4648 §4, with padding), and lower-case hex.
// Decoders throw core::Error(ErrorKind::Parse) with a clear message on malformed input.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace acme_sidecar::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// Views text as bytes without copying (the string must outlive the view).
inline ByteView as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string to_string(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// RFC 4648 §5 alphabet (-_), never padded.
std::string base64url_encode(ByteView data);
inline std::string base64url_encode(std::string_view data) { return base64url_encode(as_bytes(data)); }
// Rejects '=' padding, whitespace, characters outside the alphabet, impossible lengths (len % 4 == 1)
// and non-zero trailing bits (non-canonical encodings).
Bytes base64url_decode(std::string_view text);

// RFC 4648 §4 alphabet (+/), padded with '='.
std::string base64_encode(ByteView data);
inline std::string base64_encode(std::string_view data) { return base64_encode(as_bytes(data)); }
// Requires correct padding; ASCII whitespace (line breaks in PEM bodies or Secrets) is skipped.
Bytes base64_decode(std::string_view text);

// Lower-case, no separators.
std::string hex_encode(ByteView data);
inline std::string hex_encode(std::string_view data) { return hex_encode(as_bytes(data)); }
// Accepts upper and lower case; odd length or non-hex characters → Parse error.
Bytes hex_decode(std::string_view text);

}  // namespace acme_sidecar::crypto
