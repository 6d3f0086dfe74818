#pragma once
// One-shot mode: `acme-sidecar issue --domain ... --out DIR`. Issues one certificate with a built-in
// HTTP-01 responder (challenge::Responder) and writes DIR/tls.crt (leaf + chain) and DIR/tls.key
// (PKCS#8, 0600). The account key is kept in a file (default DIR/account.key) so reruns reuse it.
#include <chrono>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "acme/client.hpp"
#include "acme/observer.hpp"
#include "core/log.hpp"

namespace acme_sidecar::challenge {
class ChallengeStore;
}

namespace acme_sidecar::acme {

// "letsencrypt" / "letsencrypt-staging" -> their directory URLs; anything else is returned as is.
std::string resolve_directory_preset(std::string_view directory);

struct OneShotOptions {
  std::vector<std::string> domains;
  std::filesystem::path out_dir;
  std::string challenge_listen = "127.0.0.1:8089";
  bool allow_non_loopback_listen = false;  // e.g. 0.0.0.0:80 when the CA reaches us directly
  std::string acme_directory;              // URL or preset
  std::string acme_ca_bundle;              // extra trust anchors for TLS to the CA
  std::string acme_email;
  std::string acme_eab_kid;
  std::filesystem::path acme_eab_hmac_file;  // file holding the base64url HMAC key
  std::string acme_profile;
  std::string acme_preferred_chain;
  std::string key_algorithm = "ecdsa-p256";
  std::filesystem::path account_key_file;  // default: <out_dir>/account.key
  std::chrono::seconds timeout{300};
  std::chrono::milliseconds poll_interval{1000};
};

// Returns 0 on success, 1 on failure (the reason is logged as an error line, never key material).
int run_issue(const OneShotOptions& options, core::Logger& logger, std::stop_token stop = {},
              Observer* observer = nullptr);

// Adapter from the ACME client's publisher interface to a challenge store (what the responder serves).
class StorePublisher final : public ChallengePublisher {
 public:
  explicit StorePublisher(challenge::ChallengeStore& store) : store_(store) {}
  void publish(const std::string& token, const std::string& key_authorization, const ChallengeContext&) override;
  void unpublish(const std::string& token) override;

 private:
  challenge::ChallengeStore& store_;
};

// Writes `content` to `path` atomically (temp file + rename) with the given mode.
void write_file_atomic(const std::filesystem::path& path, const std::string& content, unsigned mode);

}  // namespace acme_sidecar::acme
