// Designated initializers deliberately leave the other Request fields at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "http/curl_client.hpp"
#include "http/http1_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.hpp"
#include "test_server.hpp"

using namespace acme_sidecar;
using http::CurlClient;
using http::Http1Client;
using http::Request;
using http::testing::kind_of;
using http::testing::ServerThread;
using namespace std::chrono_literals;

namespace {

// Lets a server handler wait for the test (bounded, so a broken client cannot hang the suite).
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  // Returns true when opened by the test, false on timeout or close.
  bool wait(std::chrono::milliseconds limit = 10s) {
    std::unique_lock lk(mu);
    cv.wait_for(lk, limit, [&] { return open; });
    return open;
  }
  void release() {
    std::lock_guard lk(mu);
    open = true;
    cv.notify_all();
  }
};

struct ScopeExit {
  std::function<void()> f;
  ~ScopeExit() { f(); }
};

std::unique_ptr<httplib::Server> echo_server() {
  auto s = std::make_unique<httplib::Server>();
  auto echo = [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Method", req.method);
    res.set_header("X-Test-Echo", req.get_header_value("X-Test"));
    res.set_content(req.body, "text/plain");
  };
  s->Get("/echo", echo);
  s->Post("/echo", echo);
  s->Put("/echo", echo);
  s->Patch("/echo", echo);
  s->Delete("/echo", echo);
  s->Get("/port", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(std::to_string(req.remote_port), "text/plain");
  });
  s->Get("/status/418", [](const httplib::Request&, httplib::Response& res) {
    res.status = 418;
    res.set_header("Retry-After", "7");
    res.set_content(R"({"kind":"Status"})", "application/json");
  });
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("HTTP client sends each method with headers and body", "[http]", CurlClient, Http1Client) {
  ServerThread server(echo_server());
  TestType client;
  for (std::string method : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
    Request req;
    req.method = method;
    req.url = server.url("/echo");
    req.headers = {{"X-Test", "v-" + method}, {"Content-Type", "text/plain"}};
    if (method != "GET") req.body = "body of " + method;
    auto resp = client.send(req);
    INFO(method);
    CHECK(resp.status == 200);
    CHECK(resp.header("x-method").value() == method);
    CHECK(resp.header("X-TEST-ECHO").value() == "v-" + method);
    CHECK(resp.body == req.body);
  }
}

TEMPLATE_TEST_CASE("HTTP client returns error statuses as responses", "[http]", CurlClient, Http1Client) {
  ServerThread server(echo_server());
  TestType client;
  auto resp = client.send(Request{.url = server.url("/status/418")});
  CHECK(resp.status == 418);
  CHECK(resp.header("Retry-After").value() == "7");
  CHECK(resp.body == R"({"kind":"Status"})");
  CHECK(client.send(Request{.url = server.url("/nowhere")}).status == 404);
}

TEMPLATE_TEST_CASE("HTTP client reuses its connection", "[http]", CurlClient, Http1Client) {
  ServerThread server(echo_server());
  TestType client;
  std::set<std::string> ports;
  for (int i = 0; i < 3; ++i) ports.insert(client.send(Request{.url = server.url("/port")}).body);
  CHECK(ports.size() == 1);
}

TEMPLATE_TEST_CASE("HTTP client is safe to use from several threads", "[http]", CurlClient, Http1Client) {
  ServerThread server(echo_server());
  TestType client;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        Request req{.method = "POST", .url = server.url("/echo"), .body = std::to_string(t * 100 + i)};
        try {
          if (client.send(req).body == req.body) ++ok;
        } catch (...) {
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 100);
}

TEMPLATE_TEST_CASE("HTTP client reports refused connections as Transport", "[http]", CurlClient, Http1Client) {
  int port = 0;
  {
    ServerThread gone(echo_server());
    port = gone.port();
  }
  TestType client;
  CHECK(kind_of([&] { client.send(Request{.url = "http://127.0.0.1:" + std::to_string(port) + "/"}); }) ==
        core::ErrorKind::Transport);
}

TEMPLATE_TEST_CASE("HTTP client rejects hostile input", "[http]", CurlClient, Http1Client) {
  TestType client;
  // libcurl reports unusable URLs as transport failures; Http1Client refuses them before any I/O.
  const auto bad_url = std::is_same_v<TestType, CurlClient> ? core::ErrorKind::Transport : core::ErrorKind::Invalid;
  CHECK(kind_of([&] { client.send(Request{.url = "file:///etc/passwd"}); }) == bad_url);
  CHECK(kind_of([&] { client.send(Request{.url = "not a url"}); }) == bad_url);
  CHECK(kind_of([&] {
          client.send(Request{.url = "http://127.0.0.1:1/", .headers = {{"X-Evil", "a\r\nInjected: 1"}}});
        }) == core::ErrorKind::Invalid);
  CHECK_THROWS_AS(TestType(http::TlsOptions{.ca_file = "/nonexistent/ca.pem"}), core::Error);
  CHECK_THROWS_AS(TestType(http::TlsOptions{.client_cert_pem = "x"}), core::Error);
}

TEMPLATE_TEST_CASE("HTTP client enforces the request timeout", "[http]", CurlClient, Http1Client) {
  Gate gate;
  auto s = std::make_unique<httplib::Server>();
  s->Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    gate.wait();
    res.set_content("late", "text/plain");
  });
  ServerThread server(std::move(s));
  ScopeExit open{[&] { gate.release(); }};
  TestType client;
  CHECK(kind_of([&] { client.send(Request{.url = server.url("/slow"), .timeout = 200ms}); }) ==
        core::ErrorKind::Timeout);
}

namespace {
// /stream: "first\n", then waits for the gate, then "second\n" (or "timeout\n" if never opened).
// /silent: "first\n", then nothing until the gate opens. /forever: a chunk every 5 ms.
std::unique_ptr<httplib::Server> stream_server(Gate& gate) {
  auto s = std::make_unique<httplib::Server>();
  s->Get("/stream", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      sink.write("first\n", 6);
      if (gate.wait()) {
        sink.write("second\n", 7);
      } else {
        sink.write("timeout\n", 8);
      }
      sink.done();
      return true;
    });
  });
  s->Get("/silent", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      sink.write("first\n", 6);
      gate.wait(30s);
      sink.done();
      return true;
    });
  });
  s->Get("/forever", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      for (int i = 0; i < 2000 && sink.is_writable(); ++i) {
        if (!sink.write("tick\n", 5)) break;
        std::this_thread::sleep_for(5ms);
      }
      sink.done();
      return true;
    });
  });
  s->Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 410;
    res.set_content(R"({"kind":"Status","code":410})", "application/json");
  });
  return s;
}
}  // namespace

TEMPLATE_TEST_CASE("HTTP client delivers streamed chunks as they arrive", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  ScopeExit open{[&] { gate.release(); }};
  TestType client;
  std::string got;
  auto resp = client.stream(Request{.url = server.url("/stream")}, [&](std::string_view chunk) {
    got += chunk;
    // The server only sends the rest once we have seen the first line: proves incremental delivery.
    if (got.find("first\n") != std::string::npos) gate.release();
    return true;
  });
  CHECK(resp.status == 200);
  CHECK(resp.body.empty());
  CHECK(got == "first\nsecond\n");
}

TEMPLATE_TEST_CASE("HTTP client stops a stream when the handler returns false", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  TestType client;
  int calls = 0;
  auto resp = client.stream(Request{.url = server.url("/forever")}, [&](std::string_view) {
    ++calls;
    return false;
  });
  CHECK(resp.status == 200);
  CHECK(calls == 1);
  // The client stays usable afterwards.
  CHECK(client.send(Request{.url = server.url("/missing")}).status == 410);
}

TEMPLATE_TEST_CASE("HTTP client keeps error bodies of streams whole", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  TestType client;
  bool called = false;
  auto resp = client.stream(Request{.url = server.url("/missing")}, [&](std::string_view) {
    called = true;
    return true;
  });
  CHECK(resp.status == 410);
  CHECK(resp.body == R"({"kind":"Status","code":410})");
  CHECK_FALSE(called);
}

TEMPLATE_TEST_CASE("HTTP client ends a silent stream after the idle timeout", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  ScopeExit open{[&] { gate.release(); }};
  TestType client;
  std::string got;
  Request req{.url = server.url("/silent"), .timeout = 60s, .idle_timeout = 300ms};
  CHECK(kind_of([&] {
          client.stream(req, [&](std::string_view c) {
            got += c;
            return true;
          });
        }) == core::ErrorKind::Timeout);
  CHECK(got == "first\n");
}

TEMPLATE_TEST_CASE("HTTP client cancels a parked stream via its stop token", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  ScopeExit open{[&] { gate.release(); }};
  TestType client;
  std::stop_source stop;
  Request req{.url = server.url("/silent"), .timeout = 60s};
  req.cancel = stop.get_token();
  CHECK(kind_of([&] {
          client.stream(req, [&](std::string_view) {
            stop.request_stop();
            return true;
          });
        }) == core::ErrorKind::Cancelled);
  // An already-cancelled request never goes out.
  CHECK(kind_of([&] { client.send(req); }) == core::ErrorKind::Cancelled);
}

TEMPLATE_TEST_CASE("HTTP client shutdown aborts streams in flight and refuses new requests", "[http]", CurlClient, Http1Client) {
  Gate gate;
  ServerThread server(stream_server(gate));
  ScopeExit open{[&] { gate.release(); }};
  TestType client;
  CHECK(kind_of([&] {
          client.stream(Request{.url = server.url("/silent"), .timeout = 60s}, [&](std::string_view) {
            client.shutdown();
            return true;
          });
        }) == core::ErrorKind::Cancelled);
  CHECK(kind_of([&] { client.send(Request{.url = server.url("/missing")}); }) == core::ErrorKind::Cancelled);
}

namespace {
std::unique_ptr<httplib::Server> tls_server(const http::testing::SelfSigned& id, X509* client_ca = nullptr) {
  X509_STORE* store = nullptr;
  if (client_ca != nullptr) {
    store = X509_STORE_new();  // owned by the server's SSL_CTX
    X509_STORE_add_cert(store, client_ca);
  }
  auto s = std::make_unique<httplib::SSLServer>(id.cert.get(), id.key.get(), store);
  s->Get("/hello", [](const httplib::Request&, httplib::Response& res) { res.set_content("hi", "text/plain"); });
  return s;
}
}  // namespace

TEMPLATE_TEST_CASE("HTTP client verifies TLS against the configured anchors", "[http][tls]", CurlClient, Http1Client) {
  auto id = http::testing::make_self_signed("127.0.0.1");
  ServerThread server(tls_server(id));
  const std::string url = server.url("/hello", "https");

  SECTION("inline PEM") {
    TestType client(http::TlsOptions{.ca_pem = id.cert_pem});
    CHECK(client.send(Request{.url = url}).body == "hi");
  }
  SECTION("CA file") {
    auto path = std::filesystem::temp_directory_path() /
                ("acme-sidecar-http-ca-" + std::to_string(::getpid()) + ".pem");
    std::ofstream(path) << id.cert_pem;
    ScopeExit rm{[&] { std::filesystem::remove(path); }};
    TestType client(http::TlsOptions{.ca_file = path.string()});
    CHECK(client.send(Request{.url = url}).body == "hi");
  }
  SECTION("unknown issuer is refused by default") {
    TestType client;
    CHECK(kind_of([&] { client.send(Request{.url = url}); }) == core::ErrorKind::Transport);
  }
  SECTION("a different anchor is refused") {
    auto other = http::testing::make_self_signed("127.0.0.1");
    TestType client(http::TlsOptions{.ca_pem = other.cert_pem});
    CHECK(kind_of([&] { client.send(Request{.url = url}); }) == core::ErrorKind::Transport);
  }
  SECTION("a certificate for another name is refused") {
    auto other_name = http::testing::make_self_signed("other", "DNS:other.example");
    ServerThread wrong(tls_server(other_name));
    TestType client(http::TlsOptions{.ca_pem = other_name.cert_pem});
    CHECK(kind_of([&] { client.send(Request{.url = wrong.url("/hello", "https")}); }) ==
          core::ErrorKind::Transport);
  }
  SECTION("a DNS name is checked against DNS names, an address against addresses") {
    auto named = http::testing::make_self_signed("localhost", "DNS:localhost");
    ServerThread by_name(tls_server(named));
    TestType client(http::TlsOptions{.ca_pem = named.cert_pem});
    CHECK(client.send(Request{.url = "https://localhost:" + std::to_string(by_name.port()) + "/hello"}).body == "hi");
    CHECK(kind_of([&] { client.send(Request{.url = by_name.url("/hello", "https")}); }) ==
          core::ErrorKind::Transport);
  }
  SECTION("insecure skips verification") {
    TestType client(http::TlsOptions{.insecure_skip_verify = true});
    CHECK(client.send(Request{.url = url}).body == "hi");
  }
}

TEMPLATE_TEST_CASE("HTTP client presents a client certificate", "[http][tls]", CurlClient, Http1Client) {
  auto id = http::testing::make_self_signed("127.0.0.1");
  auto user = http::testing::make_self_signed("system:admin");
  ServerThread server(tls_server(id, user.cert.get()));
  const std::string url = server.url("/hello", "https");

  TestType with_cert(
      http::TlsOptions{.ca_pem = id.cert_pem, .client_cert_pem = user.cert_pem, .client_key_pem = user.key_pem});
  CHECK(with_cert.send(Request{.url = url}).body == "hi");

  TestType without(http::TlsOptions{.ca_pem = id.cert_pem});
  CHECK(kind_of([&] { without.send(Request{.url = url}); }) == core::ErrorKind::Transport);
}
