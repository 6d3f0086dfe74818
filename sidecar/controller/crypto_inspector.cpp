#include "controller/crypto_inspector.hpp"

#include "core/error.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::controller {

Inspection CryptoInspector::inspect(std::string_view chain_pem, std::string_view key_pem) const {
  Inspection out;
  try {
    auto chain = crypto::parse_pem_chain(chain_pem);
    const auto& leaf = chain.at(0);
    core::CertificateFacts f;
    f.dns_names = leaf.dns_names();
    f.ip_addresses = leaf.ip_addresses();
    f.not_before = leaf.not_before();
    f.not_after = leaf.not_after();
    f.common_name = leaf.subject_cn();
    f.issuer_cn = leaf.issuer_cn();
    f.key_algorithm = std::string(crypto::to_string(leaf.public_key().algorithm()));
    try {
      auto key = crypto::PrivateKey::from_pem(key_pem);
      f.key_matches = crypto::key_matches_certificate(key, leaf);
    } catch (const core::Error&) {
      f.key_matches = false;  // an unusable key is a mismatch: re-issue
    }
    out.facts = std::move(f);
  } catch (const core::Error& e) {
    out.error = "tls.crt: " + e.message();
  } catch (const std::exception& e) {
    out.error = std::string("tls.crt: ") + e.what();
  }
  return out;
}

}  // namespace acme_sidecar::controller
