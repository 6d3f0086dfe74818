// bench-crypto [iterations]: CPU cost of the per-certificate crypto steps of one issuance (ECDSA P-256),
// the same functions production calls: certificate key generation, PKCS#8 PEM out and in, CSR, JWS
// signing, key authorization, chain parsing and the controller's inspection of tls.crt / tls.key.
// Prints microseconds per call. No processes, no network: run it directly.
//
// bench-crypto --probe SECONDS: signs one JWS about every millisecond for SECONDS and prints the median
// and mean thread CPU per signature. The benchmark harness runs it alone and during the 1,000 burst, in a
// process of its own, to measure how much the machine's load alone inflates CPU time per operation.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "acme/chain.hpp"
#include "acme/jws.hpp"
#include "controller/crypto_inspector.hpp"
#include "crypto/csr.hpp"
#include "crypto/jwk.hpp"
#include "crypto/key.hpp"
#include "crypto/mint.hpp"
#include "crypto/x509.hpp"

using namespace acme_sidecar;
using Clock = std::chrono::steady_clock;

static void measure(const char* what, int n, const std::function<void()>& f) {
  f();  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) f();
  double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / n;
  std::printf("%-52s %9.1f us\n", what, us);
}

static double thread_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

static void sign_once(const crypto::PrivateKey& account) {
  (void)acme::jws_sign(account, "https://ca.example/acct/1", "nonce-nonce-nonce", "https://ca.example/order/1", "");
}

// Thread CPU of the signatures alone, with `between` run before each (not counted).
static void measure_signing(const char* what, int n, const crypto::PrivateKey& account,
                            const std::function<void()>& between) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    between();
    const double t0 = thread_cpu_us();
    sign_once(account);
    us.push_back(thread_cpu_us() - t0);
  }
  std::sort(us.begin(), us.end());
  std::printf("%-52s %9.1f us (thread CPU, median)\n", what, us[us.size() / 2]);
}

// A loopback TCP peer answering each 300-byte request with a JSON document of about 3 KB: the shape of
// a worker's HTTP exchange (blocked in poll, woken by the answer, the body parsed) without curl or TLS.
class LoopbackPeer {
 public:
  LoopbackPeer() {
    const int ls = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (ls < 0 || bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
        getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      std::perror("loopback peer");
      std::exit(1);
    }
    std::string body = "{\"items\":[";
    for (int i = 0; i < 40; ++i) body += std::string(i ? "," : "") + R"({"status":"valid","url":"https://ca.example/x/)" + std::to_string(i) + "\"}";
    reply_ = body + "]}";
    server_ = std::thread([this, ls] {
      const int c = accept(ls, nullptr, nullptr);
      close(ls);
      char buf[512];
      while (c >= 0 && read(c, buf, 300) > 0) {
        if (write(c, reply_.data(), reply_.size()) != static_cast<ssize_t>(reply_.size())) break;
      }
      if (c >= 0) close(c);
    });
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      std::perror("loopback connect");
      std::exit(1);
    }
  }
  ~LoopbackPeer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    server_.join();
  }
  void exchange() {
    const std::string request(300, 'r');
    if (write(fd_, request.data(), request.size()) != static_cast<ssize_t>(request.size())) std::exit(1);
    std::string got;
    char buf[4096];
    while (got.size() < reply_.size()) {
      pollfd p{fd_, POLLIN, 0};
      poll(&p, 1, -1);
      const ssize_t n = read(fd_, buf, sizeof buf);
      if (n <= 0) std::exit(1);
      got.append(buf, static_cast<std::size_t>(n));
    }
    const auto doc = nlohmann::json::parse(got);
    if (!doc.is_object()) std::exit(1);
  }

 private:
  std::string reply_;
  std::thread server_;
  int fd_ = -1;
};

static int probe(double seconds) {
  const auto account = crypto::PrivateKey::from_pem(crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256).to_pkcs8_pem());
  sign_once(account);
  std::vector<double> us;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // idle between signatures, like a worker
    const double t0 = thread_cpu_us();
    sign_once(account);
    us.push_back(thread_cpu_us() - t0);
  }
  if (us.empty()) return 1;
  double sum = 0;
  for (double x : us) sum += x;
  std::sort(us.begin(), us.end());
  std::printf("{\"signatures\": %zu, \"median_us\": %.1f, \"mean_us\": %.1f}\n", us.size(), us[us.size() / 2],
              sum / static_cast<double>(us.size()));
  return 0;
}

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "--probe") return probe(std::atof(argv[2]));
  int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  auto now = std::chrono::system_clock::now();
  auto ca_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto ca = crypto::make_self_signed(ca_key, {"root.bench.example"}, now, now + std::chrono::hours(24 * 365));
  auto key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  auto account = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  std::vector<std::string> names{"s1.bench.example"};
  auto leaf = crypto::issue_certificate(ca_key, ca, key.public_key(), names, now, std::chrono::hours(24 * 90));
  std::string chain = leaf.to_pem() + ca.to_pem();
  std::string key_pem = key.to_pkcs8_pem();
  controller::CryptoInspector inspector;
  controller::CryptoInspector unmemoized(0);

  measure("PrivateKey::generate(ecdsa-p256)", n, [] { crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256); });
  measure("PrivateKey::to_pkcs8_pem", n, [&] { (void)key.to_pkcs8_pem(); });
  measure("PrivateKey::from_pem (PKCS#8)", n, [&] { crypto::PrivateKey::from_pem(key_pem); });
  measure("PrivateKey::public_key", n, [&] { (void)key.public_key(); });
  measure("jwk_thumbprint(account key)", n, [&] { (void)crypto::jwk_thumbprint(account); });
  measure("make_csr (1 name)", n, [&] { crypto::make_csr(key, names); });
  measure("jws_sign (kid, POST-as-GET)", n, [&] {
    (void)acme::jws_sign(account, "https://ca.example/acct/1", "nonce-nonce-nonce", "https://ca.example/order/1", "");
  });
  // The daemon's account key comes from a Secret (PEM, read by the fast EC path), not from generate().
  const auto loaded = crypto::PrivateKey::from_pem(account.to_pkcs8_pem());
  measure("jws_sign, account key read from PEM", n, [&] {
    (void)acme::jws_sign(loaded, "https://ca.example/acct/1", "nonce-nonce-nonce", "https://ca.example/order/1", "");
  });
  measure("parse_pem_chain (leaf + CA)", n, [&] { crypto::parse_pem_chain(chain); });
  measure("key_matches_certificate", n, [&] { (void)crypto::key_matches_certificate(key, leaf); });
  measure("CryptoInspector::inspect, first time (chain + key)", n, [&] { (void)unmemoized.inspect(chain, key_pem); });
  measure("CryptoInspector::inspect, same bytes again", n, [&] { (void)inspector.inspect(chain, key_pem); });

  // The chain check at download, on a Pebble-shaped chain: P-256 leaf + RSA-2048 intermediate, sha256WithRSA.
  auto rsa_root_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::Rsa2048);
  auto rsa_inter_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::Rsa2048);
  crypto::CertificateSpec ca_spec;
  ca_spec.common_name = "Pebble Root CA bench";
  ca_spec.not_before = now;
  ca_spec.not_after = now + std::chrono::hours(24 * 3650);
  ca_spec.is_ca = true;
  auto rsa_root = crypto::make_self_signed(rsa_root_key, ca_spec);
  ca_spec.common_name = "Pebble Intermediate CA bench";
  auto rsa_inter = crypto::issue_certificate(rsa_root_key, rsa_root, rsa_inter_key.public_key(), ca_spec);
  auto pebble_leaf = crypto::issue_certificate(rsa_inter_key, rsa_inter, key.public_key(), names, now,
                                               std::chrono::hours(24 * 90));
  std::string pebble_chain = pebble_leaf.to_pem() + rsa_inter.to_pem();
  auto pub = key.public_key();
  measure("acme::check_chain (Pebble-like: leaf + RSA intermediate)", n,
          [&] { (void)acme::check_chain(pebble_chain, names, pub, {}, now); });

  // In the daemon a worker signs once per CA request, after curl, TLS and JSON work has displaced
  // OpenSSL's code and data from the caches. Evicting them between signatures shows that cost.
  measure_signing("jws_sign, one after another", n, loaded, [] {});
  std::vector<char> other(4 << 20);
  measure_signing("jws_sign, 4 MiB touched + CSR between signatures", n, loaded, [&] {
    for (std::size_t i = 0; i < other.size(); i += 64) other[i] = static_cast<char>(other[i] + 1);
    (void)crypto::make_csr(key, names);
  });
  LoopbackPeer peer;
  measure_signing("jws_sign, a loopback TCP exchange + JSON between", n, loaded, [&] { peer.exchange(); });
  return 0;
}
