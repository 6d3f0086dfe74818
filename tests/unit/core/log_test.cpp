#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"

using namespace acme_sidecar::core;

namespace {
struct Captured {
  std::vector<std::string> lines;
  LogSink sink() {
    return [this](std::string_view l) { lines.emplace_back(l); };
  }
};
}  // namespace

TEST_CASE("log lines are JSON with level, message, context and fields") {
  Captured out;
  ManualClock clock;
  Logger log(out.sink(), LogLevel::Info, &clock);
  auto scoped = log.with("secret", "default/web-tls");
  scoped.info("issued", {{"names", "a.example,b.example"}});
  scoped.debug("hidden");
  REQUIRE(out.lines.size() == 1);
  auto j = nlohmann::json::parse(out.lines[0]);
  CHECK(j["level"] == "info");
  CHECK(j["msg"] == "issued");
  CHECK(j["secret"] == "default/web-tls");
  CHECK(j["names"] == "a.example,b.example");
  CHECK(j["ts"] == "2023-11-14T22:13:20.000Z");
}

TEST_CASE("control characters and quotes are escaped so every line parses") {
  Captured out;
  Logger log(out.sink(), LogLevel::Debug);
  log.warn("bad \"input\"\n\x01", {{"host", "a\\b\tc"}});
  REQUIRE(out.lines.size() == 1);
  auto j = nlohmann::json::parse(out.lines[0]);
  CHECK(j["msg"] == "bad \"input\"\n\x01");
  CHECK(j["host"] == "a\\b\tc");
}

TEST_CASE("private key material is never written") {
  Captured out;
  Logger log(out.sink(), LogLevel::Debug);
  log.error("oops", {{"body", "-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----"}});
  log.error("jwk", {{"key", R"({"kty":"EC","d":"secret"})"}});
  REQUIRE(out.lines.size() == 2);
  for (const auto& l : out.lines) {
    CHECK(l.find("MIGHAgEA") == std::string::npos);
    CHECK(l.find("secret\"") == std::string::npos);
    CHECK(l.find("[redacted]") != std::string::npos);
  }
}

TEST_CASE("parse_log_level") {
  CHECK(parse_log_level("debug") == LogLevel::Debug);
  CHECK(parse_log_level("warn") == LogLevel::Warn);
  CHECK_THROWS_AS(parse_log_level("loud"), Error);
}
