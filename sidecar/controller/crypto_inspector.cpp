#include "controller/crypto_inspector.hpp"

#include <algorithm>
#include <optional>

#include "core/error.hpp"
#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/sign.hpp"
#include "crypto/x509.hpp"
#include "crypto/x509_der.hpp"

namespace acme_sidecar::controller {

namespace {

void set_leaf_digest(core::CertificateFacts& f, const crypto::Bytes& sha256) {
  if (sha256.size() == f.leaf_sha256.size()) std::copy(sha256.begin(), sha256.end(), f.leaf_sha256.begin());
}

// Length-prefixed so that moving bytes between chain and key cannot produce the same memo key.
std::string memo_key(std::string_view chain_pem, std::string_view key_pem) {
  std::string input = std::to_string(chain_pem.size()) + ":";
  input.append(chain_pem);
  input.append(key_pem);
  auto digest = crypto::sha256(crypto::as_bytes(input));
  return std::string(digest.begin(), digest.end());
}

// The common case through our own DER reader: every block accepted by it, and tls.key's public half
// equal to the leaf's key. Anything else (odd encodings, a bad or mismatched key) → nullopt, and the
// OpenSSL path decides, so errors and mismatches read exactly as before. A match also proves the
// leaf's key valid (it is the public half of a key whose consistency was checked).
// EC keys are checked by `ec_keys` (no EVP_PKEY built); other keys go through PrivateKey::from_pem.
std::optional<Inspection> inspect_fast(const crypto::EcKeyVerifier& ec_keys, std::string_view chain_pem,
                                       std::string_view key_pem) {
  try {
    auto chain = crypto::read_certificate_pem_chain(chain_pem);
    auto& leaf = chain.front();
    crypto::KeyAlgorithm algorithm{};
    if (auto ec = ec_keys.public_point(key_pem)) {
      if (leaf.key_algorithm != ec->algorithm || leaf.ec_point != ec->point) return std::nullopt;
      algorithm = ec->algorithm;
    } else {
      const auto key = crypto::PrivateKey::from_pem(key_pem);
      if (!crypto::public_key_matches(key, leaf)) return std::nullopt;
      algorithm = key.algorithm();
    }
    core::CertificateFacts f;
    f.dns_names = std::move(leaf.dns_names);
    f.ip_addresses = std::move(leaf.ip_addresses);
    f.not_before = leaf.not_before;
    f.not_after = leaf.not_after;
    f.common_name = std::move(leaf.subject_cn);
    f.issuer_cn = std::move(leaf.issuer_cn);
    f.key_algorithm = std::string(crypto::to_string(algorithm));
    f.key_matches = true;
    if (!leaf.authority_key_id.empty() && !leaf.serial.empty())
      f.ari_id = crypto::base64url_encode(leaf.authority_key_id) + "." + crypto::base64url_encode(leaf.serial);
    set_leaf_digest(f, leaf.sha256);
    Inspection out;
    out.facts = std::move(f);
    return out;
  } catch (const core::Error&) {
    return std::nullopt;
  }
}

}  // namespace

Inspection CryptoInspector::inspect(std::string_view chain_pem, std::string_view key_pem) const {
  if (capacity_ == 0) return inspect_uncached(chain_pem, key_pem);
  const std::string key = memo_key(chain_pem, key_pem);
  {
    std::lock_guard lock(mu_);
    auto it = current_.find(key);
    if (it != current_.end()) {
      ++hits_;
      return it->second;
    }
    it = previous_.find(key);
    if (it != previous_.end()) {
      ++hits_;
      Inspection out = it->second;
      current_.emplace(key, std::move(it->second));
      previous_.erase(it);
      return out;
    }
  }
  Inspection out = inspect_uncached(chain_pem, key_pem);
  std::lock_guard lock(mu_);
  if (current_.size() >= capacity_) {
    previous_ = std::move(current_);
    current_.clear();
  }
  current_.emplace(key, out);
  return out;
}

std::size_t CryptoInspector::memo_hits() const {
  std::lock_guard lock(mu_);
  return hits_;
}

Inspection CryptoInspector::inspect_uncached(std::string_view chain_pem, std::string_view key_pem) const {
  if (der_fast_path_) {
    if (auto fast = inspect_fast(ec_keys_, chain_pem, key_pem)) return std::move(*fast);
  }
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
    if (!leaf.authority_key_id().empty()) f.ari_id = crypto::ari_cert_id(leaf);
    set_leaf_digest(f, crypto::sha256(leaf.to_der()));
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
