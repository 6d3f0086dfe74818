// Two electors on the fake API server with short timings: handover after a crash, graceful release,
// and no writes from a replica that lost the lease (checked in the server's own request log).
#include <catch2/catch.hpp>

#include <thread>

#include "fake_api.hpp"
#include "kube/client.hpp"
#include "kube/leader.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kLease = 3s;
constexpr auto kRenew = 2s;
constexpr auto kRetry = 500ms;

struct Replica {
  std::string user;
  http::CurlClient http;
  kube::Client client;
  kube::KubeLeaseLock lock;
  core::SystemClock clock;
  kube::LeaderElector elector;
  std::jthread thread;

  Replica(kube::it::FakeApi& api, const std::string& u, bool release_on_cancel = true)
      : user(u),
        http(api.config(u).tls),
        client(http, api.config(u)),
        lock(client, "default", "it-lease"),
        elector(lock, config(u, release_on_cancel), {}, clock, core::Logger::discard(), [] { return 0.0; }) {}
  static kube::LeaderElectionConfig config(const std::string& id, bool release) {
    kube::LeaderElectionConfig c;
    c.identity = "pod-" + id;
    c.lease_duration = kLease;
    c.renew_deadline = kRenew;
    c.retry_period = kRetry;
    c.release_on_cancel = release;
    return c;
  }
  void start() {
    thread = std::jthread([this](std::stop_token st) { elector.run(st); });
  }
  void stop() {
    thread.request_stop();
    if (thread.joinable()) thread.join();
  }
};

std::size_t lease_writes_by(kube::it::FakeApi& api, const std::string& user) {
  std::size_t n = 0;
  for (const auto& e : api.request_log()) {
    const auto& m = e["method"];
    if (e["user"] == user && e["path"].get<std::string>().find("/leases") != std::string::npos &&
        (m == "PUT" || m == "POST" || m == "PATCH" || m == "DELETE")) {
      ++n;
    }
  }
  return n;
}

bool wait_for(const std::function<bool()>& f, std::chrono::milliseconds limit = 20s) {
  return acme_sidecar::testing::poll_until(f, limit);
}

}  // namespace

TEST_CASE("Killing the leader hands over within lease duration plus two retry periods", "[kube][integration]") {
  kube::it::FakeApi api;
  Replica a(api, "a", /*release_on_cancel=*/false);  // a crash never releases
  Replica b(api, "b");
  a.start();
  REQUIRE(wait_for([&] { return a.elector.is_leader(); }));
  b.start();
  REQUIRE(wait_for([&] { return b.elector.leader() == "pod-a"; }));
  std::this_thread::sleep_for(1s);  // let b watch a few renewals (not a synchronisation)
  CHECK_FALSE(b.elector.is_leader());

  const auto killed = SteadyClock::now();
  a.stop();
  REQUIRE(wait_for([&] { return b.elector.is_leader(); }));
  const auto took = SteadyClock::now() - killed;
  INFO("handover took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  // Lease duration + 2 retry periods, plus a little for the requests themselves.
  CHECK(took <= kLease + 2 * kRetry + 300ms);
  b.stop();
}

TEST_CASE("Graceful shutdown releases the lease to the standby at once", "[kube][integration]") {
  kube::it::FakeApi api;
  Replica a(api, "a");
  Replica b(api, "b");
  a.start();
  REQUIRE(wait_for([&] { return a.elector.is_leader(); }));
  b.start();
  REQUIRE(wait_for([&] { return b.elector.leader() == "pod-a"; }));
  const auto stopped = SteadyClock::now();
  a.stop();
  REQUIRE(wait_for([&] { return b.elector.is_leader(); }));
  CHECK(SteadyClock::now() - stopped < kLease);
  b.stop();
}

TEST_CASE("A leader whose renewals fail steps down and never writes again", "[kube][integration]") {
  kube::it::FakeApi api;
  Replica a(api, "a");
  Replica b(api, "b");
  a.start();
  REQUIRE(wait_for([&] { return a.elector.is_leader(); }));
  b.start();
  REQUIRE(wait_for([&] { return b.elector.leader() == "pod-a"; }));

  // Every lease update fails for a while: a cannot renew (b does not write while a's lease is fresh).
  api.control("POST", "/faults/fail", {{"method", "PUT"}, {"path", ".*/leases/.*"}, {"count", 1000}, {"status", 503}});
  REQUIRE(wait_for([&] { return !a.elector.is_leader(); }, 10s));
  const auto a_writes = lease_writes_by(api, "a");
  api.control("POST", "/faults/clear");
  REQUIRE(wait_for([&] { return b.elector.is_leader(); }, 10s));
  CHECK(wait_for([&] { return a.elector.leader() == "pod-b"; }, 5s));
  std::this_thread::sleep_for(2s);  // a window in which a would misbehave (not a synchronisation)
  CHECK(lease_writes_by(api, "a") == a_writes);
  CHECK(b.elector.is_leader());
  CHECK_FALSE(a.elector.is_leader());
  a.stop();  // must not release: it does not hold the lease
  CHECK(lease_writes_by(api, "a") == a_writes);
  b.stop();
}
