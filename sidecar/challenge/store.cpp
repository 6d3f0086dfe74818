#include "challenge/store.hpp"

#include <mutex>

#include "challenge/path.hpp"
#include "core/error.hpp"

namespace acme_sidecar::challenge {

bool is_valid_key_authorization(std::string_view ka) {
  if (ka.empty() || ka.size() > 1024) return false;
  for (char c : ka)
    if (c <= ' ' || c > '~') return false;
  return true;
}

InMemoryChallengeStore::InMemoryChallengeStore(MissHandler miss_handler) : miss_handler_(std::move(miss_handler)) {}

void InMemoryChallengeStore::put(std::string token, std::string key_authorization) {
  if (!is_valid_token(token))
    throw core::Error(core::ErrorKind::Invalid, "invalid challenge token", {{"token", token.substr(0, 64)}});
  if (!is_valid_key_authorization(key_authorization))
    throw core::Error(core::ErrorKind::Invalid, "invalid key authorization", {{"token", token}});
  std::unique_lock lock(mu_);
  entries_.insert_or_assign(std::move(token), std::move(key_authorization));
}

void InMemoryChallengeStore::remove(std::string_view token) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(token);
  if (it != entries_.end()) entries_.erase(it);
}

std::optional<std::string> InMemoryChallengeStore::lookup_cached(std::string_view token) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(token);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> InMemoryChallengeStore::lookup(std::string_view token) {
  if (auto hit = lookup_cached(token)) return hit;
  if (!miss_handler_ || !is_valid_token(token)) return std::nullopt;
  // Not cached: the owner of the store (e.g. its informer) decides what to keep; one call per lookup.
  try {
    auto found = miss_handler_(token);
    if (found && !is_valid_key_authorization(*found)) return std::nullopt;
    return found;
  } catch (...) {
    return std::nullopt;
  }
}

std::size_t InMemoryChallengeStore::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

}  // namespace acme_sidecar::challenge
