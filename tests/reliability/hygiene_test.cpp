// Secrets hygiene of the one-shot mode: `acme-sidecar issue ... --out DIR` writes tls.key with mode 0600
// (and never prints the key). The daemon's logs, Events, ConfigMaps and metrics are scanned at the end of
// every other scenario (check_hygiene).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <iostream>

#include "tests/reliability/hygiene.hpp"
#include "tests/reliability/rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::reliability;

TEST_CASE("one-shot mode: the key file is 0600 and the key never reaches the output") {
  RigOptions o;
  o.replicas = 0;  // nginx routes challenges to 127.0.0.1:8089, where the one-shot responder listens
  Rig rig(o);
  auto out = rig.dir() / "oneshot";
  auto r = testing::run({(testing::binary_dir() / "sidecar" / "acme-sidecar").string(), "issue", "--domain",
                         "oneshot.demo.example", "--out", out.string(), "--challenge-listen", "127.0.0.1:8089",
                         "--acme-directory", rig.pebble().directory_url(), "--acme-ca-bundle",
                         rig.pebble().ca_bundle_path(), "--log-level", "debug"},
                        120s, {{"ASAN_OPTIONS", "detect_leaks=0"}});
  INFO(r.output);
  REQUIRE(r.status == 0);
  struct stat st{};
  REQUIRE(::stat((out / "tls.key").c_str(), &st) == 0);
  auto key = testing::read_file(out / "tls.key");
  std::cout << "[oneshot] observed: tls.key mode " << std::oct << (st.st_mode & 07777) << std::dec << ", "
            << r.output.size() << " bytes of output scanned\n";
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(key.find("PRIVATE KEY") != std::string::npos);
  CHECK(r.output.find("PRIVATE KEY") == std::string::npos);
  std::string body;
  for (auto line_start = key.find('\n') + 1; line_start < key.size();) {
    auto e = key.find('\n', line_start);
    auto line = key.substr(line_start, e - line_start);
    if (line.rfind("-----", 0) != 0) body += line;
    line_start = e == std::string::npos ? key.size() : e + 1;
  }
  REQUIRE(body.size() > 48);
  CHECK(r.output.find(body.substr(8, 40)) == std::string::npos);
}
