#include <catch2/catch.hpp>

#include <string>

#include "challenge/path.hpp"

using namespace acme_sidecar::challenge;

TEST_CASE("challenge path: tokens are 1 to 256 characters of A-Za-z0-9_-", "[challenge][path]") {
  CHECK(is_valid_token("a"));
  CHECK(is_valid_token("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"));
  CHECK(is_valid_token("a_b-C9"));
  CHECK(is_valid_token(std::string(256, 'x')));
  CHECK_FALSE(is_valid_token(std::string(257, 'x')));
  CHECK_FALSE(is_valid_token(""));
  for (const char* bad : {"a.b", "a/b", "..", "a%2Fb", "a b", "a+b", "a=", "é", "a\nb", "a?b", "a#b", "a\\b"}) {
    INFO(bad);
    CHECK_FALSE(is_valid_token(bad));
  }
  CHECK_FALSE(is_valid_token(std::string_view("a\0b", 3)));
}

TEST_CASE("challenge path: exact matching, no normalisation", "[challenge][path]") {
  struct Row {
    std::string path;
    PathKind kind;
    std::string token;
  };
  auto row = GENERATE(table<std::string, PathKind, std::string>({
      {"/.well-known/acme-challenge/abc", PathKind::Token, "abc"},
      {"/.well-known/acme-challenge/A-b_9", PathKind::Token, "A-b_9"},
      {"/.well-known/acme-challenge/", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/../x", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/..%2Fx", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/a%2Fb", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/a/b", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/abc/", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/abc?x=1", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge//abc", PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge/" + std::string(257, 'a'), PathKind::InvalidToken, ""},
      {"/.well-known/acme-challenge", PathKind::NotChallenge, ""},
      {"/.well-known/acme-challenge%2Fabc", PathKind::NotChallenge, ""},
      {"/.well-known/./acme-challenge/abc", PathKind::NotChallenge, ""},
      {"//.well-known/acme-challenge/abc", PathKind::NotChallenge, ""},
      {"/.WELL-KNOWN/acme-challenge/abc", PathKind::NotChallenge, ""},
      {"http://example.com/.well-known/acme-challenge/abc", PathKind::NotChallenge, ""},
      {"/", PathKind::NotChallenge, ""},
      {"", PathKind::NotChallenge, ""},
      {"/etc/passwd", PathKind::NotChallenge, ""},
  }));
  auto [path, kind, token] = row;
  INFO(path);
  auto parsed = parse_challenge_path(path);
  CHECK(parsed.kind == kind);
  CHECK(std::string(parsed.token) == token);
}

TEST_CASE("challenge path: classify_request", "[challenge][path]") {
  const std::string ok = "/.well-known/acme-challenge/tok";
  auto c = classify_request("GET", ok, false);
  CHECK(c.action == Action::Lookup);
  CHECK(c.token == "tok");
  CHECK(classify_request("HEAD", ok, false).action == Action::Lookup);
  for (const char* m : {"POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH", "get", "BREW", ""}) {
    INFO(m);
    CHECK(classify_request(m, ok, false).action == Action::MethodNotAllowed);
  }
  CHECK(classify_request("GET", ok, true).action == Action::BadRequest);
  CHECK(classify_request("GET", "/x", false).action == Action::NotFound);
  CHECK(classify_request("GET", "/.well-known/acme-challenge/../x", false).action == Action::NotFound);
  CHECK(to_string(Result::Hit) == "hit");
  CHECK(to_string(Result::Miss) == "miss");
  CHECK(to_string(Result::Invalid) == "invalid");
}
