#include "acme/nonce_pool.hpp"

namespace acme_sidecar::acme {

void NoncePool::push(std::string nonce) {
  // RFC 8555 §6.5.1: a nonce is base64url; ignore anything else instead of echoing it back.
  if (nonce.empty() || nonce.size() > 256) return;
  for (char c : nonce)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return;
  std::lock_guard lock(mu_);
  nonces_.push_back(std::move(nonce));
  while (nonces_.size() > capacity_) nonces_.pop_front();
}

std::optional<std::string> NoncePool::pop() {
  std::lock_guard lock(mu_);
  if (nonces_.empty()) return std::nullopt;
  // Newest first: the CA is likeliest to still accept it.
  std::string n = std::move(nonces_.back());
  nonces_.pop_back();
  return n;
}

void NoncePool::clear() {
  std::lock_guard lock(mu_);
  nonces_.clear();
}

std::size_t NoncePool::size() const {
  std::lock_guard lock(mu_);
  return nonces_.size();
}

}  // namespace acme_sidecar::acme
