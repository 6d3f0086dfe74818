// The ACME client against Debian's real Pebble (inside its own network namespace: see CMakeLists.txt).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <atomic>
#include <map>
#include <mutex>

#include "acme/chain.hpp"
#include "acme/client.hpp"
#include "acme/oneshot.hpp"
#include "challenge/responder.hpp"
#include "challenge/store.hpp"
#include "core/error.hpp"
#include "crypto/x509.hpp"
#include "http/curl_client.hpp"
#include "tests/support/pebble/pebble_rig.hpp"
#include "tests/support/process.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;
using testing::PebbleOptions;
using testing::PebbleRig;

namespace {

constexpr int kHttpPort = 5002;

struct CountingObserver final : Observer {
  std::atomic<int> bad_nonce{0}, requests{0}, transport_failures{0};
  void on_request(Endpoint, long status, std::chrono::nanoseconds) override {
    requests++;
    if (status == 0) transport_failures++;
  }
  void on_bad_nonce_retry(Endpoint) override { bad_nonce++; }
  void on_rate_limited(Endpoint) override {}
};

// Responder on the port Pebble validates against, fed by the client through StorePublisher.
struct Responder {
  challenge::InMemoryChallengeStore store;
  challenge::Responder responder{store, [] {
                                   challenge::ResponderOptions o;
                                   o.listen = "127.0.0.1:" + std::to_string(kHttpPort);
                                   return o;
                                 }()};
  StorePublisher publisher{store};
};

// Publishes a wrong key authorization on purpose.
struct WrongPublisher final : ChallengePublisher {
  challenge::ChallengeStore& store;
  explicit WrongPublisher(challenge::ChallengeStore& s) : store(s) {}
  void publish(const std::string& t, const std::string&, const ChallengeContext&) override {
    store.put(t, t + ".AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  }
  void unpublish(const std::string& t) override { store.remove(t); }
};

struct Client {
  http::CurlClient http;
  core::SystemClock clock;
  MemoryAccountKeyStore keys;
  CountingObserver observer;
  std::unique_ptr<AcmeClient> client;
  Client(const PebbleRig& rig, ClientOptions extra = {}, bool trust = true)
      : http([&] {
          http::TlsOptions t;
          if (trust) t.ca_file = rig.ca_bundle_path();
          return t;
        }()) {
    extra.directory_url = rig.directory_url();
    extra.contact = {"mailto:test@example.org"};
    extra.poll_interval = std::chrono::milliseconds(50);
    if (extra.order_timeout == ClientOptions{}.order_timeout) extra.order_timeout = std::chrono::seconds(60);
    extra.transport.request_timeout = std::chrono::milliseconds(5000);
    extra.transport.connect_timeout = std::chrono::milliseconds(2000);
    client = std::make_unique<AcmeClient>(http, clock, core::Logger::discard(), keys, extra, &observer);
  }
  AcmeClient* operator->() { return client.get(); }
};

std::vector<std::string> names(std::size_t n, const std::string& suffix = "example.test") {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back("host" + std::to_string(i) + "." + suffix);
  std::sort(out.begin(), out.end());
  return out;
}

IssueRequest request(std::vector<std::string> n, crypto::KeyAlgorithm alg = crypto::KeyAlgorithm::EcdsaP256) {
  IssueRequest r;
  r.names = std::move(n);
  r.key = crypto::PrivateKey::generate(alg);
  return r;
}

void check_certificate(const IssuedCertificate& out, const IssueRequest& req, const PebbleRig& rig) {
  auto chain = crypto::parse_pem_chain(out.chain_pem);
  REQUIRE(chain.size() >= 2);
  auto sans = chain[0].dns_names();
  std::sort(sans.begin(), sans.end());
  auto want = req.names;
  std::sort(want.begin(), want.end());
  CHECK(sans == want);
  CHECK(crypto::key_matches_certificate(*req.key, chain[0]));
  auto v = crypto::verify_chain(chain, {rig.root_pem()}, std::chrono::system_clock::now());
  INFO(v.error);
  CHECK(v.ok);
  // Pebble's chains (RSA-2048 intermediate, sha256WithRSAEncryption) are checked without OpenSSL's
  // X.509 decoding, and the stored PEM is what that check returns.
  auto checked = acme::check_chain(out.chain_pem, req.names, req.key->public_key(), {}, std::chrono::system_clock::now());
  CHECK(checked.from_summaries);
  CHECK(checked.pem == out.chain_pem);
  CHECK(out.root_name == acme::chain_root_name(checked));
}

core::Error error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e;
  }
  FAIL("no error thrown");
  return core::Error(core::ErrorKind::Internal, "unreachable");
}

}  // namespace

TEST_CASE("Pebble: ECDSA P-256/P-384 and RSA-2048 with 1, 3 and 100 names", "[pebble][keys]") {
  auto [alg, count] = GENERATE(table<crypto::KeyAlgorithm, std::size_t>({
      {crypto::KeyAlgorithm::EcdsaP256, 1},
      {crypto::KeyAlgorithm::EcdsaP256, 3},
      {crypto::KeyAlgorithm::EcdsaP256, 100},
      {crypto::KeyAlgorithm::EcdsaP384, 1},
      {crypto::KeyAlgorithm::EcdsaP384, 3},
      {crypto::KeyAlgorithm::EcdsaP384, 100},
      {crypto::KeyAlgorithm::Rsa2048, 1},
      {crypto::KeyAlgorithm::Rsa2048, 3},
      {crypto::KeyAlgorithm::Rsa2048, 100},
  }));
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  Client c(rig);
  auto req = request(names(count), alg);
  auto out = c->issue(req, responder.publisher);
  check_certificate(out, req, rig);
  // Pebble's own log agrees: one order, one finalize, one challenge POST per name, and each
  // authorization read once (the order, not every authorization, is polled while Pebble validates).
  CHECK(rig.count_log("POST /order-plz") == 1);
  CHECK(rig.count_log("POST /finalize-order/") == 1);
  CHECK(rig.count_log("POST /chalZ/") == count);
  CHECK(rig.count_log("POST /authZ/") == count);
  CHECK(responder.store.size() == 0);
}

TEST_CASE("Pebble rejecting 30 % of the nonces: every issuance succeeds, retries counted", "[pebble][nonce]") {
  PebbleOptions o;
  // Not 50 %: a request fails after 16 rejections in a row (15 retries), and Pebble draws its rejections
  // from Go's math/rand, which the Debian build (Go 1.19) seeds identically in every process — at 50 % one
  // CI run met such a run (newOrder failed with badNonce). At 30 % the 5 issuances still see ~15 retries.
  o.nonce_reject_percent = 30;
  PebbleRig rig(o);
  Responder responder;
  Client c(rig);
  for (int i = 0; i < 5; ++i) {
    auto req = request(names(3, "n" + std::to_string(i) + ".test"));
    check_certificate(c->issue(req, responder.publisher), req, rig);
  }
  CHECK(c.observer.bad_nonce > 0);
}

TEST_CASE("Pebble: a wrong challenge answer ends the order invalid with Pebble's error", "[pebble][invalid]") {
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  WrongPublisher wrong(responder.store);
  Client c(rig);
  auto start = std::chrono::steady_clock::now();
  auto e = error_of([&] { c->issue(request({"wrong.example.test"}), wrong); });
  CHECK(e.kind() == core::ErrorKind::AcmeProblem);
  CHECK(e.acme_type == "unauthorized");
  std::string msg = e.what();
  INFO(msg);
  CHECK(msg.find("wrong.example.test") != std::string::npos);
  CHECK(msg.find("key authorization") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("Pebble killed mid-order: transport error in time, after a restart the client re-registers",
          "[pebble][restart]") {
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  ClientOptions co;
  co.order_timeout = std::chrono::seconds(20);
  Client c(rig, co);
  auto req = request(names(2, "restart.test"));
  std::string order_url;
  req.on_order_created = [&](const std::string& u) { order_url = u; };
  bool killed = false;
  req.self_check = [&](const std::string&, const std::string&, const std::string&) {
    if (!killed) {
      killed = true;
      rig.kill();
    }
  };
  auto start = std::chrono::steady_clock::now();
  auto e = error_of([&] { c->issue(req, responder.publisher); });
  CHECK(e.kind() == core::ErrorKind::Transport);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
  CHECK(c.observer.transport_failures > 0);
  REQUIRE_FALSE(order_url.empty());

  rig.restart();  // forgets accounts, orders, nonces and roots
  req.self_check = nullptr;
  req.on_order_created = nullptr;
  // The new leader resumes the recorded order: it is gone, so a new account and order are made.
  auto out = c->resume(order_url, req, responder.publisher);
  check_certificate(out, req, rig);
  CHECK(rig.count_log("POST /sign-me-up") >= 1);
  // And a plain issue on the same client keeps working.
  check_certificate(c->issue(req, responder.publisher), req, rig);
}

TEST_CASE("Pebble stopped: a clear transport error within the deadline", "[pebble][restart]") {
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  Client c(rig);
  c->ensure_account();
  rig.stop();
  auto start = std::chrono::steady_clock::now();
  auto e = error_of([&] { c->issue(request({"stopped.test"}), responder.publisher); });
  CHECK(e.kind() == core::ErrorKind::Transport);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("Pebble resume from every state after the leader died", "[pebble][resume]") {
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  Client first(rig);
  auto req = request(names(2, "resume.test"));
  std::string order_url;
  req.on_order_created = [&](const std::string& u) { order_url = u; };
  // The leader "dies" while publishing the first token: the order stays pending at the CA.
  struct DyingPublisher final : ChallengePublisher {
    void publish(const std::string&, const std::string&, const ChallengeContext&) override {
      throw std::runtime_error("leader died");
    }
    void unpublish(const std::string&) override {}
  } dying;
  CHECK_THROWS(first->issue(req, dying));
  REQUIRE_FALSE(order_url.empty());
  // A second replica with the same account key picks the order up.
  Client second(rig);
  second.keys.save(*first.keys.load());
  auto out = second->resume(order_url, req, responder.publisher);
  CHECK(out.order_url == order_url);
  check_certificate(out, req, rig);
  CHECK(rig.count_log("POST /order-plz") == 1);
}

TEST_CASE("Pebble requiring External Account Binding", "[pebble][eab]") {
  PebbleOptions o;
  o.eab_required = true;
  o.eab_keys = {{"kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"},
                {"kid-2", "b10lLJs8l1GPIzsLP0s6pMt8O0XVGnfTaCeROxQM0BIt2XrJMDHJZBM5NuQmQJQH"}};
  PebbleRig rig(o);
  Responder responder;
  SECTION("refused without EAB") {
    Client c(rig);
    auto e = error_of([&] { c->issue(request({"eab.test"}), responder.publisher); });
    CHECK(e.kind() == core::ErrorKind::Config);
    CHECK(std::string(e.what()).find("External Account Binding") != std::string::npos);
  }
  SECTION("refused by Pebble with the wrong HMAC key") {
    ClientOptions co;
    co.eab = ExternalAccountBinding{"kid-1", o.eab_keys["kid-2"]};
    Client c(rig, co);
    auto e = error_of([&] { c->issue(request({"eab.test"}), responder.publisher); });
    CHECK(e.kind() == core::ErrorKind::AcmeProblem);
  }
  SECTION("accepted with EAB") {
    ClientOptions co;
    co.eab = ExternalAccountBinding{"kid-1", o.eab_keys["kid-1"]};
    Client c(rig, co);
    auto req = request({"eab.test"});
    check_certificate(c->issue(req, responder.publisher), req, rig);
  }
}

TEST_CASE("Pebble with an untrusted serving certificate is refused", "[pebble][tls]") {
  PebbleRig rig(PebbleOptions{});
  Responder responder;
  Client c(rig, {}, /*trust=*/false);
  auto e = error_of([&] { c->issue(request({"tls.test"}), responder.publisher); });
  CHECK(e.kind() == core::ErrorKind::Transport);
  CHECK(rig.count_log("POST /sign-me-up") == 0);
}

TEST_CASE("Pebble refusing a blocked domain", "[pebble][blocklist]") {
  PebbleOptions o;
  o.domain_blocklist = {"blocked.test"};
  PebbleRig rig(o);
  Responder responder;
  Client c(rig);
  auto e = error_of([&] { c->issue(request({"ok.test", "blocked.test"}), responder.publisher); });
  CHECK(e.kind() == core::ErrorKind::AcmeProblem);
  CHECK(e.acme_type == "rejectedIdentifier");
}

TEST_CASE("Pebble alternate chains: the preferred root is chosen", "[pebble][chain]") {
  PebbleOptions o;
  o.extra_env = {{"PEBBLE_ALTERNATE_ROOTS", "1"}};
  PebbleRig rig(o);
  Responder responder;
  // The alternate root's name, from Pebble's management interface.
  http::TlsOptions t;
  t.ca_file = rig.ca_bundle_path();
  http::CurlClient mgmt(t);
  http::Request r;
  r.url = "https://127.0.0.1:" + std::to_string(o.management_port) + "/roots/1";
  auto alt_root = crypto::Certificate::from_pem(mgmt.send(r).body);
  ClientOptions co;
  co.preferred_chain = alt_root.subject_cn();
  Client c(rig, co);
  auto out = c->issue(request({"chain.test"}), responder.publisher);
  CHECK(out.root_name == alt_root.subject_cn());
  auto chain = crypto::parse_pem_chain(out.chain_pem);
  CHECK(crypto::verify_chain(chain, {alt_root.to_pem()}, std::chrono::system_clock::now()).ok);
}

TEST_CASE("Pebble rig: certificateValidityPeriod gives short-lived certificates", "[pebble][validity]") {
  PebbleOptions o;
  o.certificate_validity_seconds = 120;
  PebbleRig rig(o);
  Responder responder;
  Client c(rig);
  auto req = request({"short.test"});
  auto out = c->issue(req, responder.publisher);
  check_certificate(out, req, rig);
  CHECK(out.not_after - out.not_before <= std::chrono::seconds(121));
  CHECK(out.not_after - out.not_before >= std::chrono::seconds(60));
}

TEST_CASE("one-shot mode writes tls.crt and a 0600 PKCS#8 tls.key", "[pebble][oneshot]") {
  PebbleRig rig(PebbleOptions{});
  testing::TempDir out("oneshot");
  OneShotOptions o;
  o.domains = {"One.Example.test", "two.example.test"};
  o.out_dir = out.path() / "certs";
  o.challenge_listen = "127.0.0.1:" + std::to_string(kHttpPort);
  o.acme_directory = rig.directory_url();
  o.acme_ca_bundle = rig.ca_bundle_path();
  o.key_algorithm = "ecdsa-p384";
  o.poll_interval = std::chrono::milliseconds(50);
  auto log = core::Logger::discard();
  REQUIRE(run_issue(o, log) == 0);
  auto key = crypto::PrivateKey::from_pem(testing::read_file(o.out_dir / "tls.key"));
  CHECK(key.algorithm() == crypto::KeyAlgorithm::EcdsaP384);
  CHECK(testing::read_file(o.out_dir / "tls.key").find("BEGIN PRIVATE KEY") != std::string::npos);
  CHECK((std::filesystem::status(o.out_dir / "tls.key").permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  auto chain = crypto::parse_pem_chain(testing::read_file(o.out_dir / "tls.crt"));
  CHECK(chain.size() >= 2);
  CHECK(chain[0].dns_names() == std::vector<std::string>{"one.example.test", "two.example.test"});
  CHECK(crypto::key_matches_certificate(key, chain[0]));
  // A second run reuses the stored account.
  REQUIRE(run_issue(o, log) == 0);
  CHECK(rig.count_log("POST /sign-me-up") == 2);  // newAccount returns the existing account
  // Bad input: a clear failure, no crash.
  o.key_algorithm = "dsa-1024";
  CHECK(run_issue(o, log) == 1);
}

namespace {
// Records every response body by kind (for the fuzz seed corpus under tests/fuzz/acme/corpus/).
struct RecordingHttp final : http::HttpClient {
  http::HttpClient& inner;
  std::filesystem::path dir;
  std::map<std::string, int> seq;
  std::mutex mu;
  RecordingHttp(http::HttpClient& i, std::filesystem::path d) : inner(i), dir(std::move(d)) {}
  void save(const std::string& kind, const std::string& content) {
    std::lock_guard l(mu);
    std::filesystem::create_directories(dir / kind);
    testing::write_file(dir / kind / ("pebble-" + std::to_string(++seq[kind])), content);
  }
  http::Response send(const http::Request& r) override {
    auto resp = inner.send(r);
    std::string ct;
    for (const auto& [k, v] : resp.headers)
      if (k == "Content-Type" || k == "content-type") ct = v;
    if (resp.body.empty()) return resp;
    if (ct.find("problem") != std::string::npos) save("problem", resp.body);
    else if (r.url.find("/dir") != std::string::npos) save("directory", resp.body);
    else if (r.url.find("/order-plz") != std::string::npos || r.url.find("/my-order/") != std::string::npos ||
             r.url.find("/finalize-order/") != std::string::npos) save("order", resp.body);
    else if (r.url.find("/authZ/") != std::string::npos || r.url.find("/chalZ/") != std::string::npos)
      save("authorization", resp.body);
    else if (r.url.find("/certZ/") != std::string::npos) {
      std::string links;
      for (const auto& [k, v] : resp.headers)
        if (k == "Link" || k == "link") links += v + "\n";
      save("chain", links + "\n" + resp.body);
    }
    return resp;
  }
  http::Response stream(const http::Request& r, const http::ChunkHandler& h) override { return inner.stream(r, h); }
};
}  // namespace

// Not part of the normal run: ACME_SIDECAR_CAPTURE_DIR=<dir> acme_integration_tests "[.capture]"
TEST_CASE("capture Pebble responses as fuzz seeds", "[.capture]") {
  const char* out = std::getenv("ACME_SIDECAR_CAPTURE_DIR");
  REQUIRE(out);
  PebbleOptions o;
  o.nonce_reject_percent = 30;
  o.domain_blocklist = {"blocked.test"};
  o.extra_env = {{"PEBBLE_ALTERNATE_ROOTS", "1"}};
  PebbleRig rig(o);
  Responder responder;
  http::TlsOptions t;
  t.ca_file = rig.ca_bundle_path();
  http::CurlClient curl(t);
  RecordingHttp rec(curl, out);
  core::SystemClock clock;
  MemoryAccountKeyStore keys;
  ClientOptions co;
  co.directory_url = rig.directory_url();
  co.poll_interval = std::chrono::milliseconds(50);
  co.preferred_chain = "no such root";  // fetch the alternates too
  AcmeClient client(rec, clock, core::Logger::discard(), keys, co);
  client.issue(request({"a.capture.test", "b.capture.test"}), responder.publisher);
  WrongPublisher wrong(responder.store);
  CHECK_THROWS(client.issue(request({"wrong.capture.test"}), wrong));
  CHECK_THROWS(client.issue(request({"blocked.test"}), responder.publisher));
  rig.restart();
  client.refresh();
  client.issue(request({"c.capture.test"}), responder.publisher);
}
