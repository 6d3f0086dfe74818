#include <catch2/catch.hpp>

#include "acme/headers.hpp"
#include "acme/nonce_pool.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;

TEST_CASE("Link headers: alternates, up, relative URLs, garbage", "[acme][headers]") {
  auto links = parse_links({R"(<https://ca/cert/1/1>;rel="alternate", <https://ca/cert/1/2>; rel=alternate)",
                            R"(</dir>;rel="index")", R"(<../authz/7>;rel="up")", "garbage, <unterminated",
                            R"(<https://ca/x>; title="a,b"; rel="alternate other")"},
                           "https://ca/acme/chall/3");
  auto alts = links_with_rel(links, "alternate");
  CHECK(alts == std::vector<std::string>{"https://ca/cert/1/1", "https://ca/cert/1/2", "https://ca/x"});
  CHECK(links_with_rel(links, "index") == std::vector<std::string>{"https://ca/dir"});
  CHECK(links_with_rel(links, "up") == std::vector<std::string>{"https://ca/acme/chall/../authz/7"});
  CHECK(parse_links({"", ";;;", ">,<", "<>"}, "https://ca/").empty());
}

TEST_CASE("Retry-After: seconds, HTTP-date, garbage", "[acme][headers]") {
  auto now = core::TimePoint(std::chrono::seconds(784111777));  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after("120", now) == std::chrono::seconds(120));
  CHECK(parse_retry_after(" 0 ", now) == std::chrono::seconds(0));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now) == std::chrono::seconds(60));
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:40:37 GMT", now) == std::chrono::seconds(0));
  CHECK(parse_retry_after("99999999999999999999999", now) == std::chrono::seconds(365LL * 24 * 3600));
  for (const char* bad : {"", "-5", "1.5", "soon", "Sun, 06 Foo 1994 08:50:37 GMT", "Sun, 31 Feb 1994 08:50:37 GMT"})
    CHECK_FALSE(parse_retry_after(bad, now));
}

TEST_CASE("resolve_url", "[acme][headers]") {
  CHECK(resolve_url("https://ca:14000/a/b?x", "/c") == "https://ca:14000/c");
  CHECK(resolve_url("https://ca:14000/a/b?x", "c") == "https://ca:14000/a/c");
  CHECK(resolve_url("https://ca", "c") == "https://ca/c");
  CHECK(resolve_url("https://ca/a", "http://other/z") == "http://other/z");
}

TEST_CASE("nonce pool keeps valid nonces, newest first, bounded", "[acme][nonce]") {
  NoncePool pool(2);
  pool.push("a");
  pool.push("bad nonce!");  // not base64url: ignored
  pool.push("b");
  pool.push("c");
  CHECK(pool.size() == 2);
  CHECK(pool.pop() == "c");
  CHECK(pool.pop() == "b");
  CHECK_FALSE(pool.pop());
}

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "acme/account_store.hpp"
#include "acme/oneshot.hpp"

TEST_CASE("file account key store: missing means none, saved 0600, atomic", "[acme][store]") {
  auto dir = std::filesystem::temp_directory_path() / ("acme-store-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  FileAccountKeyStore store(dir / "account.key");
  CHECK_FALSE(store.load());
  store.save("-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
  CHECK(store.load() == "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");
  struct stat st {};
  REQUIRE(::stat((dir / "account.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK_FALSE(std::filesystem::exists(dir / "account.key.tmp"));
  write_file_atomic(dir / "tls.crt", "cert", 0644);
  REQUIRE(::stat((dir / "tls.crt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0644);
  CHECK(resolve_directory_preset("letsencrypt") == "https://acme-v02.api.letsencrypt.org/directory");
  CHECK(resolve_directory_preset("letsencrypt-staging") == "https://acme-staging-v02.api.letsencrypt.org/directory");
  CHECK(resolve_directory_preset("https://127.0.0.1:14000/dir") == "https://127.0.0.1:14000/dir");
  std::filesystem::remove_all(dir);
}

TEST_CASE("one-shot mode refuses bad options clearly", "[acme][oneshot]") {
  auto log = core::Logger::discard();
  OneShotOptions o;
  CHECK(run_issue(o, log) == 1);  // no domains
  o.domains = {"*.example.org"};
  o.out_dir = std::filesystem::temp_directory_path() / "acme-oneshot-unused";
  o.acme_directory = "https://127.0.0.1:1/dir";
  std::vector<std::string> lines;
  core::Logger capture([&](std::string_view l) { lines.emplace_back(l); }, core::LogLevel::Debug);
  CHECK(run_issue(o, capture) == 1);
  REQUIRE_FALSE(lines.empty());
  CHECK(lines.back().find("wildcard") != std::string::npos);
}
