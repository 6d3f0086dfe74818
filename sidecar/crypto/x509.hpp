#pragma once
// X.509 certificate parsing, inspection and chain verification.
// Every parser rejects hostile input (empty, truncated, wrong PEM type, trailing garbage in DER)
// with core::Error(Parse or Crypto) and a clear message; never a crash.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"

namespace acme_sidecar::crypto {

using TimePoint = std::chrono::system_clock::time_point;

class Certificate {
 public:
  // Exactly one "-----BEGIN CERTIFICATE-----" block (surrounding text is ignored; a second
  // certificate block is an error — use parse_pem_chain for bundles).
  static Certificate from_pem(std::string_view pem);
  // A complete DER certificate with no trailing bytes.
  static Certificate from_der(ByteView der);
  // Takes one more reference on an existing X509 (e.g. a TLS peer's), with the same checks as from_der.
  static Certificate from_native(X509* cert);

  // Saturate at TimePoint::min()/max() for dates system_clock cannot hold (e.g. 99991231235959Z).
  TimePoint not_before() const;
  TimePoint not_after() const;
  // dNSName SANs, lower-cased, in certificate order.
  std::vector<std::string> dns_names() const;
  // iPAddress SANs in text form ("192.0.2.1", "2001:db8::1").
  std::vector<std::string> ip_addresses() const;
  // Serial: lower-case hex of the magnitude without leading zeros ("0" for zero), and the DER INTEGER
  // content octets (two's complement, minimal — what ARI's CertID uses, RFC 9773).
  std::string serial_hex() const;
  Bytes serial_bytes() const;
  // First CN of the issuer / subject name; empty when absent.
  std::string issuer_cn() const;
  std::string subject_cn() const;
  // keyIdentifier of the authorityKeyIdentifier / subjectKeyIdentifier extension; empty when absent.
  Bytes authority_key_id() const;
  Bytes subject_key_id() const;
  bool is_ca() const;
  // SHA-256 over the DER encoding, lower-case hex without separators.
  std::string sha256_fingerprint_hex() const;
  PublicKey public_key() const;
  std::string to_pem() const;
  Bytes to_der() const;
  X509* native() const noexcept { return cert_.get(); }

  // Same DER encoding.
  friend bool operator==(const Certificate& a, const Certificate& b);

 private:
  explicit Certificate(std::shared_ptr<X509> cert) : cert_(std::move(cert)) {}
  std::shared_ptr<X509> cert_;
};

// Every CERTIFICATE block in order (leaf first, as ACME and tls.crt deliver them). Text outside blocks
// is ignored; no certificate at all, a truncated or corrupt block, or any other PEM block (a private
// key in tls.crt, a CSR) → Parse error naming the block's index.
std::vector<Certificate> parse_pem_chain(std::string_view text);
// Certificate::sha256_fingerprint_hex() of the first certificate of a PEM chain, from its DER alone:
// no X.509 decoding (which costs ~0.5 ms in OpenSSL 3.0's key decoders). Parse error when the first
// PEM block is not a CERTIFICATE.
std::string leaf_fingerprint_hex(std::string_view chain_pem);
// Concatenated PEM of the chain (the form written to tls.crt).
std::string to_pem_chain(const std::vector<Certificate>& chain);

// True when the certificate's public key is the key's public half.
bool key_matches_certificate(const PrivateKey& key, const Certificate& cert);

// True when `cert` names `issuer`'s subject as its issuer and its signature verifies with `issuer`'s key
// (one link of a chain; no validity or trust checks).
bool issued_by(const Certificate& cert, const Certificate& issuer);
// Issuer name equals subject name (a root, or a leaf claiming to be one).
bool self_issued(const Certificate& cert);

// ARI certificate identifier (RFC 9773 §4.1): base64url(AKI keyIdentifier) "." base64url(serial).
// Crypto error when the certificate has no authority key identifier.
std::string ari_cert_id(const Certificate& cert);

struct VerifyResult {
  bool ok = false;
  std::string error;  // OpenSSL's reason plus the depth, empty when ok
  explicit operator bool() const noexcept { return ok; }
};
// Verifies chain[0] (leaf) up to one of the roots (PEM text, each may hold several certificates),
// using chain[1..] as untrusted intermediates, at time `at` (no wall clock involved). Only the trust
// path is checked (no hostname, no purpose). Unparsable roots → Parse error (thrown); everything else
// is reported in the result.
VerifyResult verify_chain(const std::vector<Certificate>& chain, const std::vector<std::string>& root_pems,
                          TimePoint at);

}  // namespace acme_sidecar::crypto
