#pragma once
// CertificateInspector over the crypto module (OpenSSL): the production way to turn tls.crt / tls.key
// into core::CertificateFacts. Never throws for bad material; the reason lands in Inspection::error.
#include "controller/interfaces.hpp"

namespace acme_sidecar::controller {

class CryptoInspector final : public CertificateInspector {
 public:
  Inspection inspect(std::string_view chain_pem, std::string_view key_pem) const override;
};

}  // namespace acme_sidecar::controller
