#pragma once
// Test doubles for the kube tests: an HttpClient whose answers a test scripts, and a clock whose
// advance() can wait until every participating thread has parked again (deterministic, no sleeps).
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/error.hpp"
#include "http/client.hpp"

namespace acme_sidecar::kube::testing {

using namespace std::chrono_literals;

inline http::Response json_response(long status, const nlohmann::json& body) {
  http::Response r;
  r.status = status;
  r.headers = {{"Content-Type", "application/json"}};
  r.body = body.dump();
  return r;
}

inline nlohmann::json status_body(int code, const std::string& reason, const std::string& message = "") {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
          {"code", code},     {"reason", reason},    {"message", message.empty() ? reason : message}};
}

// Path part of a URL ("https://host:1/api/v1/x?y" → "/api/v1/x"), and its query parameters.
inline std::string path_of(const std::string& url) {
  auto scheme = url.find("://");
  auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) return "/";
  auto q = url.find('?', slash);
  return url.substr(slash, q == std::string::npos ? std::string::npos : q - slash);
}
inline std::map<std::string, std::string> query_of(const std::string& url) {
  std::map<std::string, std::string> out;
  auto q = url.find('?');
  if (q == std::string::npos) return out;
  std::string rest = url.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto amp = rest.find('&', pos);
    std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = kv.find('=');
    if (!kv.empty()) out[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

class FakeHttp final : public http::HttpClient {
 public:
  // chunk handler is null for send().
  using Handler = std::function<http::Response(const http::Request&, const http::ChunkHandler*)>;
  explicit FakeHttp(Handler h = {}) : handler_(std::move(h)) {}
  void set_handler(Handler h) {
    std::lock_guard lock(mu_);
    handler_ = std::move(h);
  }
  http::Response send(const http::Request& r) override { return call(r, nullptr); }
  http::Response stream(const http::Request& r, const http::ChunkHandler& c) override { return call(r, &c); }

  std::vector<http::Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  // Blocks (real time, bounded) until at least n requests have been made.
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds limit = 10s) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return requests_.size() >= n; });
  }

 private:
  http::Response call(const http::Request& r, const http::ChunkHandler* c) {
    Handler h;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(r);
      h = handler_;
    }
    cv_.notify_all();
    if (!h) throw core::Error(core::ErrorKind::Transport, "no handler");
    return h(r, c);
  }
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  Handler handler_;
  std::vector<http::Request> requests_;
};

// Blocks a fake watch until the request is cancelled (the informer stops), then throws Cancelled.
inline http::Response park_until_cancelled(const http::Request& r) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!r.cancel.stop_requested() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);  // polling a flag, not synchronising on time
  }
  throw core::Error(core::ErrorKind::Cancelled, "cancelled");
}

// A manual clock that knows each sleeper's deadline, so a test can advance time and then wait until
// every woken thread has finished its work and parked again.
class SettlingClock final : public core::Clock {
 public:
  explicit SettlingClock(core::TimePoint start = core::TimePoint(std::chrono::seconds(1'700'000'000)))
      : now_(start) {}
  core::TimePoint now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  bool sleep_until(core::TimePoint deadline, std::stop_token stop) override {
    std::unique_lock lock(mu_);
    auto it = deadlines_.insert(deadline);
    cv_.notify_all();
    bool reached = cv_.wait(lock, stop, [&] { return now_ >= deadline; });
    deadlines_.erase(it);
    cv_.notify_all();
    return reached;
  }
  // Threads parked on a future deadline.
  std::size_t parked() const {
    std::lock_guard lock(mu_);
    return parked_locked();
  }
  // Waits (real time, bounded) until `n` threads are parked on deadlines in the future.
  bool settle(std::size_t n, std::chrono::milliseconds limit = 10s) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return parked_locked() >= n; });
  }
  void advance(core::Duration d) {
    std::lock_guard lock(mu_);
    now_ += d;
    cv_.notify_all();
  }
  // Advance, then wait until `n` threads are parked again.
  bool step(core::Duration d, std::size_t n) {
    advance(d);
    return settle(n);
  }

 private:
  std::size_t parked_locked() const {
    std::size_t c = 0;
    for (auto t : deadlines_) c += t > now_ ? 1 : 0;
    // Every registered deadline must be in the future: a woken thread is still busy otherwise.
    return c == deadlines_.size() ? c : 0;
  }
  mutable std::mutex mu_;
  mutable std::condition_variable_any cv_;
  core::TimePoint now_;
  std::multiset<core::TimePoint> deadlines_;
};

}  // namespace acme_sidecar::kube::testing
