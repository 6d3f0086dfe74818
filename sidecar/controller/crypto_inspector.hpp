#pragma once
// CertificateInspector over the crypto module (OpenSSL): the production way to turn tls.crt / tls.key
// into core::CertificateFacts. Never throws for bad material; the reason lands in Inspection::error.
//
// Results are memoized by the SHA-256 of (chain, key): every certificate is inspected once when it is
// issued and again on each reconcile of its Secret (the Secret's own watch event, rescans), always the
// same bytes, and OpenSSL 3.0 spends ~1-3 ms per inspection in its decoders. Certificates are read
// with crypto::read_certificate_der (no OpenSSL decoders) when the material is in its strict subset. The memo is bounded: two
// generations of `capacity` entries (the older one is dropped when the newer fills up).
#include <cstddef>
#include <map>
#include <mutex>
#include <string>

#include "controller/interfaces.hpp"
#include "crypto/key.hpp"

namespace acme_sidecar::controller {

class CryptoInspector final : public CertificateInspector {
 public:
  // der_fast_path=false: always OpenSSL's decoders (the reference the fast path is tested against).
  explicit CryptoInspector(std::size_t capacity = 4096, bool der_fast_path = true)
      : capacity_(capacity), der_fast_path_(der_fast_path) {}
  Inspection inspect(std::string_view chain_pem, std::string_view key_pem) const override;

  // Inspections answered from the memo (tests, benchmarks).
  std::size_t memo_hits() const;

 private:
  Inspection inspect_uncached(std::string_view chain_pem, std::string_view key_pem) const;

  std::size_t capacity_;
  bool der_fast_path_;
  crypto::EcKeyVerifier ec_keys_;
  mutable std::mutex mu_;
  mutable std::map<std::string, Inspection> current_, previous_;
  mutable std::size_t hits_ = 0;
};

}  // namespace acme_sidecar::controller
