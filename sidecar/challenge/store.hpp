#pragma once
// Pending HTTP-01 challenges: token -> key authorization. The responder reads it on every request;
// the issuer writes it around each validation. A Kubernetes-backed store (ConfigMaps watched by every
// replica) can be built on the same interface: lookup() falls back to a read-through on a miss.
#include <cstddef>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace acme_sidecar::challenge {

class ChallengeStore {
 public:
  virtual ~ChallengeStore() = default;
  // Throws core::Error(Invalid) for a token outside [A-Za-z0-9_-]{1,256} or a malformed key authorization.
  virtual void put(std::string token, std::string key_authorization) = 0;
  virtual void remove(std::string_view token) = 0;
  // Cache first; on a miss the read-through (if any) runs at most once for this call. May block.
  virtual std::optional<std::string> lookup(std::string_view token) = 0;
  // Cache only; never blocks, so the responder may call it on its event thread.
  virtual std::optional<std::string> lookup_cached(std::string_view token) const = 0;
  // True when lookup() can do more than lookup_cached(); the responder then runs misses on a worker.
  virtual bool reads_through() const { return false; }
};

// Called on a cache miss with a syntactically valid token: e.g. one GET of the challenge ConfigMap.
// Must be thread-safe; exceptions are treated as "not found".
using MissHandler = std::function<std::optional<std::string>(std::string_view token)>;

class InMemoryChallengeStore final : public ChallengeStore {
 public:
  explicit InMemoryChallengeStore(MissHandler miss_handler = {});

  void put(std::string token, std::string key_authorization) override;
  void remove(std::string_view token) override;
  std::optional<std::string> lookup(std::string_view token) override;
  std::optional<std::string> lookup_cached(std::string_view token) const override;
  bool reads_through() const override { return static_cast<bool>(miss_handler_); }
  std::size_t size() const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> entries_;
  MissHandler miss_handler_;
};

// A key authorization is "<token>.<base64url thumbprint>" (RFC 8555 §8.1); we only insist on
// printable ASCII without spaces and a sane length, since it is echoed back verbatim.
bool is_valid_key_authorization(std::string_view key_authorization);

}  // namespace acme_sidecar::challenge
