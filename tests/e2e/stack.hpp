#pragma once
// The end-to-end stack: Pebble (real ACME CA) + the fake API server (in-process, so tests can read its
// request log and seed objects) + nginx as the controller's data path with the routing snippet that
// manifests/ ships + one or more real acme-sidecar processes + a test-side "controller loader" that
// copies managed Secrets into nginx's certificate files and reloads nginx, as real controllers do.
// Runs inside the test's own network namespace (netns-run), so every port is fixed.
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
  std::optional<long> validity_seconds;       // Pebble certificateValidityPeriod
  int replicas = 1;                           // sidecars (challenge ports 8089.., metrics 9402..)
  bool leader_elect = false;
  std::vector<std::string> extra_args;        // appended to every sidecar's command line
  std::string namespace_name = "acme-sidecar";  // the sidecars' own namespace (Lease, account, challenges)
  // RBAC: the fake API server's policy (Kubernetes RBAC manifests, see its README) and the user the
  // sidecars authenticate as (their own kubeconfig). Empty: no policy, sidecars use the admin's kubeconfig.
  // kubectl in tests always keeps the admin.
  std::string policy;
  std::string sidecar_user;
};

class Stack {
 public:
  explicit Stack(StackOptions options = {});
  ~Stack();

  // Sidecars
  void start_sidecar(int index);
  void stop_sidecar(int index);  // SIGTERM, graceful
  void kill_sidecar(int index);  // SIGKILL
  testing::Subprocess& sidecar(int index) { return *sidecars_.at(index); }
  std::string sidecar_log(int index) const;
  std::string metrics(int index) const;  // GET /metrics ("" when unreachable)
  // Value of the first sample matching name{labels...} (all given label pairs must match).
  std::optional<double> metric(int index, const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const;

  // Kubernetes side
  fake_apiserver::FakeApiServer& api() { return *api_; }
  testing::RunResult kubectl(const std::vector<std::string>& args, const std::string& stdin_data = "") const;
  void apply(const std::string& yaml) const;  // kubectl apply -f - ; REQUIREs success
  std::optional<nlohmann::json> secret(const std::string& ns, const std::string& name) const;
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
  bool chain_verifies(const nlohmann::json& secret) const;  // against Pebble's root, key matches leaf

  // Controller loader: writes a server block per host of every managed Secret and reloads nginx.
  void load_certificates();

  testing::PebbleRig& pebble() { return *pebble_; }
  std::size_t pebble_count(const std::string& needle) const { return pebble_->count_log(needle); }
  std::filesystem::path dir() const { return dir_->path(); }
  std::string nginx_access_log() const;
  const StackOptions& options() const { return options_; }

 private:
  void start_nginx();
  std::vector<std::string> sidecar_args(int index) const;

  StackOptions options_;
  std::unique_ptr<testing::TempDir> dir_;
  std::unique_ptr<testing::PebbleRig> pebble_;
  std::unique_ptr<fake_apiserver::FakeApiServer> api_;
  std::unique_ptr<testing::Subprocess> nginx_;
  std::vector<std::unique_ptr<testing::Subprocess>> sidecars_;
  int sidecar_starts_ = 0;
};

// A minimal Ingress manifest.
std::string ingress_yaml(const std::string& ns, const std::string& name, const std::vector<std::string>& hosts,
                         const std::string& secret, const std::string& ingress_class = "nginx");

}  // namespace acme_sidecar::e2e
