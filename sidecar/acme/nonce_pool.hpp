#pragma once
// Keeps every Replay-Nonce the CA hands out (lego's nonce manager) so most requests need no extra
// HEAD newNonce round trip. Thread-safe; bounded (oldest dropped first, they are the likeliest stale).
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace acme_sidecar::acme {

class NoncePool {
 public:
  explicit NoncePool(std::size_t capacity = 32) : capacity_(capacity) {}
  void push(std::string nonce);
  std::optional<std::string> pop();
  void clear();
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::size_t capacity_;
  std::deque<std::string> nonces_;
};

}  // namespace acme_sidecar::acme
