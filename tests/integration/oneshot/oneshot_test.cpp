// `acme-sidecar issue`: the one-shot mode (the certbot-Job use case) against a real Pebble.
#include <catch2/catch.hpp>
#include <sys/stat.h>

#include "crypto/key.hpp"
#include "crypto/x509.hpp"
#include "tests/support/pebble/pebble_rig.hpp"
#include "tests/support/process.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;

namespace {
std::string binary() { return (testing::binary_dir() / "sidecar" / "acme-sidecar").string(); }
}  // namespace

TEST_CASE("acme-sidecar issue writes a verified chain and a 0600 key for exactly the requested names") {
  testing::PebbleOptions po;
  po.http_port = 5002;
  testing::PebbleRig pebble(po);
  testing::TempDir out;
  auto key_alg = GENERATE(as<std::string>{}, "ecdsa-p256", "rsa-2048");
  auto r = testing::run({binary(), "issue", "--acme-directory", pebble.directory_url(), "--acme-ca-bundle",
                         pebble.ca_bundle_path(), "--domain", "one.example", "--domain", "two.example",
                         "--out", (out.path() / key_alg).string(), "--challenge-listen", "127.0.0.1:5002",
                         "--key-algorithm", key_alg},
                        120s);
  INFO(r.output);
  REQUIRE(r.status == 0);
  auto dir = out.path() / key_alg;
  auto chain = crypto::parse_pem_chain(testing::read_file(dir / "tls.crt"));
  auto key = crypto::PrivateKey::from_pem(testing::read_file(dir / "tls.key"));
  CHECK(crypto::to_string(key.algorithm()) == key_alg);
  CHECK(crypto::key_matches_certificate(key, chain.front()));
  CHECK(crypto::verify_chain(chain, {pebble.root_pem()}, std::chrono::system_clock::now()).ok);
  auto names = chain.front().dns_names();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"one.example", "two.example"});
  struct stat st {};
  REQUIRE(::stat((dir / "tls.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((dir / "account.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);
  // Nothing secret in what it printed.
  CHECK(r.output.find("PRIVATE KEY") == std::string::npos);
  CHECK(pebble.count_log("POST /order-plz") == 1);
}

TEST_CASE("acme-sidecar issue fails clearly when the CA cannot be reached or is not trusted") {
  testing::TempDir out;
  SECTION("nothing listens") {
    auto r = testing::run({binary(), "issue", "--acme-directory", "https://127.0.0.1:1/dir", "--domain", "a.example",
                           "--out", out.path().string(), "--challenge-listen", "127.0.0.1:5002"},
                          60s);
    CHECK(r.status == 1);
    CHECK(r.output.find("issuance failed") != std::string::npos);
  }
  SECTION("Pebble's certificate is not trusted without --acme-ca-bundle") {
    testing::PebbleOptions po;
    po.http_port = 5002;
    testing::PebbleRig pebble(po);
    auto r = testing::run({binary(), "issue", "--acme-directory", pebble.directory_url(), "--domain", "a.example",
                           "--out", out.path().string(), "--challenge-listen", "127.0.0.1:5002"},
                          60s);
    CHECK(r.status == 1);
    CHECK(pebble.count_log("POST /order-plz") == 0);
  }
  CHECK_FALSE(std::filesystem::exists(out.path() / "tls.key"));
}
