// The ACME client over real HTTP (CurlClient) against the CA stand-in: Retry-After is obeyed by the
// wall clock, as the stand-in's own request timestamps show; rateLimited carries Retry-After.
#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <optional>

#include "acme/client.hpp"
#include "core/error.hpp"
#include "http/curl_client.hpp"
#include "tests/support/ca_standin/ca_standin.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;

namespace {
struct MapPublisher final : ChallengePublisher {
  std::mutex mu;
  std::map<std::string, std::string> tokens;
  void publish(const std::string& t, const std::string& ka, const ChallengeContext&) override {
    std::lock_guard l(mu);
    tokens[t] = ka;
  }
  void unpublish(const std::string& t) override {
    std::lock_guard l(mu);
    tokens.erase(t);
  }
};
}  // namespace

TEST_CASE("stand-in over HTTP: polls wait for Retry-After, no earlier", "[standin][retry-after]") {
  core::SystemClock clock;
  testing::CaStandinOptions o;
  o.authz_pending_polls = 1;
  o.authz_retry_after = 1;
  o.order_processing_polls = 2;
  o.order_retry_after = 2;
  testing::CaStandinServer server(o, clock);
  http::CurlClient http;
  MemoryAccountKeyStore keys;
  ClientOptions co;
  co.directory_url = server.ca().directory_url();
  co.poll_interval = std::chrono::milliseconds(20);
  co.trusted_roots = {server.ca().root_pem()};
  AcmeClient client(http, clock, core::Logger::discard(), keys, co);
  MapPublisher pub;
  IssueRequest req;
  req.names = {"a.example"};
  req.key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  client.issue(req, pub);
  // The order is polled while the CA validates (Retry-After: 1) and while it issues (Retry-After: 2).
  std::vector<core::TimePoint> validating, processing;
  std::optional<core::TimePoint> finalized;
  for (const auto& r : server.ca().requests()) {
    if (r.path.find("/finalize") != std::string::npos) finalized = r.at;
    else if (r.path.rfind("/order/", 0) == 0) (finalized ? processing : validating).push_back(r.at);
  }
  REQUIRE(finalized);
  REQUIRE(validating.size() == 2);
  CHECK(validating[1] - validating[0] >= std::chrono::seconds(1));
  REQUIRE(processing.size() == 2);
  CHECK(processing[0] - *finalized >= std::chrono::seconds(2));
  CHECK(processing[1] - processing[0] >= std::chrono::seconds(2));
}

TEST_CASE("stand-in over HTTP: rateLimited with Retry-After", "[standin][ratelimit]") {
  core::SystemClock clock;
  testing::CaStandinOptions o;
  o.rate_limited_new_orders = 1;
  o.rate_limit_retry_after = 3600;
  testing::CaStandinServer server(o, clock);
  http::CurlClient http;
  MemoryAccountKeyStore keys;
  ClientOptions co;
  co.directory_url = server.ca().directory_url();
  AcmeClient client(http, clock, core::Logger::discard(), keys, co);
  MapPublisher pub;
  IssueRequest req;
  req.names = {"a.example"};
  req.key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  try {
    client.issue(req, pub);
    FAIL("no error");
  } catch (const core::Error& e) {
    CHECK(e.kind() == core::ErrorKind::RateLimited);
    CHECK(e.retry_after == std::chrono::seconds(3600));
    CHECK(e.http_status == 429);
  }
}
