#pragma once
// PKCS#10 certificate signing requests for ACME finalize (RFC 8555 §7.4).
#include <string>
#include <string_view>
#include <vector>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"

namespace acme_sidecar::crypto {

struct Csr {
  Bytes der;        // what ACME finalize wants (base64url-encoded by the caller)
  std::string pem;  // "-----BEGIN CERTIFICATE REQUEST-----"
};

// Every name becomes a dNSName SAN, in the given order. The subject CN is the first name, but only
// when it fits the 64-byte ub-common-name limit (RFC 5280); otherwise the subject is empty.
// Signature: SHA-256 (SHA-384 for ECDSA P-384). Names are used as given (callers lower-case and
// de-duplicate); an empty list, or a name that is empty, longer than 253 characters, or holds a space,
// control or non-ASCII byte (IDNs must arrive as A-labels) → core::Error(Invalid).
Csr make_csr(const PrivateKey& key, const std::vector<std::string>& names);

// A parsed and signature-checked CSR (used by the test CA / hostile-CA stand-in to issue from it).
struct CsrInfo {
  PublicKey public_key;
  std::vector<std::string> dns_names;  // SANs, lower-cased, in order
  std::string common_name;             // empty when absent
};
// DER or PEM. Garbage → Parse; bad self-signature → Crypto.
CsrInfo parse_csr(ByteView der);
CsrInfo parse_csr_pem(std::string_view pem);

}  // namespace acme_sidecar::crypto
