#include <catch2/catch.hpp>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "challenge/responder.hpp"
#include "core/error.hpp"
#include "raw_http.hpp"

using namespace acme_sidecar::challenge;
using acme_sidecar::challenge::test::fetch;
using acme_sidecar::challenge::test::get;
using acme_sidecar::challenge::test::RawConnection;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

const std::string kPrefix = "/.well-known/acme-challenge/";

struct Counts {
  std::atomic<int> hit{0}, miss{0}, invalid{0};
  std::function<void(Result)> observer() {
    return [this](Result r) {
      (r == Result::Hit ? hit : r == Result::Miss ? miss : invalid)++;
    };
  }
};

ResponderOptions loopback(std::function<void(Result)> observer = {}) {
  ResponderOptions o;
  o.listen = "127.0.0.1:0";
  o.observer = std::move(observer);
  return o;
}

}  // namespace

TEST_CASE("responder: parse_listen_address", "[challenge][responder]") {
  auto a = parse_listen_address("127.0.0.1:8089");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 8089);
  CHECK(a.loopback);
  CHECK_FALSE(a.ipv6);
  a = parse_listen_address("[::1]:0");
  CHECK(a.ipv6);
  CHECK(a.loopback);
  CHECK(parse_listen_address("127.1.2.3:1").loopback);
  CHECK_FALSE(parse_listen_address("0.0.0.0:8089").loopback);
  CHECK_FALSE(parse_listen_address("10.0.0.1:8089").loopback);
  CHECK_FALSE(parse_listen_address("[::]:8089").loopback);
  for (const char* bad : {"", "8089", ":8089", "localhost:8089", "127.0.0.1:", "127.0.0.1:99999", "[::1]", "::1:80",
                          "1.2.3:80", "[127.0.0.1]:80"}) {
    INFO(bad);
    try {
      (void)parse_listen_address(bad);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::Config);
    }
  }
}

TEST_CASE("responder: refuses non-loopback addresses unless allowed", "[challenge][responder]") {
  InMemoryChallengeStore store;
  auto o = loopback();
  o.listen = "0.0.0.0:0";
  try {
    Responder r(store, o);
    FAIL("bound to 0.0.0.0");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Config);
    CHECK(std::string(e.what()).find("loopback") != std::string::npos);
  }
  o.allow_non_loopback = true;
  Responder r(store, o);
  CHECK(r.port() != 0);
}

TEST_CASE("responder: a taken port is a clear error", "[challenge][responder]") {
  InMemoryChallengeStore store;
  Responder first(store, loopback());
  auto o = loopback();
  o.listen = "127.0.0.1:" + std::to_string(first.port());
  try {
    Responder second(store, o);
    FAIL("bound twice");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Transport);
  }
}

TEST_CASE("responder: hit, miss and HEAD", "[challenge][responder]") {
  InMemoryChallengeStore store;
  Counts counts;
  Responder responder(store, loopback(counts.observer()));
  REQUIRE(responder.port() != 0);
  CHECK(responder.host() == "127.0.0.1");
  store.put("tok_1-A", "tok_1-A.thumbprint");

  auto r = fetch(responder.port(), kPrefix + "tok_1-A");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "tok_1-A.thumbprint");
  CHECK(r->headers["content-type"] == "text/plain");

  r = fetch(responder.port(), kPrefix + "tok_1-A", "HEAD");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->headers["content-length"] == "18");
  CHECK(r->body.empty());

  r = fetch(responder.port(), kPrefix + "unknown");
  REQUIRE(r);
  CHECK(r->status == 404);

  store.remove("tok_1-A");
  r = fetch(responder.port(), kPrefix + "tok_1-A");
  REQUIRE(r);
  CHECK(r->status == 404);

  CHECK(counts.hit == 2);
  CHECK(counts.miss == 2);
  CHECK(counts.invalid == 0);
}

TEST_CASE("responder: invalid tokens, traversal, encoded slashes and other paths are 4xx",
          "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("x", "x.secret");
  store.put("tok", "tok.secret");
  Counts counts;
  Responder responder(store, loopback(counts.observer()));
  const std::vector<std::string> paths{
      kPrefix,
      kPrefix + "../x",
      kPrefix + "..%2Fx",
      kPrefix + "%2e%2e/x",
      kPrefix + "a%2Fb",
      kPrefix + "tok%00",
      kPrefix + "tok/",
      kPrefix + "tok.",
      kPrefix + std::string(257, 'a'),
      "/.well-known/acme-challenge%2Ftok",
      "/.well-known/./acme-challenge/tok",
      "/.well-known/acme-challenge/./tok",
      "/x/../.well-known/acme-challenge/tok",
      "/",
      "/metrics",
      "*",
      "http://example.com/.well-known/acme-challenge/tok",
  };
  for (const auto& p : paths) {
    INFO(p);
    auto r = fetch(responder.port(), p);
    // MHD itself may reject the weirdest request targets with 400 before our handler runs.
    REQUIRE(r);
    CHECK(r->status >= 400);
    CHECK(r->status < 500);
    CHECK(r->body.find("secret") == std::string::npos);
  }
  CHECK(counts.hit == 0);
  CHECK(counts.miss == 0);
  CHECK(counts.invalid >= static_cast<int>(paths.size()) - 2);
  // The query string is not part of the token (MHD splits it off); the token still answers.
  auto r = fetch(responder.port(), kPrefix + "tok?probe=1");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("responder: methods other than GET and HEAD get 405", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.thumb");
  Counts counts;
  Responder responder(store, loopback(counts.observer()));
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "TRACE"}) {
    INFO(method);
    RawConnection c(responder.port());
    REQUIRE(c.send(std::string(method) + " " + kPrefix + "tok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->headers["allow"] == "GET, HEAD");
  }
  CHECK(counts.invalid == 7);
  // A GET with a body is not a challenge request.
  RawConnection c(responder.port());
  REQUIRE(c.send("GET " + kPrefix + "tok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  auto r = c.read_response();
  REQUIRE(r);
  CHECK(r->status == 400);
}

TEST_CASE("responder: oversized paths and headers get 4xx or a close, never a crash", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.thumb");
  Responder responder(store, loopback());
  {
    RawConnection c(responder.port());
    c.send(get(kPrefix + std::string(100000, 'a')));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 414);
  }
  {
    RawConnection c(responder.port());
    c.send(get(kPrefix + "tok", "GET", "X-Big: " + std::string(100000, 'b') + "\r\n"));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
  }
  {
    RawConnection c(responder.port());
    std::string many;
    for (int i = 0; i < 5000; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
    c.send(get(kPrefix + "tok", "GET", many));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 431);
  }
  {
    RawConnection c(responder.port());
    c.send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) + std::string(300, '\0') + "\r\n\r\n");
    auto r = c.read_response();
    if (r) CHECK((r->status >= 400 && r->status < 500));
  }
  auto r = fetch(responder.port(), kPrefix + "tok");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("responder: keep-alive serves several requests on one connection", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("a", "a.k");
  store.put("b", "b.k");
  Responder responder(store, loopback());
  RawConnection c(responder.port());
  for (int i = 0; i < 10; ++i) {
    REQUIRE(c.send(get(kPrefix + "a")));
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "a.k");
    REQUIRE(c.send(get(kPrefix + "missing")));
    r = c.read_response();
    REQUIRE(r);
    CHECK(r->status == 404);
    REQUIRE(c.send(get(kPrefix + "b", "HEAD")));
    r = c.read_response(true);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  // Pipelined: three requests in one write, three responses in order.
  REQUIRE(c.send(get(kPrefix + "a") + get(kPrefix + "b") + get(kPrefix + "a")));
  for (const char* want : {"a.k", "b.k", "a.k"}) {
    auto r = c.read_response();
    REQUIRE(r);
    CHECK(r->body == want);
  }
}

TEST_CASE("responder: 500 idle connections do not block a challenge answer", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.k");
  Responder responder(store, loopback());
  std::vector<RawConnection> idle;
  idle.reserve(500);
  for (int i = 0; i < 500; ++i) {
    idle.emplace_back(responder.port());
    if (i % 2 == 1) idle.back().send("GET " + kPrefix);  // half of them mid-request
  }
  for (int i = 0; i < 20; ++i) {
    auto r = fetch(responder.port(), kPrefix + "tok");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->body == "tok.k");
  }
  // The idle connections were accepted and are still served.
  REQUIRE(idle.front().send(get(kPrefix + "tok")));
  auto r = idle.front().read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  REQUIRE(idle.back().send("tok HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = idle.back().read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("responder: a slowloris client does not block others", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.k");
  Responder responder(store, loopback());
  RawConnection slow(responder.port());
  const std::string request = get(kPrefix + "tok");
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> others_done{false};
  std::thread trickle([&] {
    // Load generation, not synchronisation: one byte at a time until the others are done.
    for (std::size_t i = 0; i + 1 < request.size() && !others_done; ++i) {
      slow.send(request.substr(i, 1));
      ++sent;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  for (int i = 0; i < 30; ++i) {
    auto r = fetch(responder.port(), kPrefix + "tok");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  others_done = true;
  trickle.join();
  // The slow client still gets its answer once it finishes.
  slow.send(request.substr(sent));
  auto r = slow.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "tok.k");
}

TEST_CASE("responder: concurrent put/remove while serving", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("stable", "stable.k");
  Counts counts;
  Responder responder(store, loopback(counts.observer()));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    int i = 0;
    while (!done) {
      store.put("flip", "flip.k");
      store.put("t" + std::to_string(i % 100), "t.k");
      store.remove("flip");
      store.remove("t" + std::to_string((i + 50) % 100));
      ++i;
    }
  });
  std::vector<std::thread> clients;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 3; ++t)
    clients.emplace_back([&] {
      RawConnection c(responder.port());
      for (int i = 0; i < 200; ++i) {
        c.send(get(kPrefix + "stable") + get(kPrefix + "flip"));
        auto a = c.read_response();
        auto b = c.read_response();
        if (!a || a->status != 200 || a->body != "stable.k") ++wrong;
        if (!b || !((b->status == 200 && b->body == "flip.k") || b->status == 404)) ++wrong;
      }
    });
  for (auto& c : clients) c.join();
  done = true;
  writer.join();
  CHECK(wrong == 0);
  CHECK(counts.hit + counts.miss == 1200);
  CHECK(counts.hit >= 600);
}

TEST_CASE("responder: a miss goes through the read-through once, off the event thread", "[challenge][responder]") {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  InMemoryChallengeStore store([&](std::string_view token) -> std::optional<std::string> {
    ++calls;
    if (token == "slow") {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
      return std::string("slow.k");
    }
    if (token == "remote") return std::string("remote.k");
    return std::nullopt;
  });
  store.put("local", "local.k");
  Counts counts;
  Responder responder(store, loopback(counts.observer()));

  auto r = fetch(responder.port(), kPrefix + "remote");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "remote.k");
  CHECK(calls == 1);
  r = fetch(responder.port(), kPrefix + "nothing");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(calls == 2);
  r = fetch(responder.port(), kPrefix + "local");  // a hit never calls the read-through
  REQUIRE(r);
  CHECK(calls == 2);

  // While the read-through blocks, cached tokens are still answered.
  RawConnection parked(responder.port());
  REQUIRE(parked.send(get(kPrefix + "slow")));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (calls < 3 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(calls == 3);
  for (int i = 0; i < 5; ++i) {
    r = fetch(responder.port(), kPrefix + "local");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  r = parked.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "slow.k");
  CHECK(calls == 3);
  CHECK(counts.hit == 8);
  CHECK(counts.miss == 1);
}

TEST_CASE("responder: bounded pending read-throughs and shutdown with parked connections",
          "[challenge][responder]") {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> calls{0};
  InMemoryChallengeStore store([&](std::string_view) -> std::optional<std::string> {
    ++calls;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return std::nullopt;
  });
  auto o = loopback();
  o.max_pending_lookups = 2;
  std::optional<Responder> responder(std::in_place, store, o);
  RawConnection first(responder->port());
  REQUIRE(first.send(get(kPrefix + "first")));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (calls < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(calls == 1);  // the worker is now blocked in the read-through

  // Five more misses: two fit in the queue, the other three are refused with 503 right away.
  std::vector<RawConnection> more;
  for (int i = 0; i < 5; ++i) {
    more.emplace_back(responder->port());
    REQUIRE(more.back().send(get(kPrefix + "more" + std::to_string(i))));
  }
  std::vector<pollfd> fds;
  for (auto& c : more) fds.push_back({c.fd(), POLLIN, 0});
  int answered = 0;
  while (answered < 3 && std::chrono::steady_clock::now() < deadline) {
    ::poll(fds.data(), fds.size(), 100);
    answered = 0;
    for (auto& f : fds) answered += (f.revents & POLLIN) ? 1 : 0;
  }
  REQUIRE(answered == 3);
  for (std::size_t i = 0; i < more.size(); ++i) {
    if (!(fds[i].revents & POLLIN)) continue;
    auto r = more[i].read_response();
    REQUIRE(r);
    CHECK(r->status == 503);
  }

  // Shut down while two connections are parked and one lookup is running.
  std::thread stopper([&] { responder.reset(); });
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  CHECK(calls <= 3);
  auto r = first.read_response();
  if (r) CHECK(r->status == 404);
}

TEST_CASE("responder: idle connections are closed after the idle timeout", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.k");
  auto o = loopback();
  o.idle_timeout = std::chrono::seconds(1);
  Responder responder(store, o);
  RawConnection idle(responder.port());
  RawConnection half(responder.port());
  half.send("GET " + kPrefix);
  // Pass/fail does not depend on timing: the server must close both well within the 30 s recv timeout.
  CHECK(idle.closed_by_peer());
  CHECK(half.closed_by_peer());
  auto r = fetch(responder.port(), kPrefix + "tok");
  REQUIRE(r);
  CHECK(r->status == 200);
}

TEST_CASE("responder: the connection limit is enforced and frees up", "[challenge][responder]") {
  InMemoryChallengeStore store;
  store.put("tok", "tok.k");
  auto o = loopback();
  o.connection_limit = 8;
  Responder responder(store, o);
  std::vector<RawConnection> held;
  for (int i = 0; i < 8; ++i) {
    held.emplace_back(responder.port());
    // Make sure each one is accepted and served before opening the next.
    REQUIRE(held.back().send(get(kPrefix + "tok")));
    REQUIRE(held.back().read_response());
  }
  // Over the limit MHD stops accepting: the connection waits in the kernel's backlog, unanswered.
  RawConnection over(responder.port());
  REQUIRE(over.send(get(kPrefix + "tok")));
  pollfd pfd{over.fd(), POLLIN, 0};
  CHECK(::poll(&pfd, 1, 300) == 0);  // (can only false-pass on a slow machine, never false-fail)
  // Closing a held connection frees a slot and the waiting one is served.
  held.pop_back();
  auto r = over.read_response();
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "tok.k");
}

TEST_CASE("responder: serves on ::1 when IPv6 loopback exists", "[challenge][responder]") {
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
  InMemoryChallengeStore store;
  store.put("tok", "tok.k");
  auto o = loopback();
  o.listen = "[::1]:0";
  Responder responder(store, o);
  CHECK(responder.host() == "::1");
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  a.sin6_port = htons(responder.port());
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string req = get(kPrefix + "tok", "GET", "Connection: close\r\n");
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  char buf[1024];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(reply.size() >= 5);
  CHECK(reply.substr(reply.size() - 5) == "tok.k");
}
