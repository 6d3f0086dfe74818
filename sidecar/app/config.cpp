#include "app/config.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "acme/oneshot.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace acme_sidecar::app {

using core::Error;
using core::ErrorKind;

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

HostPort parse_host_port(const std::string& text) {
  auto fail = [&](const std::string& why) {
    return Error(ErrorKind::Config, why + " (want HOST:PORT, e.g. 127.0.0.1:8089 or :9402)", {{"value", text}});
  };
  HostPort hp;
  std::string port_part;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw fail("bad address");
    hp.host = text.substr(1, close - 1);
    port_part = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw fail("missing port");
    hp.host = text.substr(0, colon);
    if (hp.host.find(':') != std::string::npos) throw fail("IPv6 addresses need brackets");
    port_part = text.substr(colon + 1);
  }
  if (port_part.empty() || port_part.size() > 5 ||
      !std::all_of(port_part.begin(), port_part.end(), [](unsigned char c) { return std::isdigit(c); })) {
    throw fail("bad port");
  }
  hp.port = std::stoi(port_part);
  if (hp.port > 65535) throw fail("port out of range");
  return hp;
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

const std::vector<std::string> kKeyAlgorithms = {"ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"};

// Validation failure naming the flag, turned into one line and exit status 2.
struct FlagError {
  std::string flag;
  std::string message;
};

core::Duration duration_flag(const std::string& flag, const std::string& text) {
  try {
    auto d = core::parse_duration(text);
    if (d <= core::Duration::zero()) throw FlagError{flag, "must be positive"};
    return d;
  } catch (const Error& e) {
    throw FlagError{flag, e.message() + ": " + text};
  }
}

HostPort address_flag(const std::string& flag, const std::string& text) {
  try {
    return parse_host_port(text);
  } catch (const Error& e) {
    throw FlagError{flag, e.message() + ": " + text};
  }
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

ParseResult parse_config(int argc, const char* const* argv, const std::string& version_line) {
  Config c;
  CLI::App app{"acme-sidecar: automatic ACME (RFC 8555) certificates for the Ingresses of an ingress controller.\n"
               "Runs beside the controller in its pod; every flag has an environment twin ACME_SIDECAR_<FLAG>.",
               "acme-sidecar"};
  app.option_defaults()->always_capture_default();
  app.get_formatter()->column_width(44);
  bool show_version = false;
  app.add_flag("--version", show_version, "Print version and git revision, then exit");

  std::string failure_backoff = c.failure_backoff_text;
  std::string rescan = "1h", ari = "12h", probe = "5m", lease_duration = "15s", lease_renew = "10s",
              lease_retry = "2s";
  std::string challenge_listen = "127.0.0.1:8089", metrics_listen = ":9402", controller_http = "127.0.0.1:80",
              controller_https = "127.0.0.1:443";

  auto env = [](const std::string& flag) {
    std::string name = "ACME_SIDECAR_";
    for (char ch : flag) name += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return name;
  };
  auto add = [&](CLI::App& target, const std::string& flag, auto& var, const std::string& help) {
    return target.add_option("--" + flag, var, help)->envname(env(flag));
  };
  auto add_flag = [&](CLI::App& target, const std::string& flag, bool& var, const std::string& help) {
    return target.add_flag("--" + flag + ",!--no-" + flag, var, help + (var ? " (default: true)" : " (default: false)"))
        ->envname(env(flag));
  };

  // Options shared by the daemon and the one-shot subcommand.
  auto add_acme = [&](CLI::App& target) {
    add(target, "acme-directory", c.acme_directory,
        "ACME directory URL, or a preset: letsencrypt, letsencrypt-staging (required)");
    add(target, "acme-email", c.acme_email, "Account contact e-mail");
    add(target, "acme-ca-bundle", c.acme_ca_bundle, "Extra CA bundle (PEM) trusted for TLS to the CA");
    add(target, "acme-eab-kid", c.acme_eab_kid, "External Account Binding key id (ZeroSSL, Google, private CAs)");
    add(target, "acme-eab-hmac-file", c.acme_eab_hmac_file, "File holding the base64url EAB HMAC key");
    add(target, "acme-profile", c.acme_profile, "ACME profile to request (e.g. classic, tlsserver, shortlived)");
    add(target, "acme-preferred-chain", c.acme_preferred_chain, "Issuer common name of the preferred chain");
    add(target, "key-algorithm", c.key_algorithm, "Certificate key: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096");
    add(target, "log-level", c.log_level, "debug, info, warn or error");
  };
  add_acme(app);
  add(app, "kubeconfig", c.kubeconfig, "Kubeconfig file (default: in-cluster, else $KUBECONFIG)");
  add(app, "kube-context", c.kube_context, "Kubeconfig context (default: current-context)");
  add(app, "namespace", c.namespace_, "Own namespace (default: service-account namespace file or POD_NAMESPACE)");
  add(app, "pod-name", c.pod_name, "Own identity for leader election (default: POD_NAME, else hostname)");
  add(app, "watch-namespace", c.watch_namespace, "Only watch Ingresses in this namespace (default: all)");
  add(app, "ingress-class", c.ingress_class, "Ingress class whose Ingresses are managed");
  add_flag(app, "watch-ingress-without-class", c.watch_ingress_without_class, "Also manage class-less Ingresses");
  add_flag(app, "require-opt-in", c.require_opt_in,
           "Only Ingresses annotated acme-sidecar.io/enabled=true or kubernetes.io/tls-acme=true");
  add_flag(app, "owner-references", c.owner_references, "Make each Secret owned by its Ingress");
  add_flag(app, "leader-elect", c.leader_elect, "Elect one issuing replica through a Lease");
  add(app, "lease-name", c.lease_name, "Name of the Lease in the own namespace");
  add(app, "lease-duration", lease_duration, "Lease duration");
  add(app, "lease-renew-deadline", lease_renew, "Leader gives up after failing to renew for this long");
  add(app, "lease-retry-period", lease_retry, "Interval between lease attempts");
  add(app, "renew-before-fraction", c.renew_before_fraction,
      "Renew when this fraction of the lifetime is left (1/2 for certificates shorter than 10 days)");
  add(app, "failure-backoff", failure_backoff, "Retry schedule after failures (comma-separated durations)");
  add(app, "rescan-interval", rescan, "Full rescan of all certificates");
  add(app, "ari-check-interval", ari, "How often ACME Renewal Information is fetched when the CA offers it");
  add(app, "served-probe-interval", probe, "How often the served certificate is compared to the Secret (first round one interval after start)");
  add(app, "max-concurrent-issuances", c.max_concurrent_issuances, "Certificates issued in parallel");
  add_flag(app, "self-check", c.self_check, "Fetch each token through the controller before asking the CA");
  add(app, "challenge-listen", challenge_listen, "HTTP-01 challenge responder address (loopback only)");
  add(app, "metrics-listen", metrics_listen, "Address for /metrics, /healthz and /readyz");
  add(app, "controller-http", controller_http, "Controller's HTTP address for the self-check");
  add(app, "controller-https", controller_https, "Controller's HTTPS address for the served-certificate probe");

  auto* issue = app.add_subcommand("issue", "Issue one certificate now and write tls.crt / tls.key (0600) to --out");
  add_acme(*issue);
  issue->add_option("--domain", c.issue_domains, "DNS name (repeatable)")->required();
  issue->add_option("--out", c.issue_out_dir, "Output directory")->required();
  issue->add_option("--challenge-listen", challenge_listen, "HTTP-01 responder address");

  ParseResult result;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    result.exit_code = 0;
    result.message = app.help();
    return result;
  } catch (const CLI::CallForAllHelp&) {
    result.exit_code = 0;
    result.message = app.help("", CLI::AppFormatMode::All);
    return result;
  } catch (const CLI::ParseError& e) {
    result.exit_code = 2;
    result.message = std::string("acme-sidecar: ") + e.what() + " (see --help)";
    return result;
  }
  if (show_version) {
    result.exit_code = 0;
    result.message = version_line;
    return result;
  }
  if (issue->parsed()) c.mode = Config::Mode::Issue;

  try {
    if (c.acme_directory.empty()) throw FlagError{"--acme-directory", "is required (a URL or letsencrypt, letsencrypt-staging)"};
    c.acme_directory = acme::resolve_directory_preset(c.acme_directory);
    if (c.acme_directory.rfind("https://", 0) != 0) {
      throw FlagError{"--acme-directory", "must be an https:// URL: " + c.acme_directory};
    }
    if (std::find(kKeyAlgorithms.begin(), kKeyAlgorithms.end(), c.key_algorithm) == kKeyAlgorithms.end()) {
      throw FlagError{"--key-algorithm", "unknown algorithm '" + c.key_algorithm +
                                             "' (want ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072 or rsa-4096)"};
    }
    try {
      core::parse_log_level(c.log_level);
    } catch (const Error& e) {
      throw FlagError{"--log-level", e.message() + ": " + c.log_level};
    }
    if (!c.acme_ca_bundle.empty() && !std::ifstream(c.acme_ca_bundle)) {
      throw FlagError{"--acme-ca-bundle", "cannot read file " + c.acme_ca_bundle};
    }
    if (c.acme_eab_kid.empty() != c.acme_eab_hmac_file.empty()) {
      throw FlagError{c.acme_eab_kid.empty() ? "--acme-eab-kid" : "--acme-eab-hmac-file",
                      "--acme-eab-kid and --acme-eab-hmac-file go together"};
    }
    if (!c.acme_eab_hmac_file.empty() && read_first_line(c.acme_eab_hmac_file).empty()) {
      throw FlagError{"--acme-eab-hmac-file", "cannot read an HMAC key from " + c.acme_eab_hmac_file};
    }
    c.challenge_listen = address_flag("--challenge-listen", challenge_listen);
    if (!is_loopback_host(c.challenge_listen.host) && c.mode == Config::Mode::Run) {
      throw FlagError{"--challenge-listen", "must be a loopback address (127.0.0.0/8 or ::1): " + challenge_listen};
    }
    if (c.mode == Config::Mode::Issue) {
      for (const auto& d : c.issue_domains)
        if (d.empty()) throw FlagError{"--domain", "must not be empty"};
      return ParseResult{c, 0, ""};
    }
    c.metrics_listen = address_flag("--metrics-listen", metrics_listen);
    c.controller_http = address_flag("--controller-http", controller_http);
    c.controller_https = address_flag("--controller-https", controller_https);
    if (!(c.renew_before_fraction > 0.0 && c.renew_before_fraction < 1.0)) {
      throw FlagError{"--renew-before-fraction", "must be between 0 and 1 (exclusive)"};
    }
    try {
      c.failure_backoff = core::BackoffPolicy::parse(failure_backoff);
      c.failure_backoff_text = failure_backoff;
    } catch (const Error& e) {
      throw FlagError{"--failure-backoff", e.message() + ": " + failure_backoff};
    }
    c.rescan_interval = duration_flag("--rescan-interval", rescan);
    c.ari_check_interval = duration_flag("--ari-check-interval", ari);
    c.served_probe_interval = duration_flag("--served-probe-interval", probe);
    c.lease_duration = duration_flag("--lease-duration", lease_duration);
    c.lease_renew_deadline = duration_flag("--lease-renew-deadline", lease_renew);
    c.lease_retry_period = duration_flag("--lease-retry-period", lease_retry);
    if (!(c.lease_duration > c.lease_renew_deadline && c.lease_renew_deadline > c.lease_retry_period)) {
      throw FlagError{"--lease-duration", "need lease-duration > lease-renew-deadline > lease-retry-period"};
    }
    if (c.max_concurrent_issuances < 1 || c.max_concurrent_issuances > 64) {
      throw FlagError{"--max-concurrent-issuances", "must be between 1 and 64"};
    }
    if (c.ingress_class.empty()) throw FlagError{"--ingress-class", "must not be empty"};
    if (c.namespace_.empty()) {
      if (const char* ns = std::getenv("POD_NAMESPACE")) c.namespace_ = ns;
    }
    if (c.pod_name.empty()) {
      if (const char* p = std::getenv("POD_NAME")) c.pod_name = p;
    }
  } catch (const FlagError& e) {
    result.exit_code = 2;
    result.message = "acme-sidecar: " + e.flag + ": " + e.message;
    return result;
  }
  result.config = std::move(c);
  return result;
}

}  // namespace acme_sidecar::app
