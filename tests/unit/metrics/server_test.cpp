#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include <httplib.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "core/error.hpp"
#include "metrics/metrics.hpp"
#include "metrics/server.hpp"
#include "scrape.hpp"

using namespace acme_sidecar::metrics;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

ServerOptions loopback(ReadinessFn readiness = {}) {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.readiness = std::move(readiness);
  o.threads = 2;
  return o;
}

httplib::Client client(const Server& s) {
  httplib::Client c("127.0.0.1", s.port());
  c.set_connection_timeout(std::chrono::seconds(10));
  c.set_read_timeout(std::chrono::seconds(30));
  return c;
}

// A raw TCP connection for requests httplib::Client would refuse to send.
struct RawConn {
  int fd = -1;
  explicit RawConn(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~RawConn() { ::close(fd); }
  void send_all(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      auto n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;  // the server may close early on hostile input
      off += static_cast<std::size_t>(n);
    }
  }
  std::string read_all() {
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    char buf[4096];
    for (;;) {
      auto n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
      if (out.find("\r\n\r\n") != std::string::npos) break;  // a status line and headers suffice
    }
    return out;
  }
};

}  // namespace

TEST_CASE("metrics server: parse_listen_address", "[metrics][server]") {
  auto a = parse_listen_address(":9402");
  CHECK(a.host == "0.0.0.0");
  CHECK(a.port == 9402);
  a = parse_listen_address("127.0.0.1:0");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 0);
  a = parse_listen_address("[::1]:8080");
  CHECK(a.host == "::1");
  CHECK(a.port == 8080);
  a = parse_listen_address("localhost:1");
  CHECK(a.host == "localhost");
  for (const char* bad : {"", "9402", ":", ":65536", ":-1", ":12x", "::1:80", "[::1]", "[::1]80", "[]:80", "a:b"}) {
    INFO(bad);
    try {
      (void)parse_listen_address(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Config);
    }
  }
}

TEST_CASE("metrics server: render_readiness", "[metrics][server]") {
  bool ready = false;
  auto body = render_readiness({{"informers", true, ""}, {"leader", false, "no lease"}}, ready);
  CHECK_FALSE(ready);
  CHECK(body == "[+]informers ok\n[-]leader failed: no lease\nreadyz check failed\n");
  body = render_readiness({}, ready);
  CHECK(ready);
}

TEST_CASE("metrics server: /metrics, /healthz and /readyz on port 0", "[metrics][server]") {
  prometheus::Registry registry;
  Metrics m(registry);
  m.challenge_request("hit");
  std::atomic<bool> synced{false};
  Server server(registry, loopback([&] {
                  return std::vector<ReadinessCheck>{{"informers", synced.load(), "not synced"}};
                }));
  REQUIRE(server.port() != 0);
  CHECK(server.host() == "127.0.0.1");
  auto c = client(server);

  auto r = c.Get("/metrics");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  auto fams = test::parse_exposition(r->body);
  REQUIRE(fams.count("acme_sidecar_challenge_requests_total") == 1);
  CHECK(fams.at("acme_sidecar_challenge_requests_total").type == "counter");

  r = c.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "ok\n");

  r = c.Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("[-]informers failed: not synced") != std::string::npos);
  synced = true;
  r = c.Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body.find("[+]informers ok") != std::string::npos);

  r = c.Get("/nope");
  REQUIRE(r);
  CHECK(r->status == 404);
}

TEST_CASE("metrics server: a throwing readiness callback gives 503, not a crash", "[metrics][server]") {
  prometheus::Registry registry;
  Server server(registry, loopback([]() -> std::vector<ReadinessCheck> { throw std::runtime_error("boom"); }));
  auto c = client(server);
  auto r = c.Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(r->body.find("boom") != std::string::npos);
}

TEST_CASE("metrics server: no readiness callback means ready", "[metrics][server]") {
  prometheus::Registry registry;
  Server server(registry, loopback());
  auto c = client(server);
  auto r = c.Get("/readyz");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("metrics server: scrapes see updates made while serving", "[metrics][server]") {
  prometheus::Registry registry;
  Metrics m(registry);
  Server server(registry, loopback());
  auto c = client(server);
  for (int i = 1; i <= 3; ++i) {
    m.managed_certificates(static_cast<std::size_t>(i));
    auto r = c.Get("/metrics");
    REQUIRE(r);
    auto f = test::parse_exposition(r->body);
    CHECK(f.at("acme_sidecar_managed_certificates").samples.at(0).value == i);
  }
}

TEST_CASE("metrics server: hostile requests get 4xx or a close and the server keeps serving",
          "[metrics][server]") {
  prometheus::Registry registry;
  Server server(registry, loopback());
  {
    RawConn conn(server.port());
    conn.send_all("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n");
    auto reply = conn.read_all();
    CHECK((reply.empty() || reply.rfind("HTTP/1.1 4", 0) == 0));
  }
  {
    RawConn conn(server.port());
    conn.send_all("GET /" + std::string(100000, 'x') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto reply = conn.read_all();
    CHECK((reply.empty() || reply.rfind("HTTP/1.1 4", 0) == 0));
  }
  {
    RawConn conn(server.port());
    conn.send_all("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + std::string(1000, 'b'));
    auto reply = conn.read_all();
    CHECK((reply.empty() || reply.rfind("HTTP/1.1 4", 0) == 0));
  }
  {
    RawConn conn(server.port());
    conn.send_all("\x16\x03\x01garbage\r\n\r\n");
    auto reply = conn.read_all();
    CHECK((reply.empty() || reply.rfind("HTTP/1.1 4", 0) == 0));
  }
  auto c = client(server);
  auto r = c.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("metrics server: a slow client does not block other scrapes", "[metrics][server]") {
  prometheus::Registry registry;
  Server server(registry, loopback());  // 2 threads
  RawConn slow(server.port());
  slow.send_all("GET /metr");  // and never finishes
  auto c = client(server);
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
}

TEST_CASE("metrics server: bind failures are clear errors", "[metrics][server]") {
  prometheus::Registry registry;
  Server first(registry, loopback());
  auto taken = loopback();
  taken.listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    Server second(registry, taken);
    FAIL("bound twice");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Transport);
  }
  auto bad = loopback();
  bad.listen = "nonsense";
  CHECK_THROWS_AS(Server(registry, bad), Error);
}

TEST_CASE("metrics server: stop is idempotent and frees the port", "[metrics][server]") {
  prometheus::Registry registry;
  Server server(registry, loopback());
  auto port = server.port();
  server.stop();
  server.stop();
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(std::chrono::seconds(2));
  CHECK_FALSE(c.Get("/healthz"));
}

TEST_CASE("metrics server: listens on ::1 when IPv6 loopback exists", "[metrics][server]") {
  int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool v6 = probe >= 0 && ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  if (probe >= 0) ::close(probe);
  if (!v6) {
    WARN("no IPv6 loopback here; skipped");
    return;
  }
  prometheus::Registry registry;
  auto o = loopback();
  o.listen = "[::1]:0";
  Server server(registry, o);
  CHECK(server.host() == "::1");
  httplib::Client c("::1", server.port());
  c.set_read_timeout(std::chrono::seconds(30));
  auto r = c.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
}
