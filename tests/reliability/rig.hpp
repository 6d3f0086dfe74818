#pragma once
// The reliability rig: the e2e Stack (tests/e2e/stack.hpp) with the knobs the fault scenarios need and
// the e2e Stack does not take — Pebble options (badNonce rate, domain blocklist), per-replica sidecar
// arguments, roots remembered across Pebble restarts, Pebble counts summed over every generation, the
// current leader — plus SecretWatcher (a real watch over HTTPS that checks every event of every managed
// Secret) and small helpers. Runs inside the test's own network namespace (netns-run): fixed ports.
//
// It mirrors tests/e2e/stack.cpp (which is the lead's and cannot take these options yet); once
// StackOptions grows `pebble` and `replica_args`, Rig can become a thin wrapper around Stack.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake_apiserver.hpp"
#include "tests/support/pebble/pebble_rig.hpp"
#include "tests/support/process.hpp"

namespace acme_sidecar::reliability {

using namespace std::chrono_literals;

struct RigOptions {
  std::optional<long> validity_seconds;  // Pebble certificateValidityPeriod
  int replicas = 1;                      // sidecars (challenge ports 8089.., metrics 9402..)
  bool leader_elect = false;
  std::vector<std::string> extra_args;                 // appended to every sidecar's command line
  std::map<int, std::vector<std::string>> replica_args;  // appended to one replica's command line
  int nonce_reject_percent = 0;                        // PEBBLE_WFE_NONCEREJECT
  std::vector<std::string> domain_blocklist;           // Pebble domainBlocklist
  std::string directory_override;                      // e.g. a hostile stand-in instead of Pebble
  bool start_sidecars = true;                          // false: the test calls start_sidecar itself
};

class Rig {
 public:
  explicit Rig(RigOptions options = {});
  ~Rig();

  // Sidecars
  void start_sidecar(int index);
  void stop_sidecar(int index);  // SIGTERM, graceful
  void kill_sidecar(int index);  // SIGKILL
  testing::Subprocess& sidecar(int index) { return *sidecars_.at(static_cast<std::size_t>(index)); }
  std::string sidecar_log(int index) const;  // every start of that replica (the file is appended)
  std::size_t sidecar_log_size(int index) const;
  std::string sidecar_log_from(int index, std::size_t offset) const;  // the part written after `offset`
  std::string metrics(int index) const;
  std::optional<double> metric(int index, const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;
  // Index of the replica holding the Lease (-1: none yet). Without leader election: 0.
  int leader() const;
  std::vector<std::string> sidecar_args(int index) const;
  int replicas() const { return options_.replicas; }
  void set_directory(const std::string& url) { options_.directory_override = url; }

  // Kubernetes side
  fake_apiserver::FakeApiServer& api() { return *api_; }
  testing::RunResult kubectl(const std::vector<std::string>& args, const std::string& stdin_data = "") const;
  void apply(const std::string& yaml) const;
  void create_namespaces() const;  // acme-sidecar, demo (again after api().reset())
  std::optional<nlohmann::json> secret(const std::string& ns, const std::string& name) const;
  // Managed TLS Secrets (label + type), all namespaces.
  std::vector<nlohmann::json> managed_secrets() const;

  // Certificates
  static std::string tls_crt(const nlohmann::json& secret);
  static std::string tls_key(const nlohmann::json& secret);
  static std::vector<std::string> leaf_names(const nlohmann::json& secret);
  static std::string leaf_fingerprint(const nlohmann::json& secret);
  // Chain verifies against any root Pebble has had in this run, and the key matches the leaf.
  bool valid(const nlohmann::json& secret, std::string* why = nullptr) const;
  // Polls until the Secret is valid with exactly `names` (any order), or fails with the log tail.
  nlohmann::json wait_valid(const std::string& ns, const std::string& name, std::vector<std::string> names,
                            std::chrono::milliseconds timeout = 180s) const;

  // Pebble
  testing::PebbleRig& pebble() { return *pebble_; }
  void pebble_restart();  // start again (state lost) and remember the new root
  void add_root(const std::string& pem) { roots_.push_back(pem); }  // e.g. a stand-in CA's root
  // Adds an nginx server block (port 80) for `host` whose challenge location answers 404, and reloads:
  // the CA's validation of that host fails while every other host still works.
  void break_challenge_route(const std::string& host);
  // Occurrences of `needle` summed over every Pebble generation's log.
  std::size_t pebble_count(const std::string& needle) const;
  std::string pebble_logs() const;

  std::filesystem::path dir() const { return dir_->path(); }
  std::string directory_url() const;
  std::string log_tail(int index, std::size_t bytes = 6000) const;

 private:
  void start_nginx();
  void remember_root();

  RigOptions options_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::PebbleRig> pebble_;
  std::unique_ptr<fake_apiserver::FakeApiServer> api_;
  std::unique_ptr<testing::Subprocess> nginx_;
  std::vector<std::unique_ptr<testing::Subprocess>> sidecars_;
  std::vector<std::string> roots_;
};

std::string ingress_yaml(const std::string& ns, const std::string& name, const std::vector<std::string>& hosts,
                         const std::string& secret);

// A real watch (HTTPS, bearer token, chunked JSON lines) on every Secret of the fake API server,
// re-watching from the last resourceVersion when the stream ends and relisting after 410. Every
// ADDED/MODIFIED event of a managed TLS Secret is checked at once: tls.crt parses, tls.key matches the
// leaf and the chain verifies against a known Pebble root. Counts what it saw.
class SecretWatcher {
 public:
  explicit SecretWatcher(Rig& rig);
  ~SecretWatcher();
  SecretWatcher(const SecretWatcher&) = delete;
  SecretWatcher& operator=(const SecretWatcher&) = delete;

  struct Stats {
    std::size_t events = 0;          // ADDED/MODIFIED of managed TLS Secrets
    std::size_t invalid = 0;         // versions (events or relisted) whose pair was not valid
    std::size_t streams = 0;         // watch connections made
    std::size_t relists = 0;         // after 410
    std::set<std::string> fingerprints;  // distinct leaves seen
    std::vector<std::string> problems;   // first few invalid events, explained
  };
  Stats stats() const;

 private:
  void run();
  // Checks a Secret version; `event`: it came from the stream (else from a relist after 410).
  void check(const nlohmann::json& secret, bool event);
  Rig& rig_;
  mutable std::mutex mu_;
  Stats stats_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Integer from the environment (for scaling loops), else `fallback`.
int env_int(const char* name, int fallback);
// Every line of `text` that contains `needle`.
std::size_t count(const std::string& text, const std::string& needle);
// VmRSS of a process in KiB (0 when unreadable).
long rss_kib(pid_t pid);

}  // namespace acme_sidecar::reliability
