#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "app/config.hpp"

using namespace acme_sidecar::app;

namespace {
ParseResult parse(std::vector<std::string> args) {
  args.insert(args.begin(), "acme-sidecar");
  std::vector<const char*> argv;
  for (auto& a : args) argv.push_back(a.c_str());
  return parse_config(static_cast<int>(argv.size()), argv.data(), "acme-sidecar 1.2.3 (revision abc)");
}
}  // namespace

TEST_CASE("defaults follow the documented CLI table") {
  auto r = parse({"--acme-directory", "letsencrypt-staging"});
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.acme_directory == "https://acme-staging-v02.api.letsencrypt.org/directory");
  CHECK(c.key_algorithm == "ecdsa-p256");
  CHECK(c.ingress_class == "nginx");
  CHECK(c.leader_elect);
  CHECK(c.self_check);
  CHECK_FALSE(c.require_opt_in);
  CHECK(c.max_concurrent_issuances == 4);
  CHECK(c.challenge_listen.str() == "127.0.0.1:8089");
  CHECK(c.metrics_listen.host.empty());
  CHECK(c.metrics_listen.port == 9402);
  CHECK(c.rescan_interval == std::chrono::hours(1));
  CHECK(c.failure_backoff.schedule.size() == 4);
  CHECK(c.lease_duration == std::chrono::seconds(15));
}

TEST_CASE("the help lists every flag with its environment twin") {
  auto r = parse({"--help"});
  CHECK_FALSE(r.config);
  CHECK(r.exit_code == 0);
  for (const char* flag :
       {"acme-directory", "acme-email", "acme-ca-bundle", "acme-eab-kid", "acme-eab-hmac-file", "acme-profile",
        "acme-preferred-chain", "key-algorithm", "kubeconfig", "namespace", "pod-name", "watch-namespace",
        "ingress-class", "watch-ingress-without-class", "require-opt-in", "owner-references", "leader-elect",
        "lease-name", "renew-before-fraction", "failure-backoff", "rescan-interval", "max-concurrent-issuances",
        "challenge-listen", "metrics-listen", "controller-http", "controller-https", "log-level"}) {
    std::string f(flag);
    CAPTURE(f);
    CHECK(r.message.find("--" + f) != std::string::npos);
    std::string env = "ACME_SIDECAR_";
    for (char ch : f) env += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
    CHECK(r.message.find(env) != std::string::npos);
  }
  CHECK(r.message.find("issue") != std::string::npos);
}

TEST_CASE("the version flag prints version and revision") {
  auto r = parse({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.message == "acme-sidecar 1.2.3 (revision abc)");
}

TEST_CASE("invalid configuration exits 2 with one line naming the flag") {
  auto [args, flag] = GENERATE(table<std::vector<std::string>, std::string>({
      {std::vector<std::string>{}, "--acme-directory"},
      {{"--acme-directory", "http://insecure.example/dir"}, "--acme-directory"},
      {{"--acme-directory", "letsencrypt", "--key-algorithm", "dsa"}, "--key-algorithm"},
      {{"--acme-directory", "letsencrypt", "--failure-backoff", "10m,1m"}, "--failure-backoff"},
      {{"--acme-directory", "letsencrypt", "--rescan-interval", "soon"}, "--rescan-interval"},
      {{"--acme-directory", "letsencrypt", "--renew-before-fraction", "1.5"}, "--renew-before-fraction"},
      {{"--acme-directory", "letsencrypt", "--challenge-listen", "0.0.0.0:8089"}, "--challenge-listen"},
      {{"--acme-directory", "letsencrypt", "--challenge-listen", "127.0.0.1"}, "--challenge-listen"},
      {{"--acme-directory", "letsencrypt", "--metrics-listen", ":99999"}, "--metrics-listen"},
      {{"--acme-directory", "letsencrypt", "--max-concurrent-issuances", "0"}, "--max-concurrent-issuances"},
      {{"--acme-directory", "letsencrypt", "--log-level", "chatty"}, "--log-level"},
      {{"--acme-directory", "letsencrypt", "--acme-eab-kid", "kid"}, "--acme-eab"},
      {{"--acme-directory", "letsencrypt", "--acme-ca-bundle", "/nonexistent/ca.pem"}, "--acme-ca-bundle"},
      {{"--acme-directory", "letsencrypt", "--lease-duration", "5s"}, "--lease-duration"},
      {{"--acme-directory", "letsencrypt", "--no-such-flag"}, "--no-such-flag"},
  }));
  CAPTURE(args);
  auto r = parse(args);
  CHECK_FALSE(r.config);
  CHECK(r.exit_code == 2);
  CHECK(r.message.find(flag) != std::string::npos);
  CHECK(r.message.find('\n') == std::string::npos);
}

TEST_CASE("environment twins set flags") {
  setenv("ACME_SIDECAR_ACME_DIRECTORY", "https://ca.example/dir", 1);
  setenv("ACME_SIDECAR_INGRESS_CLASS", "haproxy", 1);
  setenv("ACME_SIDECAR_LEADER_ELECT", "false", 1);
  auto r = parse({});
  unsetenv("ACME_SIDECAR_ACME_DIRECTORY");
  unsetenv("ACME_SIDECAR_INGRESS_CLASS");
  unsetenv("ACME_SIDECAR_LEADER_ELECT");
  REQUIRE(r.config);
  CHECK(r.config->acme_directory == "https://ca.example/dir");
  CHECK(r.config->ingress_class == "haproxy");
  CHECK_FALSE(r.config->leader_elect);
}

TEST_CASE("issue subcommand collects domains and output directory") {
  auto r = parse({"issue", "--acme-directory", "https://127.0.0.1:14000/dir", "--domain", "a.example", "--domain",
                  "b.example", "--out", "/tmp/x", "--challenge-listen", "127.0.0.1:5002"});
  REQUIRE(r.config);
  CHECK(r.config->mode == Config::Mode::Issue);
  CHECK(r.config->issue_domains == std::vector<std::string>{"a.example", "b.example"});
  CHECK(r.config->issue_out_dir == "/tmp/x");
  CHECK(r.config->challenge_listen.port == 5002);
  auto missing = parse({"issue", "--acme-directory", "letsencrypt", "--out", "/tmp/x"});
  CHECK(missing.exit_code == 2);
}

TEST_CASE("parse_host_port") {
  CHECK(parse_host_port("[::1]:80").host == "::1");
  CHECK(parse_host_port("[::1]:80").str() == "[::1]:80");
  CHECK(parse_host_port("localhost:8089").port == 8089);
  CHECK_THROWS(parse_host_port("::1:80"));
  CHECK_THROWS(parse_host_port("host:"));
  CHECK_THROWS(parse_host_port("host:8o"));
  CHECK(is_loopback_host("127.0.0.2"));
  CHECK_FALSE(is_loopback_host("10.0.0.1"));
}
