#pragma once
// The end-to-end stack: Pebble (real ACME CA) + the fake API server (in-process, so tests can read its
// request log and seed objects) + nginx as the controller's data path with the routing snippet that
// manifests/ ships + one or more real acme-sidecar processes + a test-side "controller loader" that
// copies managed Secrets into nginx's certificate files and reloads nginx, as real controllers do.
// Runs inside the test's own network namespace (netns-run), so every port is fixed.
// The reliability suite (tests/reliability/rig.hpp) runs its fault scenarios on this same Stack: hence
// the Pebble options, per-replica arguments, roots remembered across Pebble restarts and the like.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "fake_apiserver.hpp"
#include "tests/support/pebble/pebble_rig.hpp"
#include "tests/support/process.hpp"

namespace acme_sidecar::e2e {

using namespace std::chrono_literals;

struct StackOptions {
  bool acme_snippet = true;                   // false: a misrouted controller (snippet missing)
  // Pebble's knobs (certificate validity, badNonce rate, domain blocklist, ...). http_port is the Stack's:
  // Pebble validates through nginx, like a CA through the controller.
  testing::PebbleOptions pebble;
  int replicas = 1;                           // sidecars (challenge ports 8089.., metrics 9402..)
  bool start_sidecars = true;                 // false: the test calls start_sidecar itself
  bool leader_elect = false;
  std::string rescan_interval = "5s";         // every certificate reconciled again (--rescan-interval)
  std::vector<std::string> extra_args;        // appended to every sidecar's command line
  std::map<int, std::vector<std::string>> replica_args;  // appended to one replica's command line
  std::string namespace_name = "acme-sidecar";  // the sidecars' own namespace (Lease, account, challenges)
  // RBAC: the fake API server's policy (Kubernetes RBAC manifests, see its README) and the user the
  // sidecars authenticate as (their own kubeconfig). Empty: no policy, sidecars use the admin's kubeconfig.
  // kubectl in tests always keeps the admin.
  std::string policy;
  std::string sidecar_user;
};

// A Secret the sidecar manages: our managed-by label and type kubernetes.io/tls.
bool is_managed_tls(const nlohmann::json& secret);

class Stack {
 public:
  explicit Stack(StackOptions options = {});
  ~Stack();

  // Sidecars
  void start_sidecar(int index);
  void stop_sidecar(int index);  // SIGTERM, graceful
  void kill_sidecar(int index);  // SIGKILL
  testing::Subprocess& sidecar(int index) { return *sidecars_.at(static_cast<std::size_t>(index)); }
  int replicas() const { return options_.replicas; }
  std::vector<std::string> sidecar_args(int index) const;
  std::string sidecar_log(int index) const;  // every start of that replica (the file is appended)
  std::size_t sidecar_log_size(int index) const;
  std::string sidecar_log_from(int index, std::size_t offset) const;  // the part written after `offset`
  std::string log_tail(int index, std::size_t bytes = 6000) const;
  std::string metrics(int index) const;  // GET /metrics ("" when unreachable)
  // Value of the first sample matching name{labels...} (all given label pairs must match).
  std::optional<double> metric(int index, const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;
  // Index of the replica holding the Lease (-1: none yet). Without leader election: 0.
  int leader() const;

  // Kubernetes side
  fake_apiserver::FakeApiServer& api() { return *api_; }
  testing::RunResult kubectl(const std::vector<std::string>& args, const std::string& stdin_data = "") const;
  void apply(const std::string& yaml) const;  // kubectl apply -f - ; REQUIREs success
  void create_namespaces() const;  // acme-sidecar, demo and the sidecars' own (again after api().reset())
  std::optional<nlohmann::json> secret(const std::string& ns, const std::string& name) const;
  std::vector<nlohmann::json> managed_secrets() const;  // all namespaces
  // Polls until the Secret exists and `pred` holds (generous deadline); returns it.
  nlohmann::json wait_secret(const std::string& ns, const std::string& name,
                             const std::function<bool(const nlohmann::json&)>& pred = {},
                             std::chrono::milliseconds timeout = 120s) const;
  std::vector<nlohmann::json> events_for(const std::string& ns, const std::string& ingress) const;

  // Certificates
  static std::string tls_crt(const nlohmann::json& secret);
  static std::string tls_key(const nlohmann::json& secret);
  static std::vector<std::string> leaf_names(const nlohmann::json& secret);
  static std::string leaf_fingerprint(const nlohmann::json& secret);
  // Chain verifies against any root Pebble has had in this run (or add_root gave), and the key matches
  // the leaf.
  bool valid(const nlohmann::json& secret, std::string* why = nullptr) const;
  bool chain_verifies(const nlohmann::json& secret) const;  // valid(), with the reason as UNSCOPED_INFO
  // Polls until the Secret is valid with exactly `names` (any order), or fails with the log tail.
  nlohmann::json wait_valid(const std::string& ns, const std::string& name, std::vector<std::string> names,
                            std::chrono::milliseconds timeout = 180s) const;

  // Controller loader: writes a server block per host of every managed Secret and reloads nginx.
  void load_certificates();
  // Adds an nginx server block (port 80) for `host` whose challenge location answers 404, and reloads:
  // the CA's validation of that host fails while every other host still works.
  void break_challenge_route(const std::string& host);
  std::string nginx_access_log() const;

  // CA
  testing::PebbleRig& pebble() { return *pebble_; }
  void pebble_restart();  // start Pebble again (state lost) and remember the new root
  void add_root(const std::string& pem) { roots_.push_back(pem); }  // e.g. a stand-in CA's root
  // Occurrences of `needle` summed over every Pebble generation's log.
  std::size_t pebble_count(const std::string& needle) const;
  // The sidecars' --acme-directory: Pebble's, unless set (e.g. a hostile stand-in) before they start.
  std::string directory_url() const;
  void set_directory(const std::string& url) { directory_override_ = url; }

  std::filesystem::path dir() const { return dir_->path(); }
  const StackOptions& options() const { return options_; }

 private:
  void start_nginx();
  void reload_nginx();
  void remember_root();

  StackOptions options_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::PebbleRig> pebble_;
  std::unique_ptr<fake_apiserver::FakeApiServer> api_;
  std::unique_ptr<testing::Subprocess> nginx_;
  std::vector<std::unique_ptr<testing::Subprocess>> sidecars_;
  std::vector<std::string> roots_;
  std::string directory_override_;
};

// A minimal Ingress manifest.
std::string ingress_yaml(const std::string& ns, const std::string& name, const std::vector<std::string>& hosts,
                         const std::string& secret, const std::string& ingress_class = "nginx");

}  // namespace acme_sidecar::e2e
