// Designated initializers deliberately leave the other Request fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
// Http1Client against a scripted server that writes exactly the bytes a test gives it: framing,
// keep-alive and hostile responses that a well-behaved server library would never produce.
#include "http/http1_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.hpp"
#include "test_server.hpp"

using namespace acme_sidecar;
using http::Http1Client;
using http::Request;
using http::testing::kind_of;
using namespace std::chrono_literals;

namespace {

// What the server does with one request: write `reply`, then keep the connection or close it.
struct Reply {
  std::string bytes;
  bool close = false;
  bool silent = false;  // write nothing, keep the connection open until the test ends
};

// Accepts connections on 127.0.0.1; reads each request head (and a Content-Length body) and answers
// with handler(request, connection number). Records every request it saw.
class ScriptedServer {
 public:
  using Handler = std::function<Reply(const std::string& request, int connection)>;
  explicit ScriptedServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    {
      std::lock_guard lk(mu_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    for (int fd : open_) ::close(fd);
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int port() const { return port_; }
  int connections() const { return connections_.load(); }
  std::vector<std::string> requests() {
    std::lock_guard lk(mu_);
    return requests_;
  }

 private:
  void accept_loop() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const int n = connections_++;
      std::lock_guard lk(mu_);
      open_.push_back(fd);
      workers_.emplace_back([this, fd, n] { serve(fd, n); });
    }
  }
  void serve(int fd, int n) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      auto end = buf.find("\r\n\r\n");
      while (end == std::string::npos) {
        const ssize_t got = ::recv(fd, tmp, sizeof tmp, 0);
        if (got <= 0) return;
        buf.append(tmp, static_cast<std::size_t>(got));
        end = buf.find("\r\n\r\n");
      }
      std::size_t body = 0;
      if (auto cl = buf.find("Content-Length: "); cl != std::string::npos && cl < end) {
        body = std::strtoul(buf.c_str() + cl + 16, nullptr, 10);
      }
      while (buf.size() < end + 4 + body) {
        const ssize_t got = ::recv(fd, tmp, sizeof tmp, 0);
        if (got <= 0) return;
        buf.append(tmp, static_cast<std::size_t>(got));
      }
      const std::string request = buf.substr(0, end + 4 + body);
      buf.erase(0, end + 4 + body);
      {
        std::lock_guard lk(mu_);
        requests_.push_back(request);
      }
      Reply r = handler_(request, n);
      if (r.silent) {
        while (::recv(fd, tmp, sizeof tmp, 0) > 0) {
        }
        return;
      }
      std::size_t off = 0;
      while (off < r.bytes.size()) {
        const ssize_t w = ::send(fd, r.bytes.data() + off, r.bytes.size() - off, MSG_NOSIGNAL);
        if (w <= 0) return;
        off += static_cast<std::size_t>(w);
      }
      if (r.close) {
        ::shutdown(fd, SHUT_RDWR);
        return;
      }
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> open_;
  std::vector<std::thread> workers_;
  std::vector<std::string> requests_;
};

std::string ok(const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

}  // namespace

TEST_CASE("Http1Client writes a well-formed request", "[http][http1]") {
  ScriptedServer server([](const std::string&, int) { return Reply{ok("x")}; });
  Http1Client client;
  client.send(Request{.method = "POST", .url = server.url("/a/b?q=1&r=%20#frag"),
                      .headers = {{"Content-Type", "application/jose+json"}, {"X-Empty", ""}},
                      .body = "{\"k\":1}"});
  client.send(Request{.method = "POST", .url = server.url("/empty")});
  client.send(Request{.url = server.url("")});
  auto reqs = server.requests();
  REQUIRE(reqs.size() == 3);
  const std::string host = "Host: 127.0.0.1:" + std::to_string(server.port()) + "\r\n";
  CHECK(reqs[0].starts_with("POST /a/b?q=1&r=%20 HTTP/1.1\r\n"));
  CHECK(reqs[0].find(host) != std::string::npos);
  CHECK(reqs[0].find("User-Agent: acme-sidecar\r\n") != std::string::npos);
  CHECK(reqs[0].find("Content-Type: application/jose+json\r\n") != std::string::npos);
  CHECK(reqs[0].find("X-Empty: \r\n") != std::string::npos);
  CHECK(reqs[0].ends_with("Content-Length: 7\r\n\r\n{\"k\":1}"));
  // A POST without a body still says so, or a server would wait for one.
  CHECK(reqs[1].ends_with("Content-Length: 0\r\n\r\n"));
  CHECK(reqs[2].starts_with("GET / HTTP/1.1\r\n"));
  CHECK(reqs[2].find("Content-Length") == std::string::npos);
  CHECK(server.connections() == 1);
}

TEST_CASE("Http1Client lets the caller set Host, User-Agent and Accept but not framing headers",
          "[http][http1]") {
  ScriptedServer server([](const std::string&, int) { return Reply{ok("x")}; });
  Http1Client client;
  client.send(Request{.url = server.url("/"),
                      .headers = {{"host", "www.example.com"}, {"User-Agent", "probe"}, {"Accept", "application/json"}}});
  auto req = server.requests().at(0);
  CHECK(req.find("host: www.example.com\r\n") != std::string::npos);
  CHECK(req.find("Host: 127.0.0.1") == std::string::npos);
  CHECK(req.find("acme-sidecar") == std::string::npos);
  CHECK(req.find("*/*") == std::string::npos);
  for (const char* managed : {"Content-Length", "Transfer-Encoding", "connection"}) {
    INFO(managed);
    CHECK(kind_of([&] { client.send(Request{.url = server.url("/"), .headers = {{managed, "1"}}}); }) ==
          core::ErrorKind::Invalid);
  }
  CHECK(kind_of([&] { client.send(Request{.url = server.url("/"), .headers = {{"Bad Name", "1"}}}); }) ==
        core::ErrorKind::Invalid);
  CHECK(kind_of([&] { client.send(Request{.method = "GET /x", .url = server.url("/")}); }) ==
        core::ErrorKind::Invalid);
  CHECK(server.requests().size() == 1);
}

TEST_CASE("Http1Client refuses malformed URLs before any I/O", "[http][http1]") {
  Http1Client client;
  for (const char* url : {"ftp://127.0.0.1/", "http://", "http://user:pw@127.0.0.1/", "http://127.0.0.1:0/",
                          "http://127.0.0.1:99999/", "http://[::1/", "http://127.0.0.1/a b", "http://127.0.0.1:8a/"}) {
    INFO(url);
    CHECK(kind_of([&] { client.send(Request{.url = url}); }) == core::ErrorKind::Invalid);
  }
}

TEST_CASE("Http1Client decodes chunked bodies, skips interim responses and honours HEAD", "[http][http1]") {
  ScriptedServer server([](const std::string& req, int) {
    if (req.starts_with("GET /chunked")) {
      return Reply{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                   "5;ext=1\r\nhello\r\nA\r\n, chunked!\r\n0\r\nTrailer: t\r\n\r\n"};
    }
    if (req.starts_with("HEAD")) return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"};
    return Reply{"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"};
  });
  Http1Client client;
  auto r = client.send(Request{.url = server.url("/chunked")});
  CHECK(r.status == 200);
  CHECK(r.body == "hello, chunked!");
  CHECK(r.header("X-A").value() == "1");
  CHECK(r.headers.size() == 2);  // the 100's (none) are not mixed in
  auto h = client.send(Request{.method = "HEAD", .url = server.url("/head")});
  CHECK(h.status == 200);
  CHECK(h.body.empty());
  auto n = client.send(Request{.method = "DELETE", .url = server.url("/nocontent")});
  CHECK(n.status == 204);
  CHECK(n.body.empty());
  CHECK(server.connections() == 1);  // all on one kept-alive connection
}

TEST_CASE("Http1Client reads close-delimited bodies and does not reuse closed connections", "[http][http1]") {
  ScriptedServer server([](const std::string& req, int) {
    if (req.starts_with("GET /eof")) return Reply{"HTTP/1.1 200 OK\r\n\r\nuntil the end", true};
    return Reply{ok("bye", "Connection: close\r\n"), true};
  });
  Http1Client client;
  CHECK(client.send(Request{.url = server.url("/eof")}).body == "until the end");
  CHECK(client.send(Request{.url = server.url("/close")}).body == "bye");
  CHECK(client.send(Request{.url = server.url("/close")}).body == "bye");
  CHECK(server.connections() == 3);
}

TEST_CASE("Http1Client resends once when a kept-alive connection was closed while idle", "[http][http1]") {
  // The first connection answers once, then the server drops it without saying so.
  std::atomic<int> answered{0};
  ScriptedServer server([&](const std::string&, int connection) {
    ++answered;
    if (connection == 0) return Reply{ok("first"), true};
    return Reply{ok("fresh")};
  });
  Http1Client client;
  CHECK(client.send(Request{.url = server.url("/1")}).body == "first");
  // The client kept the connection (no "Connection: close"); the next request finds it dead.
  auto r = client.send(Request{.method = "POST", .url = server.url("/2"), .body = "payload"});
  CHECK(r.body == "fresh");
  CHECK(server.connections() == 2);
  CHECK(answered == 2);  // the request reached the server exactly once
}

TEST_CASE("Http1Client does not resend after part of a response arrived", "[http][http1]") {
  // On the kept-alive connection the second response breaks off: the server did see the request,
  // so sending it again could repeat its effect.
  std::atomic<int> seen{0};
  ScriptedServer server([&](const std::string&, int) {
    if (seen++ == 0) return Reply{ok("first")};
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true};
  });
  Http1Client client;
  CHECK(client.send(Request{.url = server.url("/1")}).body == "first");
  CHECK(kind_of([&] { client.send(Request{.method = "POST", .url = server.url("/2"), .body = "once"}); }) ==
        core::ErrorKind::Transport);
  CHECK(server.requests().size() == 2);
  CHECK(server.connections() == 1);
}

TEST_CASE("Http1Client turns hostile responses into Transport errors", "[http][http1]") {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"garbage status line", "SMTP ready\r\n\r\n"},
      {"non-numeric status", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"},
      {"header without colon", "HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 0\r\n\r\n"},
      {"obsolete line folding", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n"},
      {"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
      {"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
      {"unknown transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"},
      {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n"},
      {"bad chunk terminator", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n"},
      {"endless header", "HTTP/1.1 200 OK\r\nX-Long: " + std::string(70 * 1024, 'a')},
      {"endless chunk line", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string(8192, '1')},
      {"body over the limit", "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n"},
      {"chunks over the limit", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n" +
                                    std::string(1024, 'a') + "\r\n400\r\n" + std::string(1024, 'a') + "\r\n0\r\n\r\n"},
      {"protocol switch", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n"},
      {"nothing at all", ""},
  };
  for (const auto& [what, bytes] : cases) {
    INFO(what);
    ScriptedServer server([&](const std::string&, int) { return Reply{bytes, true}; });
    Http1Client client(http::TlsOptions{}, http::Http1Options{.max_body_bytes = 1500});
    CHECK(kind_of([&] { client.send(Request{.url = server.url("/"), .timeout = 10s}); }) ==
          core::ErrorKind::Transport);
  }
}

TEST_CASE("Http1Client enforces the deadline and cancellation on a silent server", "[http][http1]") {
  ScriptedServer server([](const std::string&, int) { return Reply{"", false, true}; });
  Http1Client client;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(kind_of([&] { client.send(Request{.url = server.url("/"), .timeout = 300ms}); }) == core::ErrorKind::Timeout);
  // A generous bound that only detects a hang (the slice is at most a second).
  CHECK(std::chrono::steady_clock::now() - t0 < 20s);

  std::stop_source stop;
  std::jthread canceller([&] {
    // Cancels once the request is parked at the server.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (server.requests().size() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);  // polling with a deadline
    }
    stop.request_stop();
  });
  Request parked{.url = server.url("/parked"), .timeout = 60s};
  parked.cancel = stop.get_token();
  CHECK(kind_of([&] { client.send(parked); }) == core::ErrorKind::Cancelled);
}

TEST_CASE("Http1Client hands requests to libcurl when a proxy is configured", "[http][http1]") {
  const char* before = std::getenv("https_proxy");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("https_proxy", "http://127.0.0.1:1", 1);
  Http1Client proxied;
  Http1Client direct(http::TlsOptions{}, http::Http1Options{.proxy_from_environment = false});
  if (before != nullptr) {
    ::setenv("https_proxy", saved.c_str(), 1);
  } else {
    ::unsetenv("https_proxy");
  }
  CHECK(proxied.uses_curl_for_requests());
  CHECK_FALSE(direct.uses_curl_for_requests());
}

TEST_CASE("Http1Client streams chunked bodies piece by piece and keeps a completed stream's connection",
          "[http][http1]") {
  ScriptedServer server([](const std::string& req, int) {
    if (req.starts_with("GET /watch")) {
      return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "6\r\n{\"a\":1\r\n3\r\n}\n{\r\n6\r\n\"b\":2}\r\n1\r\n\n\r\n0\r\n\r\n"};
    }
    if (req.starts_with("GET /gone")) {
      return Reply{"HTTP/1.1 410 Gone\r\nContent-Length: 17\r\n\r\n{\"kind\":\"Status\"}"};
    }
    return Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nbroke", true};
  });
  Http1Client client;
  std::vector<std::string> pieces;
  auto r = client.stream(Request{.url = server.url("/watch")}, [&](std::string_view chunk) {
    pieces.emplace_back(chunk);
    return true;
  });
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  std::string joined;
  for (const auto& p : pieces) joined += p;
  CHECK(joined == "{\"a\":1}\n{\"b\":2}\n");
  CHECK(pieces.size() >= 4);  // one call per chunk at least: nothing waits for the end of the body
  // An error status is not streamed: its body arrives whole, for the caller to decode.
  bool called = false;
  auto gone = client.stream(Request{.url = server.url("/gone")}, [&](std::string_view) { return called = true; });
  CHECK(gone.status == 410);
  CHECK(gone.body == "{\"kind\":\"Status\"}");
  CHECK_FALSE(called);
  CHECK(server.connections() == 1);  // the completed stream's connection was reused
  // A stream cut off inside a chunk is an error, after what did arrive was delivered.
  std::string got;
  CHECK(kind_of([&] {
          client.stream(Request{.url = server.url("/broken")}, [&](std::string_view c) {
            got += c;
            return true;
          });
        }) == core::ErrorKind::Transport);
  CHECK(got == "broke");
}
