// Hostile HTTP on the challenge responder (127.0.0.1:8089) and the metrics port (9402): oversized
// headers and paths, path traversal, invalid methods, slow clients, thousands of concurrent connections.
// A small load generator (raw sockets, bounded in time and count) — the sidecar must not crash, its
// memory stays bounded (VmRSS before/after), and legitimate challenge requests are still answered, both
// directly and through nginx, while a real issuance through Pebble completes under the load.
// RELIABILITY_CONNECTIONS scales the concurrent-connection flood (default 2000).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <iostream>

#include "tests/reliability/hygiene.hpp"
#include "tests/reliability/rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::reliability;
using nlohmann::json;

namespace {

const std::string kToken = "rEl1abIlItyT0kEn_abcdefghijklmnopqrstuvwxyz0";
const std::string kKeyAuthz = kToken + ".AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Fd connect_lo(int port, bool blocking = true) {
  Fd s(::socket(AF_INET, SOCK_STREAM | (blocking ? 0 : SOCK_NONBLOCK), 0));
  timeval tv{5, 0};
  setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) return Fd();
  return s;
}

void send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close early on hostile input: that is fine
    off += static_cast<std::size_t>(n);
  }
}

// Sends `request` on a fresh connection and reads until the server closes or 5 s pass.
// Returns the status code (0: closed without a status line) and the body.
// `half_close`: shut down our sending side after the request (hostile requests; nginx would treat it as
// a client abort, so legitimate requests keep it open and rely on "Connection: close").
std::pair<int, std::string> http_exchange(int port, const std::string& request, bool half_close = true) {
  auto s = connect_lo(port);
  if (s.fd < 0) return {-1, ""};
  send_all(s.fd, request);
  if (half_close) ::shutdown(s.fd, SHUT_WR);
  std::string resp;
  char buf[8192];
  for (;;) {
    auto n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    resp.append(buf, static_cast<std::size_t>(n));
    if (resp.size() > (1u << 20)) break;
  }
  int status = 0;
  if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() >= 12) status = std::atoi(resp.substr(9, 3).c_str());
  auto body_at = resp.find("\r\n\r\n");
  return {status, body_at == std::string::npos ? "" : resp.substr(body_at + 4)};
}

std::string get(const std::string& path, const std::string& host = "127.0.0.1") {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
}

// A legitimate challenge request, directly and through nginx with a real Host header.
bool legit_ok(int challenge_port) {
  auto direct = http_exchange(challenge_port, get("/.well-known/acme-challenge/" + kToken), false);
  auto via_nginx = http_exchange(80, get("/.well-known/acme-challenge/" + kToken, "legit.demo.example"), false);
  auto trim = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  };
  bool ok = direct.first == 200 && trim(direct.second) == kKeyAuthz && via_nginx.first == 200 &&
            trim(via_nginx.second) == kKeyAuthz;
  if (!ok)
    std::cout << "[hostile-http] legitimate request failed: direct " << direct.first << " '" << direct.second.substr(0, 80)
              << "', via nginx " << via_nginx.first << " '" << via_nginx.second.substr(0, 80) << "'\n";
  return ok;
}

}  // namespace

TEST_CASE("hostile HTTP on the challenge and metrics ports: no crash, bounded memory, challenges still answered") {
  // Room for thousands of sockets in this process.
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  const int flood = std::min<int>(env_int("RELIABILITY_CONNECTIONS", 2000), static_cast<int>(rl.rlim_cur) - 200);

  RigOptions o;
  o.leader_elect = true;  // challenges shared through ConfigMaps (a single replica keeps them in memory)
  Rig rig(o);
  // A published challenge, as the leader publishes it (labelled ConfigMap in the sidecar's namespace).
  rig.api().put("configmaps",
                json{{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata",
                      {{"name", "acme-sidecar-challenge-reliability"},
                       {"namespace", "acme-sidecar"},
                       {"labels", {{"acme-sidecar.io/challenge", "true"}, {"app.kubernetes.io/managed-by", "acme-sidecar"}}}}},
                     {"data", {{"token", kToken}, {"keyAuthorization", kKeyAuthz}, {"domain", "legit.demo.example"}}}});
  REQUIRE(testing::poll_until([&] { return legit_ok(8089); }, 30s));
  const pid_t pid = rig.sidecar(0).pid();
  // Warm-up (first connections allocate pools), then the baseline.
  for (int i = 0; i < 50; ++i) http_exchange(8089, get("/.well-known/acme-challenge/" + kToken));
  long rss_before = rss_kib(pid);

  std::map<std::string, std::map<int, int>> answers;  // attack -> status -> count
  int legit_checks = 0, legit_failures = 0;
  auto check_legit = [&] {
    ++legit_checks;
    if (!legit_ok(8089)) ++legit_failures;
  };
  auto t0 = std::chrono::steady_clock::now();
  for (int port : {8089, 9402}) {
    const std::string p = std::to_string(port);
    for (int i = 0; i < 100; ++i) {
      std::string big_header = "GET /.well-known/acme-challenge/" + kToken + " HTTP/1.1\r\nHost: x\r\nX-Big: " +
                               std::string(static_cast<std::size_t>(16 * 1024 * (1 + i % 8)), 'a') + "\r\n\r\n";
      ++answers[p + " oversized header"][http_exchange(port, big_header).first];
      ++answers[p + " oversized path"]
               [http_exchange(port, get("/.well-known/acme-challenge/" + std::string(static_cast<std::size_t>(8192 * (1 + i % 8)), 'A'))).first];
      ++answers[p + " many headers"][http_exchange(port, "GET / HTTP/1.1\r\n" + [&] {
                                       std::string h;
                                       for (int k = 0; k < 2000; ++k) h += "X-H" + std::to_string(k) + ": v\r\n";
                                       return h;
                                     }() + "\r\n").first];
    }
    for (const char* path : {"/.well-known/acme-challenge/../../../../etc/passwd",
                             "/.well-known/acme-challenge/%2e%2e/%2e%2e/etc/passwd",
                             "/.well-known/acme-challenge/..%2f..%2fetc%2fpasswd", "/../../etc/passwd",
                             "/.well-known/acme-challenge/%00", "/.well-known/acme-challenge/" "\xff\xfe",
                             "//etc/passwd", "/metrics/../../etc/shadow", "*", "http://evil.example/x"}) {
      auto [status, body] = http_exchange(port, get(path));
      ++answers[p + " traversal"][status];
      CHECK(body.find("root:") == std::string::npos);
    }
    for (const char* method : {"FOO", "DELETE", "PUT", "TRACE", "CONNECT", "PRI", "G\x01T", "GET\t", ""}) {
      ++answers[p + " invalid method"]
               [http_exchange(port, std::string(method) + " /.well-known/acme-challenge/" + kToken + " HTTP/1.1\r\nHost: x\r\n\r\n").first];
    }
    for (const char* junk : {"\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                             "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc",
                             "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\n"}) {
      ++answers[p + " malformed"][http_exchange(port, junk).first];
    }
    check_legit();
  }

  // Slow clients: 300 connections per port trickling a request one byte at a time.
  {
    std::vector<Fd> slow;
    for (int port : {8089, 9402})
      for (int i = 0; i < 300; ++i) slow.push_back(connect_lo(port, false));
    const std::string partial = "GET /.well-known/acme-challenge/" + kToken + " HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    auto until = std::chrono::steady_clock::now() + 6s;
    std::size_t at = 0;
    while (std::chrono::steady_clock::now() < until) {
      for (auto& s : slow)
        if (s.fd >= 0) (void)::send(s.fd, partial.data() + (at % partial.size()), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ++at;
      check_legit();
      std::this_thread::sleep_for(200ms);  // the trickle's pace (load shape, not synchronisation)
    }
  }

  // Thousands of concurrent connections, held open while legitimate requests go on, and an issuance.
  long rss_peak = 0;
  {
    std::vector<Fd> conns;
    for (int i = 0; i < flood; ++i) conns.push_back(connect_lo(i % 4 == 3 ? 9402 : 8089, false));
    // Half of them send a complete request and never read the answer.
    for (std::size_t i = 0; i < conns.size(); i += 2)
      if (conns[i].fd >= 0) (void)::send(conns[i].fd, get("/.well-known/acme-challenge/" + kToken).data(), 40, MSG_NOSIGNAL | MSG_DONTWAIT);
    rig.apply(ingress_yaml("demo", "under-load", {"under-load.demo.example"}, "under-load-tls"));
    for (int i = 0; i < 5; ++i) check_legit();
    rig.wait_valid("demo", "under-load-tls", {"under-load.demo.example"});
    rss_peak = rss_kib(pid);
  }
  check_legit();
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Memory settles once the load is gone.
  for (int i = 0; i < 50; ++i) http_exchange(8089, get("/.well-known/acme-challenge/" + kToken));
  long rss_after = rss_kib(pid);

  std::cout << "[hostile-http] injected in " << secs << " s: per port 100 oversized headers (16..128 KiB), 100"
            << " oversized paths (8..64 KiB), 100 requests with 2000 headers, 10 traversal paths, 9 bad methods, 6"
            << " malformed requests; 600 slow clients for 6 s; " << flood << " concurrent connections\n"
            << "[hostile-http] observed answers (status: count; 0 = closed without answer):\n";
  for (const auto& [attack, by_status] : answers) {
    std::cout << "  " << attack << ":";
    for (const auto& [s, n] : by_status) std::cout << " " << s << "x" << n;
    std::cout << "\n";
  }
  std::cout << "[hostile-http] observed: VmRSS " << rss_before << " KiB before, " << rss_peak << " KiB at peak, "
            << rss_after << " KiB after; legitimate challenge checks " << legit_checks << ", failed " << legit_failures
            << "; issuance under load completed\n";
  CHECK(rig.sidecar(0).running());
  CHECK(legit_failures == 0);
#if defined(__SANITIZE_ADDRESS__)
  const long bound_kib = (256 + 64) * 1024;  // ASan's quarantine keeps up to 256 MiB of freed memory
#else
  const long bound_kib = 64 * 1024;  // bounded: well under 64 MiB growth
#endif
  CHECK(rss_after - rss_before < bound_kib);
  CHECK(rig.metrics(0).find("acme_sidecar_challenge_requests_total") != std::string::npos);
  for (const auto& [attack, by_status] : answers)
    for (const auto& [s, n] : by_status) {
      CAPTURE(attack, s);
      CHECK((s < 500 || s == 505));  // refused or closed, never a server error (505: HTTP/9.9 is not supported)
      if (attack.find("traversal") != std::string::npos) CHECK(s != 200);
    }
  check_hygiene(rig);
}
