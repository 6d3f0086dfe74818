#include <catch2/catch.hpp>

#include "core/backoff.hpp"
#include "core/error.hpp"

using namespace acme_sidecar::core;
using namespace std::chrono_literals;

TEST_CASE("parse_duration accepts Go-style durations") {
  auto [text, expected] = GENERATE(table<const char*, Duration>({
      {"90s", 90s},
      {"10m", 10min},
      {"1h30m", 90min},
      {"250ms", 250ms},
      {"2d", 48h},
      {"1.5h", 90min},
  }));
  CAPTURE(text);
  CHECK(parse_duration(text) == expected);
}

TEST_CASE("parse_duration rejects garbage with a Config error naming the value") {
  auto text = GENERATE("", "10", "m", "10x", "-5s", "1h-");
  CAPTURE(text);
  try {
    parse_duration(text);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::Config);
  }
}

TEST_CASE("format_duration round-trips") {
  CHECK(format_duration(100min) == "1h40m");
  CHECK(format_duration(1500ms) == "1s500ms");
  CHECK(format_duration(0s) == "0s");
  CHECK(parse_duration(format_duration(26h + 3s)) == 26h + 3s);
}

TEST_CASE("schedule 1m,10m,100m,24h: the n-th failure waits the n-th step, the last repeats") {
  auto p = BackoffPolicy::parse("1m,10m,100m,24h", 0.0);
  RandomSource half = [] { return 0.5; };
  CHECK(backoff_delay(p, 0, half) == 0s);
  CHECK(backoff_delay(p, 1, half) == 1min);
  CHECK(backoff_delay(p, 2, half) == 10min);
  CHECK(backoff_delay(p, 3, half) == 100min);
  CHECK(backoff_delay(p, 4, half) == 24h);
  CHECK(backoff_delay(p, 40, half) == 24h);
}

TEST_CASE("jitter stays between d(1-j) and d(1+j)") {
  auto p = BackoffPolicy::parse("100s", 0.2);
  CHECK(backoff_delay(p, 1, [] { return 0.0; }) == 80s);
  CHECK(backoff_delay(p, 1, [] { return 0.5; }) == 100s);
  auto hi = backoff_delay(p, 1, [] { return 0.999999; });
  CHECK(hi < 120s);
  CHECK(hi > 119s);
}

TEST_CASE("a decreasing schedule is a Config error") {
  CHECK_THROWS_AS(BackoffPolicy::parse("10m,1m"), Error);
  CHECK_THROWS_AS(BackoffPolicy::parse("1m,,10m"), Error);
}

TEST_CASE("exponential schedule doubles up to the cap") {
  auto p = BackoffPolicy::exponential(1s, 2.0, 10s, 0.0);
  REQUIRE(p.schedule == std::vector<Duration>{1s, 2s, 4s, 8s, 10s});
  CHECK_THROWS_AS(BackoffPolicy::exponential(0s, 2.0, 10s), Error);
}

TEST_CASE("default random source stays between 0 inclusive and 1 exclusive") {
  auto r = default_random_source();
  for (int i = 0; i < 1000; ++i) {
    double v = r();
    REQUIRE(v >= 0.0);
    REQUIRE(v < 1.0);
  }
}
