#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "core/clock.hpp"

using namespace acme_sidecar::core;
using namespace std::chrono_literals;

TEST_CASE("ManualClock wakes a sleeper only when advanced past its deadline") {
  ManualClock clock;
  auto start = clock.now();
  std::atomic<int> result{-1};
  std::jthread sleeper([&](std::stop_token st) { result = clock.sleep_until(start + 10s, st) ? 1 : 0; });
  REQUIRE(clock.wait_for_waiters(1, 5000ms));
  clock.advance(9s);
  // Still parked: the waiter count stays at one after the wake-up re-check.
  REQUIRE(clock.wait_for_waiters(1, 5000ms));
  CHECK(result == -1);
  clock.advance(1s);
  sleeper.join();
  CHECK(result == 1);
  CHECK(clock.now() == start + 10s);
}

TEST_CASE("ManualClock sleep returns false on stop request") {
  ManualClock clock;
  std::atomic<int> result{-1};
  std::jthread sleeper([&](std::stop_token st) { result = clock.sleep_for(1h, st) ? 1 : 0; });
  REQUIRE(clock.wait_for_waiters(1, 5000ms));
  sleeper.request_stop();
  sleeper.join();
  CHECK(result == 0);
}

TEST_CASE("SystemClock sleep_until in the past returns at once and stop interrupts a long sleep") {
  SystemClock clock;
  std::stop_source never;
  CHECK(clock.sleep_until(clock.now() - 1s, never.get_token()));
  std::atomic<int> result{-1};
  std::jthread sleeper([&](std::stop_token st) { result = clock.sleep_for(1h, st) ? 1 : 0; });
  sleeper.request_stop();
  sleeper.join();
  CHECK(result == 0);
}
