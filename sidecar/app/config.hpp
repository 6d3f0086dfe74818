#pragma once
// The sidecar's configuration: every flag of docs (design "CLI and names"), each with an environment
// twin ACME_SIDECAR_<FLAG_IN_UPPER_SNAKE>. Parsing and validation live here so they are testable
// without starting anything; main only acts on the result.
#include <optional>
#include <string>
#include <vector>

#include "core/backoff.hpp"
#include "core/clock.hpp"

namespace acme_sidecar::app {

struct HostPort {
  std::string host;  // empty = all interfaces
  int port = 0;
  std::string str() const;
};

// Parses "127.0.0.1:8089", ":9402", "[::1]:80", "localhost:80". Throws core::Error(Config).
HostPort parse_host_port(const std::string& text);
bool is_loopback_host(const std::string& host);

struct Config {
  enum class Mode { Run, Issue, Help, Version };
  Mode mode = Mode::Run;
  std::string help_text;  // for Mode::Help

  // ACME
  std::string acme_directory;  // resolved URL (presets expanded)
  std::string acme_email;
  std::string acme_ca_bundle;
  std::string acme_eab_kid;
  std::string acme_eab_hmac_file;
  std::string acme_profile;
  std::string acme_preferred_chain;
  std::string key_algorithm = "ecdsa-p256";

  // Kubernetes
  std::string kubeconfig;
  std::string kube_context;
  std::string namespace_;
  std::string pod_name;
  std::string watch_namespace;
  std::string ingress_class = "nginx";
  bool watch_ingress_without_class = false;
  bool require_opt_in = false;
  bool owner_references = false;
  bool leader_elect = true;
  std::string lease_name = "acme-sidecar";
  core::Duration lease_duration = std::chrono::seconds(15);
  core::Duration lease_renew_deadline = std::chrono::seconds(10);
  core::Duration lease_retry_period = std::chrono::seconds(2);

  // Policy and scheduling
  double renew_before_fraction = 1.0 / 3.0;
  std::string failure_backoff_text = "1m,10m,100m,24h";
  core::BackoffPolicy failure_backoff;
  core::Duration rescan_interval = std::chrono::hours(1);
  core::Duration ari_check_interval = std::chrono::hours(12);
  core::Duration served_probe_interval = std::chrono::minutes(5);
  int max_concurrent_issuances = 4;
  bool self_check = true;

  // Listeners and probes
  HostPort challenge_listen{"127.0.0.1", 8089};
  HostPort metrics_listen{"", 9402};
  HostPort controller_http{"127.0.0.1", 80};
  HostPort controller_https{"127.0.0.1", 443};
  std::string log_level = "info";

  // One-shot `issue` subcommand
  std::vector<std::string> issue_domains;
  std::string issue_out_dir;
};

// Outcome of parsing argv: either a Config or an exit code with a message for the user.
struct ParseResult {
  std::optional<Config> config;
  int exit_code = 0;
  std::string message;  // printed to stdout for exit 0 (help/version), stderr otherwise
};

ParseResult parse_config(int argc, const char* const* argv, const std::string& version_line);

}  // namespace acme_sidecar::app
