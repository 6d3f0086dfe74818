#pragma once
// Where the ACME account key lives. The controller keeps it in a Secret so every replica and every
// restart uses the same account; the one-shot mode keeps it in a file.
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

namespace acme_sidecar::acme {

class AccountKeyStore {
 public:
  virtual ~AccountKeyStore() = default;
  // PKCS#8 PEM of the account key, or nullopt when none was saved yet.
  virtual std::optional<std::string> load() = 0;
  virtual void save(const std::string& pem) = 0;
};

// A file (created 0600, written atomically via rename). A missing file means "no key yet".
class FileAccountKeyStore final : public AccountKeyStore {
 public:
  explicit FileAccountKeyStore(std::filesystem::path path) : path_(std::move(path)) {}
  std::optional<std::string> load() override;
  void save(const std::string& pem) override;

 private:
  std::filesystem::path path_;
};

// In memory (tests, or a throw-away account).
class MemoryAccountKeyStore final : public AccountKeyStore {
 public:
  std::optional<std::string> load() override {
    std::lock_guard l(mu_);
    return pem_;
  }
  void save(const std::string& pem) override {
    std::lock_guard l(mu_);
    pem_ = pem;
  }

 private:
  std::mutex mu_;
  std::optional<std::string> pem_;
};

}  // namespace acme_sidecar::acme
