#include <catch2/catch.hpp>

#include "acme/chain.hpp"
#include "acme/problem.hpp"
#include "acme/resources.hpp"
#include "core/error.hpp"
#include "crypto/encoding.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;

TEST_CASE("directory with every optional field", "[acme][parse]") {
  Directory d = parse_directory(R"({
    "newNonce": "https://ca/nonce", "newAccount": "https://ca/acct", "newOrder": "https://ca/order",
    "newAuthz": "https://ca/authz", "revokeCert": "https://ca/revoke", "keyChange": "https://ca/kc",
    "renewalInfo": "https://ca/ari",
    "meta": {"termsOfService": "https://ca/tos", "website": "https://ca/", "caaIdentities": ["ca.example"],
             "externalAccountRequired": true,
             "profiles": {"classic": "The same profile you're accustomed to", "shortlived": "Short"}},
    "someFutureField": {"x": 1}})");
  CHECK(d.new_nonce == "https://ca/nonce");
  CHECK(d.new_account == "https://ca/acct");
  CHECK(d.new_order == "https://ca/order");
  CHECK(d.new_authz == "https://ca/authz");
  CHECK(d.revoke_cert == "https://ca/revoke");
  CHECK(d.key_change == "https://ca/kc");
  CHECK(d.renewal_info == "https://ca/ari");
  CHECK(d.meta.terms_of_service == "https://ca/tos");
  CHECK(d.meta.website == "https://ca/");
  CHECK(d.meta.caa_identities == std::vector<std::string>{"ca.example"});
  CHECK(d.meta.external_account_required);
  REQUIRE(d.meta.profiles.size() == 2);
  CHECK(d.meta.profiles.at("shortlived") == "Short");
}

TEST_CASE("directory without optional fields (Pebble 2.4 shape)", "[acme][parse]") {
  Directory d = parse_directory(R"({"keyChange":"https://127.0.0.1:14000/rollover-account-key",
    "meta":{"externalAccountRequired":false,"termsOfService":"data:text/plain,Do%20what%20thou%20wilt"},
    "newAccount":"https://127.0.0.1:14000/sign-me-up","newNonce":"https://127.0.0.1:14000/nonce-plz",
    "newOrder":"https://127.0.0.1:14000/order-plz","revokeCert":"https://127.0.0.1:14000/revoke-cert"})");
  CHECK(d.renewal_info.empty());
  CHECK(d.meta.profiles.empty());
  CHECK_FALSE(d.meta.external_account_required);
  CHECK(parse_directory(R"({"newNonce":"a","newAccount":"b","newOrder":"c"})").meta.terms_of_service == std::nullopt);
}

TEST_CASE("hostile directories are Parse errors", "[acme][parse]") {
  for (const char* bad : {"", "null", "[]", "{", "{\"newNonce\":1,\"newAccount\":\"b\",\"newOrder\":\"c\"}",
                          "{\"newAccount\":\"b\",\"newOrder\":\"c\"}",
                          "{\"newNonce\":\"a\",\"newAccount\":\"b\",\"newOrder\":\"c\",\"meta\":[]}",
                          "{\"newNonce\":\"a\",\"newAccount\":\"b\",\"newOrder\":\"c\",\"meta\":{\"externalAccountRequired\":\"yes\"}}"}) {
    INFO(bad);
    try {
      parse_directory(bad);
      FAIL("accepted");
    } catch (const core::Error& e) {
      CHECK(e.kind() == core::ErrorKind::Parse);
    }
  }
}

TEST_CASE("order, authorization and challenge parsing", "[acme][parse]") {
  Order o = parse_order(R"({"status":"invalid","expires":"2025-01-01T00:00:00Z",
    "identifiers":[{"type":"dns","value":"a.example"}],"authorizations":["https://ca/authz/1"],
    "finalize":"https://ca/fin","error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"nope"},
    "profile":"classic","replaces":"abc.def"})");
  CHECK(o.status == Status::Invalid);
  CHECK(o.identifiers == std::vector<Identifier>{{"dns", "a.example"}});
  REQUIRE(o.error);
  CHECK(o.error->short_type() == "unauthorized");
  CHECK(o.profile == "classic");
  CHECK(o.replaces == "abc.def");
  CHECK_THROWS_AS(parse_order(R"({"status":"bogus","finalize":"x"})"), core::Error);
  CHECK_THROWS_AS(parse_order(R"({"status":"pending"})"), core::Error);
  CHECK_THROWS_AS(parse_order(R"({"status":"pending","finalize":"x","identifiers":[1]})"), core::Error);

  Authorization a = parse_authorization(R"({"identifier":{"type":"dns","value":"a.example"},"status":"pending",
    "challenges":[{"type":"dns-01","url":"u1","token":"t1","status":"pending"},
                  {"type":"http-01","url":"u2","token":"t2","status":"pending"}]})");
  REQUIRE(a.find("http-01"));
  CHECK(a.find("http-01")->token == "t2");
  CHECK(a.find("tls-alpn-01") == nullptr);
  CHECK_THROWS_AS(parse_authorization(R"({"status":"pending"})"), core::Error);
  CHECK_THROWS_AS(parse_authorization(R"({"identifier":{"type":"dns","value":"x"},"status":"valid","challenges":[5]})"),
                  core::Error);
}

TEST_CASE("problem documents decode into distinct error kinds", "[acme][problem]") {
  Problem p = parse_problem(R"({"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"Some bad",
    "status":400,"subproblems":[{"type":"urn:ietf:params:acme:error:caa","detail":"CAA forbids",
    "identifier":{"type":"dns","value":"b.example"}}]})");
  CHECK(p.short_type() == "rejectedIdentifier");
  CHECK(p.status == 400);
  REQUIRE(p.subproblems.size() == 1);
  CHECK(p.describe() == "Some bad [b.example: caa CAA forbids]");

  auto rl = response_error(429, "application/problem+json",
                           R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"slow down"})",
                           std::chrono::seconds(42), "ACME order");
  CHECK(rl.kind() == core::ErrorKind::RateLimited);
  CHECK(rl.acme_type == "rateLimited");
  CHECK(rl.retry_after == std::chrono::seconds(42));
  CHECK(rl.http_status == 429);

  for (const char* t : {"badNonce", "unauthorized", "connection", "dns", "incorrectResponse", "malformed",
                        "serverInternal", "orderNotReady", "accountDoesNotExist"}) {
    auto e = response_error(400, "application/problem+json",
                            std::string(R"({"type":"urn:ietf:params:acme:error:)") + t + R"(","detail":"d"})",
                            std::nullopt, "x");
    CHECK(e.kind() == core::ErrorKind::AcmeProblem);
    CHECK(e.acme_type == t);
  }
  // Not a problem document: generic kinds by status, never a crash.
  CHECK(response_error(503, "text/html", "<html>", std::nullopt, "x").kind() == core::ErrorKind::ServerError);
  CHECK(response_error(429, "", "", std::nullopt, "x").kind() == core::ErrorKind::RateLimited);
  CHECK(response_error(404, "application/problem+json", "{garbage", std::nullopt, "x").kind() ==
        core::ErrorKind::NotFound);
}

TEST_CASE("RFC 3339 timestamps and renewal info", "[acme][parse]") {
  using namespace std::chrono;
  CHECK(parse_rfc3339("1970-01-01T00:00:00Z").time_since_epoch() == core::Duration(0));
  CHECK(parse_rfc3339("2021-01-03T00:00:00+01:00") == parse_rfc3339("2021-01-02T23:00:00Z"));
  CHECK(parse_rfc3339("2021-01-03T00:00:00.5Z") - parse_rfc3339("2021-01-03T00:00:00Z") == milliseconds(500));
  for (const char* bad : {"", "2021-13-01T00:00:00Z", "2021-02-30T00:00:00Z", "2021-01-01T00:00:00",
                          "2021-01-01T00:00:00Zjunk", "2021-01-01T25:00:00Z", "2021-01-01T00:00:00.Z",
                          "1404-01-01T00:00:00Z", "9999-12-31T23:59:59Z"})
    CHECK_THROWS_AS(parse_rfc3339(bad), core::Error);
  RenewalInfo r = parse_renewal_info(R"({"suggestedWindow":{"start":"2025-01-02T04:00:00Z",
    "end":"2025-01-03T04:00:00Z"},"explanationURL":"https://ca/why"})");
  CHECK(r.window_end - r.window_start == hours(24));
  CHECK(r.explanation_url == "https://ca/why");
  CHECK_THROWS_AS(parse_renewal_info(R"({"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}})"),
                  core::Error);
  CHECK_THROWS_AS(parse_renewal_info(R"({})"), core::Error);
}

TEST_CASE("ARI CertID matches RFC 9773 section 4.1", "[acme][ari]") {
  auto aki = crypto::hex_decode("69885B6B87464041E1B37B847BA0AE2CDE01C8D4");
  auto serial = crypto::hex_decode("0087654321");
  CHECK(ari_cert_id(crypto::ByteView(aki), crypto::ByteView(serial)) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  CHECK_THROWS_AS(ari_cert_id(crypto::ByteView(), crypto::ByteView(serial)), core::Error);
}
