#include "app/oneshot.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "acme/account_store.hpp"
#include "acme/client.hpp"
#include "challenge/responder.hpp"
#include "challenge/store.hpp"
#include "core/error.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"
#include "http/curl_client.hpp"

namespace acme_sidecar::app {

namespace {
struct StorePublisher final : acme::ChallengePublisher {
  challenge::InMemoryChallengeStore& store;
  explicit StorePublisher(challenge::InMemoryChallengeStore& s) : store(s) {}
  void publish(const std::string& t, const std::string& ka, const acme::ChallengeContext&) override { store.put(t, ka); }
  void unpublish(const std::string& t) override { store.remove(t); }
};

// Writes `content` to `path` with `mode` through a temporary file and rename, so a reader never sees a
// half-written key or a key with wider permissions.
void write_atomically(const std::filesystem::path& path, const std::string& content, mode_t mode) {
  auto tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw core::Error(core::ErrorKind::Config, "cannot write", {{"path", tmp.string()}});
    ::chmod(tmp.c_str(), mode);
    out << content;
    out.flush();
    if (!out) throw core::Error(core::ErrorKind::Config, "cannot write", {{"path", tmp.string()}});
  }
  ::chmod(tmp.c_str(), mode);
  std::filesystem::rename(tmp, path);
}
}  // namespace

int run_oneshot(const Config& cfg, core::Logger log, std::stop_token stop) {
  try {
    std::filesystem::create_directories(cfg.issue_out_dir);
    core::SystemClock clock;
    challenge::InMemoryChallengeStore store;
    StorePublisher publisher(store);
    challenge::ResponderOptions ropts;
    ropts.listen = cfg.challenge_listen.str();
    ropts.allow_non_loopback = true;  // one-shot mode may answer the CA directly on a public port
    challenge::Responder responder(store, ropts, log.with("component", "responder"));

    http::TlsOptions tls;
    tls.ca_file = cfg.acme_ca_bundle;
    http::CurlClient http(tls);
    // The account key is kept beside the certificate so repeated runs reuse the account.
    acme::FileAccountKeyStore keys(std::filesystem::path(cfg.issue_out_dir) / "account.key");
    acme::ClientOptions opts;
    opts.directory_url = cfg.acme_directory;
    if (!cfg.acme_email.empty()) opts.contact.push_back("mailto:" + cfg.acme_email);
    opts.preferred_chain = cfg.acme_preferred_chain;
    if (!cfg.acme_eab_kid.empty()) {
      std::ifstream in(cfg.acme_eab_hmac_file);
      std::string hmac;
      std::getline(in, hmac);
      opts.eab = acme::ExternalAccountBinding{cfg.acme_eab_kid, hmac};
    }
    acme::AcmeClient client(http, clock, log.with("component", "acme"), keys, opts);

    acme::IssueRequest request;
    for (const auto& d : cfg.issue_domains) request.names.push_back(d);
    request.key = crypto::PrivateKey::generate(crypto::parse_key_algorithm(cfg.key_algorithm));
    if (!cfg.acme_profile.empty()) request.profile = cfg.acme_profile;
    log.info("issuing", {{"names", std::to_string(request.names.size())}, {"directory", cfg.acme_directory}});
    auto issued = client.issue(request, publisher, stop);

    auto dir = std::filesystem::path(cfg.issue_out_dir);
    write_atomically(dir / "tls.key", request.key->to_pkcs8_pem(), 0600);
    write_atomically(dir / "tls.crt", issued.chain_pem, 0644);
    auto leaf = crypto::parse_pem_chain(issued.chain_pem).front();
    log.info("issued", {{"out", dir.string()},
                        {"subject", leaf.subject_cn()},
                        {"issuer", leaf.issuer_cn()},
                        {"serial", leaf.serial_hex()}});
    return 0;
  } catch (const core::Error& e) {
    log.error("issuance failed", {{"error", e.what()}});
    return 1;
  } catch (const std::exception& e) {
    log.error("issuance failed", {{"error", e.what()}});
    return 1;
  }
}

}  // namespace acme_sidecar::app
