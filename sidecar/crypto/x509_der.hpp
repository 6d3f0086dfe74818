#pragma once
// A small, strict X.509 DER reader: the facts the certificate inspector needs, without OpenSSL's
// decoders. OpenSSL 3.0's d2i_X509 always decodes the public key through its provider decoders
// (~0.13 ms per certificate, serialised on their locks), which bounded start-up with 10,000 Secrets.
//
// It accepts only a strict subset of what OpenSSL accepts: DER (definite, minimal lengths), v3, the
// usual extension shapes, printable-ASCII names, UTCTime / GeneralizedTime in their "Z" forms. Anything
// else throws core::Error(Parse) and the caller takes the OpenSSL path, so odd encodings behave as before.
// The key itself is not validated (an EC point may lie off the curve): callers use public_key_matches,
// which only says yes for the public half of a private key OpenSSL has already checked.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::crypto {

struct CertificateSummary {
  TimePoint not_before{};  // saturated like Certificate::not_before()
  TimePoint not_after{};
  std::vector<std::string> dns_names;     // lower-cased, in certificate order
  std::vector<std::string> ip_addresses;  // text form, as Certificate::ip_addresses()
  std::string subject_cn;                 // first CN, "" when absent
  std::string issuer_cn;
  Bytes serial;            // DER INTEGER content octets (Certificate::serial_bytes())
  Bytes authority_key_id;  // keyIdentifier, empty when absent
  Bytes sha256;            // over the whole DER (Certificate::sha256_fingerprint_hex's bytes)
  // The subject public key when it has one of the supported shapes (KeyAlgorithm), else nullopt.
  std::optional<KeyAlgorithm> key_algorithm;
  Bytes ec_point;     // uncompressed 04||X||Y (EC)
  Bytes rsa_modulus;  // magnitude, no leading zero (RSA)
  Bytes rsa_exponent;
};

// One complete DER certificate, nothing trailing. Parse error for anything outside the subset.
CertificateSummary read_certificate_der(ByteView der);
// Every block of a PEM chain (leaf first); every block must be a CERTIFICATE the reader accepts.
std::vector<CertificateSummary> read_certificate_pem_chain(std::string_view pem);
// True when the summary's public key is `key`'s public half (same curve and point, or same n and e).
bool public_key_matches(const PrivateKey& key, const CertificateSummary& cert);

}  // namespace acme_sidecar::crypto
