#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>

#include "controller/work_queue.hpp"
#include "fakes.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using controller::testing::eventually;
using namespace std::chrono_literals;

namespace {
core::RandomSource half() {
  return [] { return 0.5; };
}
core::BackoffPolicy schedule() { return core::BackoffPolicy::parse("1m,10m,100m,24h", 0.0); }
}  // namespace

TEST_CASE("add de-duplicates keys that wait") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add("a");
  q.add("b");
  q.add("a");
  CHECK(q.len() == 2);
  CHECK(q.get() == "a");
  CHECK(q.get() == "b");
}

TEST_CASE("a key added while processing is re-queued after done, never handed out twice") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add("a");
  auto k = q.get();
  REQUIRE(k == "a");
  q.add("a");
  q.add("a");
  CHECK(q.len() == 0);  // dirty, not queued: a second worker cannot take it
  q.done("a");
  CHECK(q.len() == 1);
  CHECK(q.get() == "a");
  q.done("a");
  CHECK(q.len() == 0);
}

TEST_CASE("delayed keys appear only once the clock has advanced") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add_after("a", 10s);
  CHECK(q.len() == 0);
  CHECK(q.waiting() == 1);
  CHECK(q.waiting_until("a") == clock.now() + 10s);
  clock.advance(9s);
  CHECK(q.len() == 0);
  clock.advance(1s);
  REQUIRE(eventually([&] { return q.len() == 1; }));
  CHECK(q.get() == "a");
  CHECK(q.waiting() == 0);
}

TEST_CASE("the earliest delayed add wins") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  auto t0 = clock.now();
  q.add_after("a", 1h);
  q.add_after("a", 10s);
  q.add_after("a", 2h);
  CHECK(q.waiting_until("a") == t0 + 10s);
  CHECK(q.waiting() == 1);
  clock.advance(10s);
  REQUIRE(eventually([&] { return q.len() == 1; }));
  q.get();
  q.done("a");
  clock.advance(3h);  // the later adds were merged away
  CHECK(q.len() == 0);
}

TEST_CASE("an immediate add makes a delayed key ready now") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add_after("a", 1h);
  q.add("a");
  CHECK(q.len() == 1);
  CHECK(q.waiting() == 0);
}

TEST_CASE("delayed keys become ready in deadline order") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add_after("late", 30s);
  q.add_after("early", 10s);
  clock.advance(1min);
  REQUIRE(eventually([&] { return q.len() == 2; }));
  CHECK(q.get() == "early");
  CHECK(q.get() == "late");
}

TEST_CASE("rate-limited adds follow the backoff schedule per key and forget resets") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  CHECK(q.add_rate_limited("a") == 1min);
  CHECK(q.add_rate_limited("a") == 10min);
  CHECK(q.add_rate_limited("b") == 1min);  // per key
  CHECK(q.add_rate_limited("a") == 100min);
  CHECK(q.add_rate_limited("a") == 24h);
  CHECK(q.add_rate_limited("a") == 24h);
  CHECK(q.num_requeues("a") == 5);
  CHECK(q.add_rate_limited("b", 3h) == 3h);  // a server's Retry-After longer than the backoff wins
  q.forget("a");
  CHECK(q.num_requeues("a") == 0);
  CHECK(q.add_rate_limited("a") == 1min);
}

TEST_CASE("shutdown drains queued keys, then get returns nullopt") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  q.add("a");
  q.add_after("later", 1s);
  q.shutdown();
  q.add("b");  // ignored
  CHECK(q.get() == "a");
  CHECK_FALSE(q.get().has_value());
  CHECK(q.waiting() == 0);
}

TEST_CASE("get unblocks on shutdown and on stop") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  std::stop_source stop;
  std::atomic<int> returned{0};
  std::jthread a([&] {
    if (!q.get(stop.get_token())) ++returned;
  });
  stop.request_stop();
  REQUIRE(eventually([&] { return returned == 1; }));
  std::jthread b([&] {
    if (!q.get()) ++returned;
  });
  q.shutdown();
  REQUIRE(eventually([&] { return returned == 2; }));
}

TEST_CASE("concurrent workers never process the same key at once") {
  core::ManualClock clock;
  WorkQueue<std::string> q(clock, schedule(), half());
  std::mutex mu;
  std::set<std::string> active;
  std::atomic<bool> overlap{false};
  std::atomic<int> processed{0};
  std::vector<std::jthread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto k = q.get()) {
        {
          std::lock_guard lock(mu);
          if (!active.insert(*k).second) overlap = true;
        }
        std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          active.erase(*k);
        }
        ++processed;
        q.done(*k);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.add("k" + std::to_string(i % 5));
  REQUIRE(eventually([&] { return q.len() == 0 && q.processing() == 0; }));
  q.shutdown_with_drain();
  workers.clear();
  CHECK_FALSE(overlap);
  CHECK(processed >= 5);
}
