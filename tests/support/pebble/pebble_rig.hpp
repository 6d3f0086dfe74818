#pragma once
// Pebble (Debian's /usr/bin/pebble) plus pebble-challtestsrv as a DNS mock, per test run, on loopback.
// Run it inside tests/support/netns-run: ports are fixed and nothing can leak to the system resolver
// (Pebble always gets -dnsserver). Each run mints a throw-away CA and a 127.0.0.1/localhost serving
// certificate, so TLS to the CA is verified against ca_bundle_path().
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace acme_sidecar::testing {

class Subprocess;
class TempDir;

struct PebbleOptions {
  int http_port = 5002;        // where Pebble's VA fetches http-01 tokens (the responder under test)
  int listen_port = 14000;     // ACME (HTTPS)
  int management_port = 15000; // roots, intermediates (HTTPS)
  int dns_port = 8053;         // challtestsrv DNS mock
  int challtestsrv_management_port = 8055;
  int tls_port = 5001;         // tls-alpn-01 (unused by the sidecar)
  std::optional<long> certificate_validity_seconds;
  bool eab_required = false;
  std::map<std::string, std::string> eab_keys;  // kid -> base64url HMAC key
  std::vector<std::string> domain_blocklist;
  int nonce_reject_percent = 0;  // PEBBLE_WFE_NONCEREJECT
  int authz_reuse_percent = 0;   // PEBBLE_AUTHZREUSE
  std::vector<std::pair<std::string, std::string>> extra_env;  // e.g. PEBBLE_ALTERNATE_ROOTS=2
  std::chrono::milliseconds start_timeout{20'000};
};

class PebbleRig {
 public:
  // Starts challtestsrv and Pebble and waits until both listen. Throws std::runtime_error with the
  // relevant log on failure.
  explicit PebbleRig(PebbleOptions options = {});
  ~PebbleRig();
  PebbleRig(const PebbleRig&) = delete;
  PebbleRig& operator=(const PebbleRig&) = delete;

  std::string directory_url() const;  // https://127.0.0.1:<listen_port>/dir
  std::string ca_bundle_path() const; // PEM of the CA that signed Pebble's serving certificate
  // Pebble's current issuing root (management /roots/0); changes on every Pebble (re)start.
  std::string root_pem() const;
  std::filesystem::path log_path() const;
  std::string log() const;
  // Occurrences of `needle` in Pebble's log, e.g. "POST /order-plz" (Pebble's own request count).
  std::size_t count_log(const std::string& needle) const;
  const PebbleOptions& options() const { return options_; }
  std::filesystem::path work_dir() const;

  void stop();     // SIGTERM Pebble (challtestsrv keeps running)
  void kill();     // SIGKILL Pebble
  void restart();  // start Pebble again (it forgets every account, order and root)
  bool running() const;

 private:
  void start_pebble();
  PebbleOptions options_;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Subprocess> dns_;
  std::unique_ptr<Subprocess> pebble_;
  int generation_ = 0;
};

}  // namespace acme_sidecar::testing
