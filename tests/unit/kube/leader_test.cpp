#include "kube/leader.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "fakes.hpp"
#include "kube/time.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using json = nlohmann::json;
using kube::testing::FakeHttp;
using kube::testing::json_response;
using kube::testing::SettlingClock;
using kube::testing::status_body;

namespace {

// An in-memory Lease API with resourceVersion semantics; every write is logged with its writer.
struct LeaseApi {
  std::mutex mu;
  std::optional<json> lease;
  int rv = 0;
  struct Write {
    std::string writer;
    std::string method;
    json spec;
  };
  std::vector<Write> writes;

  http::Response handle(const std::string& who, const http::Request& r) {
    std::lock_guard lock(mu);
    if (r.method == "GET") {
      if (!lease) return json_response(404, status_body(404, "NotFound"));
      return json_response(200, *lease);
    }
    json body = json::parse(r.body);
    if (r.method == "POST") {
      if (lease) return json_response(409, status_body(409, "AlreadyExists"));
    } else if (r.method == "PUT") {
      if (!lease) return json_response(404, status_body(404, "NotFound"));
      if (body["metadata"].value("resourceVersion", "") != (*lease)["metadata"]["resourceVersion"]) {
        return json_response(409, status_body(409, "Conflict"));
      }
    } else {
      return json_response(405, status_body(405, "MethodNotAllowed"));
    }
    body["metadata"]["resourceVersion"] = std::to_string(++rv);
    lease = body;
    writes.push_back({who, r.method, body["spec"]});
    return json_response(r.method == "POST" ? 201 : 200, body);
  }
  json spec() {
    std::lock_guard lock(mu);
    return lease ? (*lease)["spec"] : json();
  }
  size_t writes_by(const std::string& who) {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& w : writes) n += w.writer == who ? 1 : 0;
    return n;
  }
  // Someone else (kubectl, another controller) overwrites the holder.
  void steal(const std::string& holder) {
    std::lock_guard lock(mu);
    (*lease)["spec"]["holderIdentity"] = holder;
    (*lease)["metadata"]["resourceVersion"] = std::to_string(++rv);
  }
};

// One replica: its own HTTP view of the shared API (which a test can cut off), client, lock, elector.
struct Replica {
  std::string id;
  std::atomic<bool> partitioned{false};
  FakeHttp http;
  kube::Client client;
  kube::KubeLeaseLock lock;
  std::atomic<int> started{0}, stopped{0};
  std::mutex mu;
  std::vector<std::string> leaders_seen;
  kube::LeaderElector elector;
  std::jthread thread;

  Replica(LeaseApi& api, std::string identity, core::Clock& clock)
      : id(identity),
        http([this, &api](const http::Request& r, const http::ChunkHandler*) -> http::Response {
          if (partitioned) throw core::Error(core::ErrorKind::Transport, "partitioned");
          return api.handle(id, r);
        }),
        client(http, [] {
          kube::KubeConfig c;
          c.server = "https://api.test";
          return c;
        }()),
        lock(client, "ingress", "acme-sidecar"),
        elector(lock, config(identity), callbacks(), clock, core::Logger::discard(), [] { return 0.0; }) {}

  static kube::LeaderElectionConfig config(const std::string& id) {
    kube::LeaderElectionConfig c;
    c.identity = id;
    return c;  // defaults: 15s / 10s / 2s
  }
  kube::LeaderCallbacks callbacks() {
    kube::LeaderCallbacks cb;
    cb.on_started_leading = [this] { ++started; };
    cb.on_stopped_leading = [this] { ++stopped; };
    cb.on_new_leader = [this](const std::string& who) {
      std::lock_guard l(mu);
      leaders_seen.push_back(who);
    };
    return cb;
  }
  void start() {
    thread = std::jthread([this](std::stop_token st) { elector.run(st); });
  }
  void stop() {
    thread.request_stop();
    thread.join();
  }
};

// a leads, b stands by and has seen a's lease.
void start_leader_and_standby(Replica& a, Replica& b, SettlingClock& clock) {
  a.start();
  REQUIRE(clock.settle(1));
  b.start();
  REQUIRE(clock.settle(2));
  REQUIRE(a.elector.is_leader());
  REQUIRE_FALSE(b.elector.is_leader());
  REQUIRE(b.elector.leader() == "pod-a");
}

const std::regex kMicroTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");

}  // namespace

TEST_CASE("Leader election config is validated up front", "[kube][leader]") {
  kube::LeaderElectionConfig ok;
  ok.identity = "a";
  CHECK_NOTHROW(ok.validate());
  auto bad = [&](auto mutate) {
    auto c = ok;
    mutate(c);
    return std::make_pair(c, true);
  };
  for (auto [c, _] : {bad([](auto& c) { c.identity = ""; }),
                      bad([](auto& c) { c.lease_duration = 10s; }),   // == renew deadline
                      bad([](auto& c) { c.renew_deadline = 2400ms; }),  // == 1.2 x retry
                      bad([](auto& c) { c.retry_period = 0s; }),
                      bad([](auto& c) { c.renew_deadline = 20s; })}) {
    CHECK_THROWS_AS(c.validate(), core::Error);
  }
  LeaseApi api;
  SettlingClock clock;
  FakeHttp http;
  kube::KubeConfig kc;
  kc.server = "https://x";
  kube::Client client(http, kc);
  kube::KubeLeaseLock lock(client, "ns", "l");
  auto c = ok;
  c.retry_period = 9s;
  CHECK_THROWS_AS(kube::LeaderElector(lock, c, {}, clock, core::Logger::discard()), core::Error);
}

TEST_CASE("Elector acquires a missing lease and renews it every retry period", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  a.start();
  REQUIRE(clock.settle(1));
  CHECK(a.elector.is_leader());
  CHECK(a.started == 1);
  auto spec = api.spec();
  CHECK(spec["holderIdentity"] == "pod-a");
  CHECK(spec["leaseDurationSeconds"] == 15);
  CHECK(spec["leaseTransitions"] == 0);
  CHECK(std::regex_match(spec["acquireTime"].get<std::string>(), kMicroTime));
  CHECK(spec["renewTime"] == spec["acquireTime"]);
  CHECK(kube::parse_time(spec["acquireTime"].get<std::string>()) == clock.now());

  REQUIRE(clock.step(2s, 1));
  auto renewed = api.spec();
  CHECK(renewed["acquireTime"] == spec["acquireTime"]);
  CHECK(kube::parse_time(renewed["renewTime"].get<std::string>()) == clock.now());
  CHECK(api.writes_by("pod-a") == 2);  // create + one renewal
  REQUIRE(clock.step(2s, 1));
  CHECK(api.writes_by("pod-a") == 3);
  a.stop();
}

TEST_CASE("Leader steps down when renewals fail for the renew deadline", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  a.start();
  REQUIRE(clock.settle(1));
  REQUIRE(a.elector.is_leader());
  a.partitioned = true;
  for (int i = 0; i < 4; ++i) {
    REQUIRE(clock.step(2s, 1));
    CHECK(a.elector.is_leader());  // 8 s without renewal: still inside the 10 s deadline
  }
  REQUIRE(clock.step(2s, 1));
  CHECK_FALSE(a.elector.is_leader());
  CHECK(a.stopped == 1);
  // Back online: its own stale record is not renewed before it expires (15 s after the last renewal),
  // nor within three retry periods after that (a standby's turn first; there is none here).
  a.partitioned = false;
  REQUIRE(clock.step(2s, 1));  // t = 12 s
  CHECK_FALSE(a.elector.is_leader());
  CHECK(api.writes_by("pod-a") == 1);
  for (int i = 0; i < 4; ++i) REQUIRE(clock.step(2s, 1));  // t = 20 s: expired, within the standbys' turn
  CHECK_FALSE(a.elector.is_leader());
  CHECK(api.writes_by("pod-a") == 1);
  REQUIRE(clock.step(2s, 1));  // t = 22 s
  CHECK(a.elector.is_leader());
  CHECK(a.started == 2);
  CHECK(api.spec()["leaseTransitions"] == 0);  // same holder: not a transition
  a.stop();
}

TEST_CASE("A standby takes over an expired lease and the old leader never writes after losing", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  Replica b(api, "pod-b", clock);
  start_leader_and_standby(a, b, clock);

  a.partitioned = true;
  const auto cut = clock.now();
  size_t a_writes_at_cut = api.writes_by("pod-a");
  bool overlap = false;
  core::Duration took{};
  for (int i = 0; i < 20 && !b.elector.is_leader(); ++i) {
    REQUIRE(clock.step(1s, 2));
    overlap = overlap || (a.elector.is_leader() && b.elector.is_leader());
    took = clock.now() - cut;
  }
  REQUIRE(b.elector.is_leader());
  CHECK_FALSE(overlap);
  CHECK(took <= 15s + 2 * 2s);
  CHECK_FALSE(a.elector.is_leader());
  auto spec = api.spec();
  CHECK(spec["holderIdentity"] == "pod-b");
  CHECK(spec["leaseTransitions"] == 1);
  CHECK(kube::parse_time(spec["acquireTime"].get<std::string>()) == clock.now());

  // The old leader comes back: it sees pod-b renewing and writes nothing.
  a.partitioned = false;
  for (int i = 0; i < 30; ++i) REQUIRE(clock.step(1s, 2));
  CHECK(api.writes_by("pod-a") == a_writes_at_cut);
  CHECK_FALSE(a.elector.is_leader());
  CHECK(a.elector.leader() == "pod-b");
  CHECK(b.elector.is_leader());
  {
    std::lock_guard l(b.mu);
    CHECK(b.leaders_seen == std::vector<std::string>{"pod-a", "pod-b"});
  }
  a.stop();
  b.stop();
}

TEST_CASE("A leader that stepped down leaves its expired lease to a standby", "[kube][leader]") {
  // The API refused every write for a while (both replicas): a stepped down, and when writes work again
  // both could take the expired lease. The standby does; a, the one that failed, writes nothing.
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  Replica b(api, "pod-b", clock);
  start_leader_and_standby(a, b, clock);
  const auto a_writes = api.writes_by("pod-a");
  a.partitioned = true;
  b.partitioned = true;
  for (int i = 0; i < 6; ++i) REQUIRE(clock.step(2s, 2));  // t = 12 s: stepped down at 10 s
  REQUIRE_FALSE(a.elector.is_leader());
  a.partitioned = false;
  b.partitioned = false;
  for (int i = 0; i < 15 && !b.elector.is_leader(); ++i) REQUIRE(clock.step(1s, 2));
  CHECK(b.elector.is_leader());
  for (int i = 0; i < 20; ++i) REQUIRE(clock.step(1s, 2));
  CHECK(b.elector.is_leader());
  CHECK_FALSE(a.elector.is_leader());
  CHECK(api.writes_by("pod-a") == a_writes);
  CHECK(api.spec()["holderIdentity"] == "pod-b");
  a.stop();
  b.stop();
}

TEST_CASE("Graceful shutdown releases the lease so a standby need not wait", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  Replica b(api, "pod-b", clock);
  start_leader_and_standby(a, b, clock);
  a.stop();
  CHECK(a.stopped == 1);
  auto spec = api.spec();
  CHECK(spec["holderIdentity"] == "");
  CHECK(spec["leaseDurationSeconds"] == 1);
  REQUIRE(clock.step(2s, 1));  // b's next retry
  CHECK(b.elector.is_leader());
  CHECK(api.spec()["leaseTransitions"] == 1);
  b.stop();
}

TEST_CASE("A leader that sees another holder steps down at once", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  a.start();
  REQUIRE(clock.settle(1));
  REQUIRE(a.elector.is_leader());
  api.steal("intruder");
  size_t writes = api.writes_by("pod-a");
  REQUIRE(clock.step(2s, 1));
  CHECK_FALSE(a.elector.is_leader());
  CHECK(a.elector.leader() == "intruder");
  CHECK(api.writes_by("pod-a") == writes);
  a.stop();
  CHECK(api.spec()["holderIdentity"] == "intruder");  // no release of a lease we do not hold
}

TEST_CASE("Conflicting campaigns: exactly one of two simultaneous candidates wins", "[kube][leader]") {
  LeaseApi api;
  SettlingClock clock;
  Replica a(api, "pod-a", clock);
  Replica b(api, "pod-b", clock);
  a.start();
  b.start();
  REQUIRE(clock.settle(2));
  for (int i = 0; i < 5; ++i) {
    CHECK(a.elector.is_leader() != b.elector.is_leader());
    REQUIRE(clock.step(2s, 2));
  }
  a.stop();
  b.stop();
}
