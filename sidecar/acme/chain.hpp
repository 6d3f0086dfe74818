#pragma once
// Checks on what the CA returns as the certificate: the client refuses what it cannot verify.
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::acme {

// What the client keeps of a checked chain.
struct CheckedChain {
  struct Entry {
    std::string subject_cn;  // first CN, "" when absent
    std::string issuer_cn;
  };
  std::string pem;             // the CA's certificates re-armoured, leaf first (crypto::to_pem_chain's text)
  std::vector<Entry> entries;  // leaf first
  core::TimePoint not_before{};  // the leaf's
  core::TimePoint not_after{};
  bool from_summaries = false;  // decided without OpenSSL's X.509 decoding (for tests and the bench)
};

// Parses an application/pem-certificate-chain body and checks it, throwing core::Error(Crypto|Parse):
//  - at least one certificate, nothing but CERTIFICATE blocks;
//  - the leaf's public key is `key` (the CSR's key);
//  - the leaf's dNSName SANs are exactly `names` (as sets, case-insensitive);
//  - every certificate is signed by the next one, and a leaf that is not self-issued comes with its
//    issuer (a leaf-only chain from an intermediate is "truncated");
//  - when `trusted_roots` is non-empty, the chain verifies up to one of them at `now`.
// The usual chain (strict DER, RSA/ECDSA signatures) is checked from crypto::read_certificate_der's
// summaries; anything else, and every failure, goes through OpenSSL's X.509 decoding as before, so the
// errors are OpenSSL's verdicts.
CheckedChain check_chain(std::string_view pem, const std::vector<std::string>& names, const crypto::PublicKey& key,
                         const std::vector<std::string>& trusted_roots, core::TimePoint now);
// The same against the CSR's private key: compared on its public half without deriving a PublicKey
// (that derivation rebuilt the curve group: ~3 % of the sidecar's CPU per certificate in a burst).
CheckedChain check_chain(std::string_view pem, const std::vector<std::string>& names, const crypto::PrivateKey& key,
                         const std::vector<std::string>& trusted_roots, core::TimePoint now);

// The issuer CN of the topmost certificate (the root this chain leads to), for --acme-preferred-chain.
std::string chain_root_name(const CheckedChain& chain);
// True when `name` is the issuer CN or subject CN of any certificate above the leaf.
bool chain_matches_preferred(const CheckedChain& chain, std::string_view name);

// RFC 9773 §4.1 CertID from the authority key identifier and the DER serial content octets (for a
// certificate use crypto::ari_cert_id).
std::string ari_cert_id(crypto::ByteView authority_key_id, crypto::ByteView serial);

}  // namespace acme_sidecar::acme
