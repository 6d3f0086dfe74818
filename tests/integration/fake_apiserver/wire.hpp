#pragma once
// Plain HTTPS client helpers for the fake API server's wire-level tests. Deliberately not the project's
// kube client: the client under test and the fake must not share one misreading of the API.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fake_apiserver.hpp"
#include "tests/support/process.hpp"

namespace fa_test {

using json = nlohmann::json;
using acme_sidecar::fake_apiserver::FakeApiServer;
using acme_sidecar::fake_apiserver::Options;

struct Resp {
  int status = 0;
  std::string body;
  json j;  // parsed body (null when not JSON)
  httplib::Headers headers;
  std::string header(const std::string& k) const {
    auto it = headers.find(k);
    return it == headers.end() ? "" : it->second;
  }
};

inline Options default_options() {
  Options o;
  o.control_port = 0;
  return o;
}

// An in-process fake API server plus a client that trusts its CA.
class Fixture {
 public:
  explicit Fixture(Options o = default_options()) : server(o) {
    server.start();
    ca_file = dir / "ca.crt";
    std::ofstream(ca_file) << server.ca_pem();
  }

  std::unique_ptr<httplib::SSLClient> client(const std::string& token, const std::string& host = "127.0.0.1") const {
    auto c = std::make_unique<httplib::SSLClient>(host, server.port());
    c->set_ca_cert_path(ca_file.c_str());
    c->enable_server_certificate_verification(true);
    if (!token.empty()) c->set_bearer_token_auth(token.c_str());
    c->set_connection_timeout(5);
    c->set_read_timeout(20);
    return c;
  }

  Resp req(const std::string& method, const std::string& path, const std::string& body = "",
           const std::string& content_type = "application/json", const std::string& token_override = "-") const {
    auto c = client(token_override == "-" ? server.admin_token() : token_override);
    httplib::Result r{nullptr, httplib::Error::Unknown};
    if (method == "GET") {
      r = c->Get(path.c_str());
    } else if (method == "POST") {
      r = c->Post(path.c_str(), body, content_type.c_str());
    } else if (method == "PUT") {
      r = c->Put(path.c_str(), body, content_type.c_str());
    } else if (method == "PATCH") {
      r = c->Patch(path.c_str(), body, content_type.c_str());
    } else if (method == "DELETE") {
      r = body.empty() ? c->Delete(path.c_str()) : c->Delete(path.c_str(), body, content_type.c_str());
    }
    Resp out;
    if (!r) {
      out.status = -1;
      out.body = httplib::to_string(r.error());
      return out;
    }
    out.status = r->status;
    out.body = r->body;
    out.headers = r->headers;
    out.j = json::parse(r->body, nullptr, false);
    if (out.j.is_discarded()) out.j = nullptr;
    return out;
  }
  Resp get(const std::string& path) const { return req("GET", path); }
  Resp post(const std::string& path, const json& body) const { return req("POST", path, body.dump()); }
  Resp put(const std::string& path, const json& body) const { return req("PUT", path, body.dump()); }
  Resp patch(const std::string& path, const json& body, const std::string& type) const {
    return req("PATCH", path, body.dump(), type);
  }
  Resp del(const std::string& path) const { return req("DELETE", path); }

  // The control port, over plain HTTP.
  Resp control(const std::string& method, const std::string& path, const json& body = json::object()) const {
    httplib::Client c("127.0.0.1", server.control_port());
    auto r = method == "GET" ? c.Get(path.c_str())
             : method == "DELETE" ? c.Delete(path.c_str())
                                  : c.Post(path.c_str(), body.dump(), "application/json");
    Resp out;
    if (!r) return out;
    out.status = r->status;
    out.body = r->body;
    out.j = json::parse(r->body, nullptr, false);
    return out;
  }

  acme_sidecar::testing::TempDir dir{"fake-apiserver-test"};
  FakeApiServer server;
  std::filesystem::path ca_file;
};

inline json secret(const std::string& name, const json& labels = json::object(), const json& data = {{"k", "dg=="}}) {
  return {{"apiVersion", "v1"}, {"kind", "Secret"},
          {"metadata", {{"name", name}, {"labels", labels}}}, {"data", data}};
}

inline json configmap(const std::string& name, const json& labels = json::object()) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"labels", labels}}}, {"data", {{"a", "b"}}}};
}

inline json ingress(const std::string& name, const std::string& host = "a.example.com") {
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "Ingress"},
          {"metadata", {{"name", name}}},
          {"spec", {{"ingressClassName", "nginx"}, {"rules", {{{"host", host}}}}}}};
}

inline json lease(const std::string& name, const std::string& renew = "2024-01-01T00:00:00.000000Z") {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata", {{"name", name}}},
          {"spec", {{"holderIdentity", "a"}, {"leaseDurationSeconds", 15}, {"renewTime", renew}}}};
}

constexpr const char* kSecrets = "/api/v1/namespaces/default/secrets";
constexpr const char* kConfigMaps = "/api/v1/namespaces/default/configmaps";
constexpr const char* kIngresses = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
constexpr const char* kLeases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

// A watch stream read on a background thread, split into JSON events.
class WatchReader {
 public:
  WatchReader(const Fixture& f, const std::string& path_and_query, const std::string& token = "",
              httplib::Headers headers = {})
      : client_(f.client(token.empty() ? f.server.admin_token() : token)) {
    thread_ = std::thread([this, path_and_query, headers] {
      auto r = client_->Get(path_and_query.c_str(), headers, [this](const char* data, size_t len) {
        std::unique_lock lk(mu_);
        if (block_) cv_.wait(lk, [this] { return !block_ || stop_; });
        buffer_.append(data, len);
        for (auto nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
          events_.push_back(json::parse(buffer_.substr(0, nl), nullptr, false));
          buffer_.erase(0, nl + 1);
        }
        cv_.notify_all();
        return !stop_;
      });
      std::lock_guard lk(mu_);
      if (r) status_ = r->status;
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~WatchReader() { stop(); }

  // Blocks the reader inside its next chunk callback (to play a client that stops reading).
  void block_reading(bool on) {
    std::lock_guard lk(mu_);
    block_ = on;
    cv_.notify_all();
  }
  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
      block_ = false;
      cv_.notify_all();
    }
    client_->stop();
    if (thread_.joinable()) thread_.join();
  }
  bool wait_for_events(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return events_.size() >= n; });
  }
  bool wait_for_end(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, timeout, [&] { return ended_; });
  }
  std::vector<json> events() const {
    std::lock_guard lk(mu_);
    return events_;
  }
  bool ended() const {
    std::lock_guard lk(mu_);
    return ended_;
  }
  int status() const {
    std::lock_guard lk(mu_);
    return status_;
  }

 private:
  std::unique_ptr<httplib::SSLClient> client_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  std::vector<json> events_;
  bool stop_ = false, block_ = false, ended_ = false;
  int status_ = 0;
  std::thread thread_;
};

// Waits until the server has registered `n` watchers (watch handlers register before streaming).
inline bool wait_watches(const Fixture& f, std::size_t n) {
  return acme_sidecar::testing::poll_until([&] { return f.server.open_watches() >= n; }, std::chrono::seconds(10));
}

}  // namespace fa_test
