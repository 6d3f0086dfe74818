#include <catch2/catch.hpp>

#include "http/client.hpp"

using acme_sidecar::http::Response;

TEST_CASE("Response header lookup is case-insensitive and keeps order", "[http]") {
  Response r;
  r.headers = {{"Content-Type", "application/json"}, {"Link", "<a>;rel=up"}, {"link", "<b>;rel=alternate"}};
  CHECK(r.header("content-type").value() == "application/json");
  CHECK(r.header("LINK").value() == "<a>;rel=up");
  CHECK_FALSE(r.header("Retry-After").has_value());
  CHECK(r.headers_named("Link") == std::vector<std::string>{"<a>;rel=up", "<b>;rel=alternate"});
  CHECK(r.headers_named("x-none").empty());
}
