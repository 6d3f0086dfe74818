#pragma once
// An in-process stand-in for kube-apiserver (HTTPS, bearer tokens, discovery, CRUD, watch, faults).
// Tests start it on a port, talk to it over the wire, poke the store directly, inject faults and
// read the request log. The standalone binary `fake-apiserver` wraps this class (see README.md).
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace acme_sidecar::fake_apiserver {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;           // 0: any free port
  int control_port = -1;  // -1: no control HTTP port; 0: any free port
  std::string admin_token;  // empty: random; the admin user is never restricted by a policy
  std::map<std::string, std::string> tokens;  // user name -> bearer token
  // JSON/YAML `users:` rules or Kubernetes RBAC manifests (see README.md); empty: anyone authenticated may do anything.
  std::string policy;
  std::string policy_namespace = "default";  // namespace of RBAC Roles/RoleBindings that name none
  std::size_t watch_window = 1000;  // events retained for watches resuming from a resourceVersion
  std::chrono::milliseconds bookmark_interval{std::chrono::seconds(60)};
  std::size_t watch_queue_limit = 1000;  // events buffered per watcher before it is closed as too slow
  std::chrono::seconds default_watch_timeout{1800};
  int threads = 96;  // watches hold a thread each
  // Like kube-apiserver (Go sets it on every connection). Off, a response's body waits for the client's
  // delayed ACK of its headers: ~40 ms per call (the benchmark keeps that, see tests/bench/README.md).
  bool tcp_nodelay = true;
};

struct RequestLogEntry {
  std::string method;
  std::string path;
  std::string query;  // raw, without '?'
  std::string user;   // empty when unauthenticated
  std::string content_type;
  int status = 0;
  std::string time;  // RFC 3339 with milliseconds, UTC
  bool watch = false;
};

struct FailRule {
  std::string method = ".*";  // regex on the method
  std::string path = ".*";    // regex on the path (no query)
  int count = 1;
  int status = 503;              // 500, 503, 429, ...
  int retry_after_seconds = -1;  // Retry-After header (and details.retryAfterSeconds) when >= 0
};

class FakeApiServer {
 public:
  explicit FakeApiServer(Options options = {});
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Generates the CA and serving certificate, binds and serves in background threads. Throws
  // std::runtime_error when a port cannot be bound or the policy does not parse.
  void start();
  void stop();  // closes every watch; idempotent

  int port() const;
  int control_port() const;  // -1 when disabled
  std::string url() const;   // https://127.0.0.1:PORT
  std::string ca_pem() const;
  std::string admin_token() const;
  std::string token_of(const std::string& user) const;  // "" when unknown
  // A kubeconfig for `user` (empty: the admin) pointing at ca_file (empty: the CA inline).
  std::string kubeconfig(const std::string& user = "", const std::string& ca_file = "") const;
  // Writes ca.crt, tls.crt, tls.key, kubeconfig, kubeconfig-<user> for each --token user, then `ready`.
  void write_files(const std::string& dir) const;

  // Store access: bypasses auth and faults, but bumps resourceVersions and feeds watches like the API.
  // `resource` is "secrets", "ingresses", "leases", ... or qualified "events.events.k8s.io".
  std::optional<nlohmann::json> get(std::string_view resource, std::string_view ns, std::string_view name) const;
  std::vector<nlohmann::json> list(std::string_view resource, std::string_view ns = "") const;
  nlohmann::json put(std::string_view resource, const nlohmann::json& object);  // create or replace
  bool remove(std::string_view resource, std::string_view ns, std::string_view name);
  std::uint64_t resource_version() const;

  // Faults (the control port exposes the same operations, see README.md).
  void drop_watches();
  void fail_next(const FailRule& rule);
  void set_latency(std::chrono::milliseconds latency, const std::string& method = ".*", const std::string& path = ".*");
  void expire_next_watches(int count = 1);
  void conflict_next_updates(int count, int every = 1);
  void clear_faults();
  // Simulated restart: wipes the store (default namespaces come back), drops every watch, forgets the
  // watch window. restart_resource_version=false keeps counting (resuming watches get 410).
  void reset(bool restart_resource_version = false);
  // Appended after each request is handled: its effect on the store is visible a moment before its entry.
  std::vector<RequestLogEntry> request_log() const;
  void clear_request_log();
  std::size_t open_watches() const;

  // The control API as a function: (method, path, body JSON text) -> (status, body JSON text).
  std::pair<int, std::string> control(const std::string& method, const std::string& path, const std::string& body);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace acme_sidecar::fake_apiserver
