#include "kube/time.hpp"

#include <catch2/catch.hpp>
#include <regex>

using namespace acme_sidecar;
using namespace std::chrono;

TEST_CASE("MicroTime has exactly six fractional digits", "[kube][time]") {
  core::TimePoint t = core::TimePoint(seconds(1'700'000'000)) + microseconds(1234);
  CHECK(kube::format_micro_time(t) == "2023-11-14T22:13:20.001234Z");
  CHECK(kube::format_time(t) == "2023-11-14T22:13:20Z");
  CHECK(std::regex_match(kube::format_micro_time(core::TimePoint(seconds(0))),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")));
}

TEST_CASE("RFC 3339 parsing round-trips and rejects garbage", "[kube][time]") {
  core::TimePoint t = core::TimePoint(seconds(1'700'000'000)) + microseconds(654321);
  CHECK(kube::parse_time(kube::format_micro_time(t)) == t);
  CHECK(kube::parse_time("2023-11-14T22:13:20Z") == core::TimePoint(seconds(1'700'000'000)));
  CHECK(kube::parse_time("2023-11-14T23:13:20+01:00") == core::TimePoint(seconds(1'700'000'000)));
  CHECK(kube::parse_time("2023-11-14T22:13:20.5Z") == core::TimePoint(seconds(1'700'000'000)) + milliseconds(500));
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z", "2023-11-14T22:13:20.Z",
                          "2023-11-14T22:13:20Zjunk", "2023-02-30T00:00:00Z", "abcd-11-14T22:13:20Z"}) {
    INFO(bad);
    CHECK_FALSE(kube::parse_time(bad).has_value());
  }
}
