#pragma once
// Minting certificates: self-signed roots and CA-issued leaves/intermediates. Used by tests, the
// benchmarks (thousands of certificates: signing only, no key generation unless asked) and the
// hostile-CA stand-in; in production for a throw-away self-signed placeholder if ever needed.
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "crypto/csr.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::crypto {

struct CertificateSpec {
  std::vector<std::string> dns_names;     // dNSName SANs (as given, any order)
  std::vector<std::string> ip_addresses;  // iPAddress SANs, text form (v4 or v6)
  // Subject CN; when empty, the first DNS name if it fits 64 bytes, else no subject CN.
  std::string common_name;
  TimePoint not_before{};
  TimePoint not_after{};  // TimePoint::max() → 99991231235959Z ("no well-defined expiration")
  bool is_ca = false;  // basicConstraints CA:TRUE + keyCertSign/cRLSign, else a TLS server leaf
  // DER INTEGER content octets; empty → 16 random bytes with the top bit cleared (positive).
  Bytes serial;
  // Issue "wrong" certificates on purpose (hostile-CA tests): omit the AKI / SKI extensions.
  bool omit_key_identifiers = false;
};

// Self-signed certificate for `key` (a root when spec.is_ca). Signature SHA-256 (SHA-384 for P-384).
Certificate make_self_signed(const PrivateKey& key, const CertificateSpec& spec);
Certificate make_self_signed(const PrivateKey& key, const std::vector<std::string>& names, TimePoint not_before,
                             TimePoint not_after);

// Certificate for `subject` signed by the CA; the issuer name and AKI come from `ca_cert`.
// ca_key must match ca_cert (Crypto error otherwise).
Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, const PublicKey& subject,
                              const CertificateSpec& spec);
// Convenience: leaf for the given names, valid [not_before, not_before + validity).
Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, const PublicKey& subject,
                              const std::vector<std::string>& names, TimePoint not_before,
                              std::chrono::seconds validity);
// Issue from a CSR (DER) like a CA would: checks its self-signature, takes its key and SANs.
Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, ByteView csr_der,
                              TimePoint not_before, std::chrono::seconds validity);

}  // namespace acme_sidecar::crypto
