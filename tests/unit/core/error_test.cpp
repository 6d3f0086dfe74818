#include <catch2/catch.hpp>

#include "core/error.hpp"

using namespace acme_sidecar::core;

TEST_CASE("Error carries kind, message and context in what()") {
  Error e(ErrorKind::Conflict, "secret changed", {{"secret", "default/web-tls"}});
  CHECK(e.kind() == ErrorKind::Conflict);
  CHECK(e.message() == "secret changed");
  CHECK(std::string(e.what()) == "conflict: secret changed secret=default/web-tls");
  auto more = e.with("attempt", "2");
  CHECK(more.context().size() == 2);
  CHECK(std::string(more.what()).find("attempt=2") != std::string::npos);
}

TEST_CASE("Error::with keeps retry_after, acme_type and status") {
  Error e(ErrorKind::RateLimited, "too many certificates");
  e.retry_after = std::chrono::seconds(3600);
  e.acme_type = "rateLimited";
  e.http_status = 429;
  auto copy = e.with("domain", "a.example");
  CHECK(copy.retry_after == std::chrono::seconds(3600));
  CHECK(copy.acme_type == "rateLimited");
  CHECK(copy.http_status == 429);
}

TEST_CASE("transient kinds are the retryable ones") {
  CHECK(is_transient(ErrorKind::ServerError));
  CHECK(is_transient(ErrorKind::Transport));
  CHECK(is_transient(ErrorKind::RateLimited));
  CHECK_FALSE(is_transient(ErrorKind::Config));
  CHECK_FALSE(is_transient(ErrorKind::Forbidden));
  CHECK_FALSE(is_transient(ErrorKind::Crypto));
}
