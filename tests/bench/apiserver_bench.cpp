// bench-apiserver --dir DIR --port PORT [--count N] [--issuer URL] [--class nginx]
// The project's fake API server in process, preloaded with N Ingresses (namespace "bench", class
// --class, one host each) and N valid managed kubernetes.io/tls Secrets minted from a throw-away CA,
// exactly as the sidecar's reconciler writes them (label, names/issuer/not-after/ingresses
// annotations, leaf + CA chain, PKCS#8 key). A restarted sidecar must find nothing to do.
// Writes DIR/{ca.crt,kubeconfig,...,ready} like `fake-apiserver`; serves until SIGTERM/SIGINT.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/mint.hpp"
#include "crypto/x509.hpp"
#include "fake_apiserver.hpp"

namespace {
namespace crypto = acme_sidecar::crypto;
using nlohmann::json;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "GET secrets", "GET secrets (list)", "POST events", ... from an API path: the figure the throughput
// phase reports as Kubernetes requests per certificate.
std::string request_kind(const acme_sidecar::fake_apiserver::RequestLogEntry& e) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= e.path.size()) {
    auto slash = e.path.find('/', start);
    parts.push_back(e.path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  // /api/v1/... or /apis/<group>/<version>/...
  std::size_t i = !parts.empty() && parts[0] == "apis" ? 3 : 2;
  if (i < parts.size() && parts[i] == "namespaces" && i + 2 < parts.size()) i += 2;
  if (i >= parts.size()) return e.method + " " + e.path;
  std::string kind = e.method + " " + parts[i];
  if (i + 2 < parts.size()) kind += "/" + parts[i + 2];  // subresource
  if (i + 1 >= parts.size() && e.method == "GET") kind += e.watch ? " (watch)" : " (list)";
  return kind + " " + std::to_string(e.status);
}
}  // namespace

int main(int argc, char** argv) {
  std::string dir, issuer = "https://127.0.0.1:14000/dir", cls = "nginx";
  int port = 0, count = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--dir") dir = v;
    else if (a == "--port") port = std::atoi(v.c_str());
    else if (a == "--count") count = std::atoi(v.c_str());
    else if (a == "--issuer") issuer = v;
    else if (a == "--class") cls = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: %s --dir DIR --port PORT [--count N] [--issuer URL] [--class C]\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  acme_sidecar::fake_apiserver::Options o;
  o.port = port;
  o.watch_queue_limit = 100000;  // 1,000 Ingresses created at once must not close the sidecar's watch
  o.watch_window = 100000;
  // Nagle on, as in every figure of RESULTS.md: with TCP_NODELAY the faster burst deadlocks Pebble 2.4
  // far more often (tests/bench/README.md, "Not kept: TCP_NODELAY").
  o.tcp_nodelay = false;
  acme_sidecar::fake_apiserver::FakeApiServer api(o);
  api.start();
  for (const char* ns : {"bench", "acme-sidecar"}) {
    api.put("namespaces", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }

  auto t0 = std::chrono::steady_clock::now();
  if (count > 0) {
    auto now = std::chrono::system_clock::now();
    auto ca_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
    crypto::CertificateSpec ca_spec;
    ca_spec.common_name = "bench CA";
    ca_spec.not_before = now - std::chrono::hours(1);
    ca_spec.not_after = now + std::chrono::hours(24 * 365);
    ca_spec.is_ca = true;
    auto ca = crypto::make_self_signed(ca_key, ca_spec);
    // One leaf key for all: signing is what costs; the sidecar only checks that key and leaf match.
    auto leaf_key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
    auto key_b64 = crypto::base64_encode(leaf_key.to_pkcs8_pem());
    auto ca_pem = ca.to_pem();
    auto pub = leaf_key.public_key();
    for (int i = 0; i < count; ++i) {
      std::string n = std::to_string(i), host = "s" + n + ".bench.example";
      auto not_before = now - std::chrono::hours(1);
      auto validity = std::chrono::hours(24 * 90);
      auto leaf = crypto::issue_certificate(ca_key, ca, pub, {host}, not_before, validity);
      api.put("ingresses",
              json{{"apiVersion", "networking.k8s.io/v1"},
                   {"kind", "Ingress"},
                   {"metadata", {{"name", "ing-" + n}, {"namespace", "bench"}}},
                   {"spec",
                    {{"ingressClassName", cls},
                     {"tls", json::array({{{"hosts", {host}}, {"secretName", "tls-" + n}}})},
                     {"rules", json::array({{{"host", host},
                                             {"http",
                                              {{"paths", json::array({{{"path", "/"},
                                                                       {"pathType", "Prefix"},
                                                                       {"backend",
                                                                        {{"service",
                                                                          {{"name", "web"},
                                                                           {"port", {{"number", 80}}}}}}}}})}}}}})}}}});
      api.put("secrets",
              json{{"apiVersion", "v1"},
                   {"kind", "Secret"},
                   {"type", "kubernetes.io/tls"},
                   {"metadata",
                    {{"name", "tls-" + n},
                     {"namespace", "bench"},
                     {"labels", {{"app.kubernetes.io/managed-by", "acme-sidecar"}}},
                     {"annotations",
                      {{"acme-sidecar.io/names", host},
                       {"acme-sidecar.io/issuer", issuer},
                       {"acme-sidecar.io/not-after", rfc3339(leaf.not_after())},
                       {"acme-sidecar.io/ingresses", "bench/ing-" + n}}}}},
                   {"data",
                    {{"tls.crt", crypto::base64_encode(leaf.to_pem() + ca_pem)}, {"tls.key", key_b64}}}});
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  api.write_files(dir);
  std::printf("preloaded %d Ingresses and Secrets in %.2f s; %s\n", count, secs, api.url().c_str());
  std::fflush(stdout);
  // SIGUSR1 writes DIR/requests.json (requests so far by kind; renamed into place, so a reader that
  // removed it and waits for it to reappear never sees a partial file).
  for (int sig = 0; sigwait(&set, &sig) == 0 && sig == SIGUSR1;) {
    std::map<std::string, int> kinds;
    for (const auto& e : api.request_log()) ++kinds[request_kind(e)];
    std::ofstream(dir + "/requests.json.tmp") << json(kinds).dump(1) << "\n";
    std::rename((dir + "/requests.json.tmp").c_str(), (dir + "/requests.json").c_str());
  }
  api.stop();
  return 0;
}
