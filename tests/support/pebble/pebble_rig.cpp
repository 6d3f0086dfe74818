#include "tests/support/pebble/pebble_rig.hpp"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "crypto/key.hpp"
#include "crypto/mint.hpp"
#include "http/curl_client.hpp"
#include "tests/support/process.hpp"

namespace acme_sidecar::testing {

namespace {
std::string tail(const std::string& s, std::size_t n = 4000) { return s.size() > n ? s.substr(s.size() - n) : s; }
}  // namespace

PebbleRig::PebbleRig(PebbleOptions options) : options_(std::move(options)), dir_(std::make_unique<TempDir>("pebble")) {
  // Throw-away serving CA and a 127.0.0.1/localhost certificate for Pebble's HTTPS listeners.
  auto now = std::chrono::system_clock::now();
  auto ca_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  crypto::CertificateSpec ca_spec;
  ca_spec.common_name = "acme-sidecar test serving CA";
  ca_spec.is_ca = true;
  ca_spec.not_before = now - std::chrono::hours(1);
  ca_spec.not_after = now + std::chrono::hours(48);
  auto ca = crypto::make_self_signed(ca_key, ca_spec);
  auto key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  crypto::CertificateSpec spec;
  spec.dns_names = {"localhost"};
  spec.ip_addresses = {"127.0.0.1"};
  spec.not_before = ca_spec.not_before;
  spec.not_after = ca_spec.not_after;
  auto cert = crypto::issue_certificate(ca_key, ca, key.public_key(), spec);
  write_file(*dir_ / "ca.pem", ca.to_pem());
  write_file(*dir_ / "cert.pem", cert.to_pem() + ca.to_pem());
  write_file(*dir_ / "key.pem", key.to_pkcs8_pem());

  nlohmann::json p;
  p["listenAddress"] = "127.0.0.1:" + std::to_string(options_.listen_port);
  p["managementListenAddress"] = "127.0.0.1:" + std::to_string(options_.management_port);
  p["certificate"] = (*dir_ / "cert.pem").string();
  p["privateKey"] = (*dir_ / "key.pem").string();
  p["httpPort"] = options_.http_port;
  p["tlsPort"] = options_.tls_port;
  p["ocspResponderURL"] = "";
  p["externalAccountBindingRequired"] = options_.eab_required;
  if (!options_.eab_keys.empty()) p["externalAccountMACKeys"] = options_.eab_keys;
  if (!options_.domain_blocklist.empty()) p["domainBlocklist"] = options_.domain_blocklist;
  if (options_.certificate_validity_seconds) p["certificateValidityPeriod"] = *options_.certificate_validity_seconds;
  write_file(*dir_ / "pebble-config.json", nlohmann::json{{"pebble", p}}.dump(2));

  Subprocess::Options dns;
  dns.argv = {"pebble-challtestsrv",
              "-dns01", "127.0.0.1:" + std::to_string(options_.dns_port),
              "-http01", "", "-https01", "", "-tlsalpn01", "",
              "-management", "127.0.0.1:" + std::to_string(options_.challtestsrv_management_port),
              "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""};
  dns.log_file = *dir_ / "challtestsrv.log";
  dns_ = std::make_unique<Subprocess>(dns);
  if (!wait_for_port("127.0.0.1", options_.challtestsrv_management_port, options_.start_timeout))
    throw std::runtime_error("pebble-challtestsrv did not start:\n" + tail(dns_->log()));
  start_pebble();
}

PebbleRig::~PebbleRig() {
  if (pebble_) pebble_->kill();
  if (dns_) dns_->kill();
}

void PebbleRig::start_pebble() {
  ++generation_;
  Subprocess::Options o;
  o.argv = {"pebble", "-config", (*dir_ / "pebble-config.json").string(), "-dnsserver",
            "127.0.0.1:" + std::to_string(options_.dns_port)};
  o.env = {{"PEBBLE_VA_NOSLEEP", "1"},
           {"PEBBLE_WFE_NONCEREJECT", std::to_string(options_.nonce_reject_percent)},
           {"PEBBLE_AUTHZREUSE", std::to_string(options_.authz_reuse_percent)}};
  for (const auto& e : options_.extra_env) o.env.push_back(e);
  // One log per start so counts stay per generation; log_path() names the current one.
  o.log_file = *dir_ / ("pebble-" + std::to_string(generation_) + ".log");
  pebble_.reset();
  pebble_ = std::make_unique<Subprocess>(o);
  if (!wait_for_port("127.0.0.1", options_.listen_port, options_.start_timeout) ||
      !wait_for_port("127.0.0.1", options_.management_port, options_.start_timeout))
    throw std::runtime_error("pebble did not start:\n" + tail(pebble_->log()));
}

std::string PebbleRig::directory_url() const {
  return "https://127.0.0.1:" + std::to_string(options_.listen_port) + "/dir";
}
std::string PebbleRig::ca_bundle_path() const { return (*dir_ / "ca.pem").string(); }
std::filesystem::path PebbleRig::log_path() const { return *dir_ / ("pebble-" + std::to_string(generation_) + ".log"); }
std::filesystem::path PebbleRig::work_dir() const { return dir_->path(); }
std::string PebbleRig::log() const { return read_file(log_path()); }
std::size_t PebbleRig::count_log(const std::string& needle) const { return count_in_file(log_path(), needle); }

std::string PebbleRig::root_pem() const {
  http::TlsOptions tls;
  tls.ca_file = ca_bundle_path();
  http::CurlClient client(tls);
  http::Request r;
  r.url = "https://127.0.0.1:" + std::to_string(options_.management_port) + "/roots/0";
  auto resp = client.send(r);
  if (resp.status != 200) throw std::runtime_error("pebble /roots/0 answered " + std::to_string(resp.status));
  return resp.body;
}

void PebbleRig::stop() {
  if (pebble_) pebble_->stop(std::chrono::milliseconds(5000));
}
void PebbleRig::kill() {
  if (pebble_) pebble_->kill();
}
void PebbleRig::restart() {
  if (pebble_ && pebble_->running()) pebble_->kill();
  start_pebble();
}
bool PebbleRig::running() const { return pebble_ && pebble_->running(); }

}  // namespace acme_sidecar::testing
