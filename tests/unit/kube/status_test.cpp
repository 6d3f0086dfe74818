#include "kube/status.hpp"

#include <catch2/catch.hpp>

#include "fakes.hpp"

using namespace acme_sidecar;
using core::ErrorKind;
using kube::testing::json_response;
using kube::testing::status_body;

TEST_CASE("Status objects decode into error kinds", "[kube][status]") {
  auto [code, reason, kind] = GENERATE(table<int, std::string, ErrorKind>({
      {404, "NotFound", ErrorKind::NotFound},
      {409, "AlreadyExists", ErrorKind::AlreadyExists},
      {409, "Conflict", ErrorKind::Conflict},
      {403, "Forbidden", ErrorKind::Forbidden},
      {401, "Unauthorized", ErrorKind::Unauthorized},
      {410, "Expired", ErrorKind::Gone},
      {410, "Gone", ErrorKind::Gone},
      {429, "TooManyRequests", ErrorKind::TooManyRequests},
      {422, "Invalid", ErrorKind::Invalid},
      {400, "BadRequest", ErrorKind::Invalid},
      {500, "InternalError", ErrorKind::ServerError},
      {503, "ServiceUnavailable", ErrorKind::ServerError},
      {504, "Timeout", ErrorKind::Timeout},
      {500, "ServerTimeout", ErrorKind::ServerError},
      {405, "MethodNotAllowed", ErrorKind::Invalid},
  }));
  auto e = kube::status_error(json_response(code, status_body(code, reason, "the message")));
  INFO(code << " " << reason);
  CHECK(e.kind() == kind);
  CHECK(e.http_status == code);
  CHECK(e.message() == "the message");
}

TEST_CASE("Retry-After comes from the header or the Status details", "[kube][status]") {
  auto r = json_response(429, status_body(429, "TooManyRequests"));
  r.headers.emplace_back("Retry-After", "7");
  CHECK(kube::status_error(r).retry_after == std::chrono::seconds(7));

  auto body = status_body(429, "TooManyRequests");
  body["details"] = {{"retryAfterSeconds", 3}, {"name", "x"}};
  CHECK(kube::status_error(json_response(429, body)).retry_after == std::chrono::seconds(3));

  auto bad = json_response(429, status_body(429, "TooManyRequests"));
  bad.headers.emplace_back("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT");
  CHECK_FALSE(kube::status_error(bad).retry_after.has_value());
  bad.headers.back().second = "-5";
  CHECK_FALSE(kube::status_error(bad).retry_after.has_value());
}

TEST_CASE("Non-Status error bodies still map by HTTP code, bounded and printable", "[kube][status]") {
  http::Response r;
  r.status = 502;
  r.body = "<html>" + std::string(5000, 'x') + "\x01\xff</html>";
  auto e = kube::status_error(r);
  CHECK(e.kind() == ErrorKind::ServerError);
  CHECK(e.message().size() <= 200);
  r.status = 404;
  r.body = "";
  CHECK(kube::status_error(r).kind() == ErrorKind::NotFound);
  r.body = R"({"kind":"Status","code":"not a number","reason":7,"details":"nope"})";
  CHECK(kube::status_error(r).kind() == ErrorKind::NotFound);
  r.body = "[1,2,3]";
  CHECK(kube::status_error(r).kind() == ErrorKind::NotFound);
}

TEST_CASE("Status from a watch ERROR event uses its own code", "[kube][status]") {
  CHECK(kube::status_error_from_body(status_body(410, "Expired").dump(), 0).kind() == ErrorKind::Gone);
  CHECK(kube::status_error_from_body(status_body(500, "InternalError").dump(), 0).kind() == ErrorKind::ServerError);
  CHECK(kube::status_error_from_body("garbage", 0).kind() == ErrorKind::Internal);
}
