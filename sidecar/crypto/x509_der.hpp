#pragma once
// A small, strict X.509 DER reader: the facts the certificate inspector needs, without OpenSSL's
// decoders. OpenSSL 3.0's d2i_X509 always decodes the public key through its provider decoders
// (~0.13 ms per certificate, serialised on their locks), which bounded start-up with 10,000 Secrets.
//
// It accepts only a strict subset of what OpenSSL accepts: DER (definite, minimal lengths), v3, the
// usual extension shapes, printable-ASCII names, UTCTime / GeneralizedTime in their "Z" forms. Anything
// else throws core::Error(Parse) and the caller takes the OpenSSL path, so odd encodings behave as before.
// The key itself is not validated (an EC point may lie off the curve): callers use public_key_matches,
// which only says yes for the public half of a key OpenSSL has already checked, and signature_verifies,
// whose key import (EVP_PKEY_fromdata) checks the point is on the curve.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::crypto {

// The signature algorithms CAs use (RSA PKCS#1 v1.5 and ECDSA); RSA-PSS and the rest take OpenSSL's path.
enum class SignatureAlgorithm { RsaSha256, RsaSha384, RsaSha512, EcdsaSha256, EcdsaSha384 };

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

  // For checking a chain from summaries (signature_verifies, same_name):
  Bytes der;           // the whole certificate
  Bytes tbs;           // the TBSCertificate TLV: the signed bytes
  Bytes issuer_name;   // Name TLVs as raw DER: equal bytes imply X509_NAME_cmp() == 0 (the converse
  Bytes subject_name;  // does not hold: OpenSSL compares a case-folded canonical form)
  // Set when the signature algorithm is one of SignatureAlgorithm with its canonical parameters (NULL
  // for RSA, absent for ECDSA) and the TBSCertificate's signature field has the same bytes.
  std::optional<SignatureAlgorithm> signature_algorithm;
  Bytes signature;  // BIT STRING content after the unused-bits octet
};

// One complete DER certificate, nothing trailing. Parse error for anything outside the subset.
CertificateSummary read_certificate_der(ByteView der);
// Every block of a PEM chain (leaf first); every block must be a CERTIFICATE the reader accepts.
std::vector<CertificateSummary> read_certificate_pem_chain(std::string_view pem);
// True when the summary's public key is `key`'s public half (same curve and point, or same n and e).
bool public_key_matches(const PrivateKey& key, const CertificateSummary& cert);
bool public_key_matches(const PublicKey& key, const CertificateSummary& cert);

// Whether `cert`'s signature verifies with `issuer`'s public key (X509_verify(cert, issuer key) == 1), with
// the key built from the summary by EVP_PKEY_fromdata instead of OpenSSL's decoders. nullopt when either
// summary is outside the subset (no signature_algorithm, no supported key, a key OpenSSL refuses to
// import): the caller then asks crypto::issued_by. Names are not compared (see same_name).
std::optional<bool> signature_verifies(const CertificateSummary& cert, const CertificateSummary& issuer);
// Raw DER equality of `cert`'s issuer and `issuer`'s subject. True implies X509_NAME_cmp() == 0; false is
// only a "maybe not" (differently encoded equal names), for which the caller asks OpenSSL.
bool same_name(ByteView a, ByteView b);
// The certificates re-armoured as PEM, leaf first: the same text as to_pem_chain() of the Certificates.
std::string to_pem_chain(const std::vector<CertificateSummary>& chain);

}  // namespace acme_sidecar::crypto
