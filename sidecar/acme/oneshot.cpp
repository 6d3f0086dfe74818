#include "acme/oneshot.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "acme/account_store.hpp"
#include "challenge/responder.hpp"
#include "challenge/store.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "crypto/key.hpp"
#include "http/http1_client.hpp"

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;

std::string resolve_directory_preset(std::string_view d) {
  if (d == "letsencrypt") return "https://acme-v02.api.letsencrypt.org/directory";
  if (d == "letsencrypt-staging") return "https://acme-staging-v02.api.letsencrypt.org/directory";
  return std::string(d);
}

void StorePublisher::publish(const std::string& token, const std::string& ka, const ChallengeContext&) {
  store_.put(token, ka);
}
void StorePublisher::unpublish(const std::string& token) { store_.remove(token); }

void write_file_atomic(const std::filesystem::path& path, const std::string& content, unsigned mode) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw Error(ErrorKind::Config, std::string("cannot write: ") + std::strerror(errno), {{"path", tmp.string()}});
  std::size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw Error(ErrorKind::Config, std::string("cannot write: ") + std::strerror(errno), {{"path", tmp.string()}});
    }
    off += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, mode);  // the umask must not widen or narrow what we promise
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Config, "cannot rename: " + ec.message(), {{"path", path.string()}});
}

namespace {

std::string read_secret_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(ErrorKind::Config, "cannot read file", {{"path", p.string()}});
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.erase(s.begin());
  return s;
}

std::vector<std::string> normalise(const std::vector<std::string>& in) {
  std::set<std::string> out;
  for (auto n : in) {
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!n.empty() && n.back() == '.') n.pop_back();
    if (n.empty()) throw Error(ErrorKind::Config, "empty --domain");
    if (n.find('*') != std::string::npos)
      throw Error(ErrorKind::Config, "wildcard names cannot be issued with http-01", {{"domain", n}});
    out.insert(n);
  }
  return {out.begin(), out.end()};
}

}  // namespace

int run_issue(const OneShotOptions& o, core::Logger& logger, std::stop_token stop, Observer* observer) {
  core::Logger log = logger.with("mode", "issue");
  try {
    if (o.domains.empty()) throw Error(ErrorKind::Config, "at least one --domain is required");
    if (o.out_dir.empty()) throw Error(ErrorKind::Config, "--out is required");
    if (o.acme_directory.empty()) throw Error(ErrorKind::Config, "--acme-directory is required");
    auto names = normalise(o.domains);
    auto alg = crypto::parse_key_algorithm(o.key_algorithm);
    std::filesystem::create_directories(o.out_dir);

    http::TlsOptions tls;
    tls.ca_file = o.acme_ca_bundle;
    http::Http1Client http(tls);  // one client: connections to the CA are reused
    core::SystemClock clock;
    FileAccountKeyStore keys(o.account_key_file.empty() ? o.out_dir / "account.key" : o.account_key_file);

    ClientOptions co;
    co.directory_url = resolve_directory_preset(o.acme_directory);
    if (!o.acme_email.empty()) co.contact = {"mailto:" + o.acme_email};
    if (!o.acme_eab_kid.empty() || !o.acme_eab_hmac_file.empty()) {
      if (o.acme_eab_kid.empty() || o.acme_eab_hmac_file.empty())
        throw Error(ErrorKind::Config, "--acme-eab-kid and --acme-eab-hmac-file go together");
      co.eab = ExternalAccountBinding{o.acme_eab_kid, read_secret_file(o.acme_eab_hmac_file)};
    }
    co.preferred_chain = o.acme_preferred_chain;
    co.order_timeout = o.timeout;
    co.poll_interval = o.poll_interval;
    AcmeClient client(http, clock, log, keys, co, observer);

    challenge::InMemoryChallengeStore store;
    challenge::ResponderOptions ro;
    ro.listen = o.challenge_listen;
    ro.allow_non_loopback = o.allow_non_loopback_listen;
    challenge::Responder responder(store, ro, log);
    StorePublisher publisher(store);
    log.info("challenge responder listening", {{"listen", o.challenge_listen}});

    IssueRequest req;
    req.names = names;
    req.key = crypto::PrivateKey::generate(alg);
    if (!o.acme_profile.empty()) req.profile = o.acme_profile;
    IssuedCertificate cert = client.issue(req, publisher, stop);

    // Key first: a tls.crt never exists without its key.
    write_file_atomic(o.out_dir / "tls.key", req.key->to_pkcs8_pem(), 0600);
    write_file_atomic(o.out_dir / "tls.crt", cert.chain_pem, 0644);
    log.info("wrote certificate", {{"out", o.out_dir.string()}, {"names", std::to_string(names.size())},
                                   {"root", cert.root_name}});
    return 0;
  } catch (const Error& e) {
    log.error("issuance failed", {{"error", e.what()}, {"kind", std::string(core::to_string(e.kind()))}});
  } catch (const std::exception& e) {
    log.error("issuance failed", {{"error", e.what()}});
  }
  return 1;
}

}  // namespace acme_sidecar::acme
