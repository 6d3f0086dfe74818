// The order flow against the in-process CA stand-in (no sockets): nonce reuse, badNonce, Retry-After
// with a ManualClock, rateLimited, cancellation, deadlines, profiles, ARI, hostile answers, resume.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acme/client.hpp"
#include "core/error.hpp"
#include "crypto/x509.hpp"
#include "tests/support/ca_standin/ca_standin.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::acme;
using testing::CaStandin;
using testing::CaStandinOptions;
using testing::Hostile;
using testing::InProcessHttp;

namespace {

struct CountingObserver final : Observer {
  std::mutex mu;
  std::map<std::string, int> requests;
  std::atomic<int> bad_nonce{0}, rate_limited{0}, transport_failures{0};
  void on_request(Endpoint e, long status, std::chrono::nanoseconds) override {
    std::lock_guard l(mu);
    requests[std::string(to_string(e))]++;
    if (status == 0) transport_failures++;
  }
  void on_bad_nonce_retry(Endpoint) override { bad_nonce++; }
  void on_rate_limited(Endpoint) override { rate_limited++; }
  int count(const std::string& e) {
    std::lock_guard l(mu);
    return requests[e];
  }
};

// Jumps straight to every deadline it is asked to sleep until (deterministic, no driver thread).
class StepClock final : public core::Clock {
 public:
  core::TimePoint now() const override {
    std::lock_guard l(mu_);
    return now_;
  }
  bool sleep_until(core::TimePoint deadline, std::stop_token stop) override {
    if (stop.stop_requested()) return false;
    std::lock_guard l(mu_);
    now_ = std::max(now_, deadline);
    return true;
  }

 private:
  mutable std::mutex mu_;
  core::TimePoint now_{std::chrono::seconds(1'700'000'000)};
};

struct MapPublisher final : ChallengePublisher {
  std::mutex mu;
  std::map<std::string, std::string> tokens;
  std::atomic<int> published{0}, unpublished{0};
  bool fail_publish = false;
  void publish(const std::string& t, const std::string& ka, const ChallengeContext&) override {
    if (fail_publish) throw std::runtime_error("leader died");
    std::lock_guard l(mu);
    tokens[t] = ka;
    published++;
  }
  void unpublish(const std::string& t) override {
    std::lock_guard l(mu);
    tokens.erase(t);
    unpublished++;
  }
  bool has(const std::string& t, const std::string& ka) {
    std::lock_guard l(mu);
    auto it = tokens.find(t);
    return it != tokens.end() && it->second == ka;
  }
};

struct Rig {
  MapPublisher publisher;
  core::SystemClock system_clock;
  core::ManualClock manual_clock;
  StepClock step_clock;
  core::Clock& clock;
  CaStandin ca;
  InProcessHttp http{ca};
  MemoryAccountKeyStore keys;
  CountingObserver observer;

  enum class ClockKind { System, Manual, Step };
  Rig(CaStandinOptions o, ClockKind k = ClockKind::System)
      : clock(k == ClockKind::Manual ? static_cast<core::Clock&>(manual_clock)
              : k == ClockKind::Step ? static_cast<core::Clock&>(step_clock)
                                     : static_cast<core::Clock&>(system_clock)),
        ca(with_validator(std::move(o)), clock) {}

  CaStandinOptions with_validator(CaStandinOptions o) {
    if (!o.validator)
      o.validator = [this](const std::string&, const std::string& t, const std::string& ka) { return publisher.has(t, ka); };
    return o;
  }

  ClientOptions options() {
    ClientOptions c;
    c.directory_url = ca.directory_url();
    c.contact = {"mailto:ops@example.org"};
    c.poll_interval = std::chrono::milliseconds(5);
    c.order_timeout = std::chrono::seconds(60);
    c.trusted_roots = {ca.root_pem(), ca.alt_root_pem()};
    return c;
  }
  std::unique_ptr<AcmeClient> client(ClientOptions c) {
    return std::make_unique<AcmeClient>(http, clock, core::Logger::discard(), keys, std::move(c), &observer);
  }
  std::unique_ptr<AcmeClient> client() { return client(options()); }
};

IssueRequest request(std::vector<std::string> names) {
  IssueRequest r;
  r.names = std::move(names);
  r.key = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256);
  return r;
}

core::ErrorKind kind_of(const std::function<void()>& f, std::string* message = nullptr, core::Error* out = nullptr) {
  try {
    f();
  } catch (const core::Error& e) {
    if (message) *message = e.what();
    if (out) *out = e;
    return e.kind();
  }
  FAIL("no error thrown");
  return core::ErrorKind::Internal;
}

}  // namespace

TEST_CASE("issues a certificate, reuses nonces and cleans up tokens", "[acme][client]") {
  Rig rig({});
  auto client = rig.client();
  auto req = request({"a.example", "b.example", "c.example"});
  std::string recorded;
  req.on_order_created = [&](const std::string& url) { recorded = url; };
  IssuedCertificate out = client->issue(req, rig.publisher);
  CHECK(recorded == out.order_url);
  auto chain = crypto::parse_pem_chain(out.chain_pem);
  REQUIRE(chain.size() == 2);
  CHECK(chain[0].dns_names() == std::vector<std::string>{"a.example", "b.example", "c.example"});
  CHECK(crypto::verify_chain(chain, {rig.ca.root_pem()}, rig.clock.now()));
  CHECK(out.root_name == "Standin Root");
  CHECK(rig.publisher.published == 3);
  CHECK(rig.publisher.unpublished == 3);
  // One HEAD newNonce for the whole flow: every later request used a pooled Replay-Nonce.
  CHECK(rig.ca.count("HEAD", "/nonce") == 1);
  CHECK(rig.observer.count("nonce") == 1);
  CHECK(rig.observer.count("directory") == 1);
  CHECK(rig.observer.count("account") == 1);
  CHECK(rig.observer.count("finalize") == 1);
  CHECK(rig.observer.count("challenge") == 3);
  CHECK(rig.observer.count("certificate") == 1);
  // Each authorization is read once for its challenge; the order is polled for all three.
  CHECK(rig.observer.count("authz") == 3);
  // The account key was generated and stored for the next run.
  CHECK(rig.keys.load().has_value());
}

TEST_CASE("badNonce is retried with a fresh nonce and counted", "[acme][client]") {
  CaStandinOptions o;
  o.bad_nonce_every = 3;
  Rig rig(o);
  auto client = rig.client();
  client->issue(request({"a.example"}), rig.publisher);
  CHECK(rig.observer.bad_nonce > 0);
}

TEST_CASE("polls wait exactly as long as Retry-After says", "[acme][client][retry-after]") {
  CaStandinOptions o;
  o.authz_pending_polls = 2;
  o.authz_retry_after = 7;
  o.order_processing_polls = 3;
  o.order_retry_after = 11;
  Rig rig(o, Rig::ClockKind::Step);
  auto opts = rig.options();
  opts.poll_interval = std::chrono::seconds(1);
  opts.order_timeout = std::chrono::hours(1);
  auto client = rig.client(opts);
  client->issue(request({"a.example"}), rig.publisher);
  auto reqs = rig.ca.requests();
  std::optional<core::TimePoint> challenge;
  std::vector<core::TimePoint> validation_polls, processing_polls;
  bool finalized = false;
  for (const auto& r : reqs) {
    if (r.path.rfind("/chall/", 0) == 0) challenge = r.at;
    if (r.path.find("/finalize") != std::string::npos) finalized = true;
    else if (r.path.rfind("/order/", 0) == 0) (finalized ? processing_polls : validation_polls).push_back(r.at);
  }
  // The order, not the authorization, is polled while the CA validates: the first poll comes
  // after the short default wait, then every answer's Retry-After: 7 is honoured exactly.
  REQUIRE(challenge);
  REQUIRE(validation_polls.size() == 3);
  CHECK(validation_polls[0] - *challenge == std::chrono::milliseconds(50));
  CHECK(validation_polls[1] - validation_polls[0] == std::chrono::seconds(7));
  CHECK(validation_polls[2] - validation_polls[1] == std::chrono::seconds(7));
  CHECK(rig.ca.count("POST", "/authz/") == 1);  // read once for its challenge, never polled
  // After finalize: processing polls separated by Retry-After: 11.
  REQUIRE(processing_polls.size() == 3);
  CHECK(processing_polls[1] - processing_polls[0] == std::chrono::seconds(11));
  CHECK(processing_polls[2] - processing_polls[1] == std::chrono::seconds(11));
}

TEST_CASE("rateLimited is reported with Retry-After and counted", "[acme][client]") {
  CaStandinOptions o;
  o.rate_limited_new_orders = 1;
  o.rate_limit_retry_after = 1800;
  Rig rig(o);
  auto client = rig.client();
  core::Error err(core::ErrorKind::Internal, "");
  CHECK(kind_of([&] { client->issue(request({"a.example"}), rig.publisher); }, nullptr, &err) ==
        core::ErrorKind::RateLimited);
  CHECK(err.retry_after == std::chrono::seconds(1800));
  CHECK(err.acme_type == "rateLimited");
  CHECK(rig.observer.rate_limited == 1);
  // The next attempt (the caller waited) succeeds.
  client->issue(request({"a.example"}), rig.publisher);
}

TEST_CASE("a stop request aborts polling promptly", "[acme][client][cancel]") {
  CaStandinOptions o;
  o.order_processing_polls = 1000;
  o.order_retry_after = 3600;
  Rig rig(o, Rig::ClockKind::Manual);
  auto opts = rig.options();
  opts.order_timeout = std::chrono::hours(100);
  auto client = rig.client(opts);
  std::stop_source stop;
  auto fut = std::async(std::launch::async, [&] {
    return kind_of([&] { client->issue(request({"a.example"}), rig.publisher, stop.get_token()); });
  });
  REQUIRE(rig.manual_clock.wait_for_waiters(1, std::chrono::seconds(20)));
  stop.request_stop();
  REQUIRE(fut.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  CHECK(fut.get() == core::ErrorKind::Cancelled);
  CHECK(rig.publisher.tokens.empty());
}

TEST_CASE("a Retry-After beyond the deadline fails at once with Timeout", "[acme][client]") {
  CaStandinOptions o;
  o.order_processing_polls = 5;
  o.order_retry_after = 600;
  Rig rig(o, Rig::ClockKind::Step);
  auto opts = rig.options();
  opts.order_timeout = std::chrono::seconds(60);
  auto client = rig.client(opts);
  core::Error err(core::ErrorKind::Internal, "");
  auto start = rig.step_clock.now();
  CHECK(kind_of([&] { client->issue(request({"a.example"}), rig.publisher); }, nullptr, &err) ==
        core::ErrorKind::Timeout);
  CHECK(err.retry_after == std::chrono::seconds(600));
  // Only the short default authorization polls were slept; never towards the 600 s.
  CHECK(rig.step_clock.now() - start < std::chrono::seconds(1));
}

TEST_CASE("profiles: sent when offered, refused clearly when not", "[acme][client][profile]") {
  CaStandinOptions o;
  o.profiles = {{"classic", "90 days"}, {"shortlived", "6 days"}};
  Rig rig(o);
  auto client = rig.client();
  auto req = request({"a.example"});
  req.profile = "shortlived";
  client->issue(req, rig.publisher);
  CHECK(nlohmann::json::parse(rig.ca.last_new_order_payload())["profile"] == "shortlived");
  req.profile = "tlsserver";
  std::string msg;
  CHECK(kind_of([&] { client->issue(req, rig.publisher); }, &msg) == core::ErrorKind::Config);
  CHECK(msg.find("tlsserver") != std::string::npos);
  CHECK(msg.find("classic,shortlived") != std::string::npos);
}

TEST_CASE("ARI: renewal info for an issued certificate, replaces in newOrder", "[acme][client][ari]") {
  CaStandinOptions o;
  o.ari_retry_after = 21600;
  Rig rig(o);
  auto client = rig.client();
  CHECK(client->supports_renewal_info());
  auto out = client->issue(request({"a.example"}), rig.publisher);
  auto info = client->renewal_info(out.chain_pem);
  REQUIRE(info);
  CHECK(info->window_start == parse_rfc3339("2030-01-01T00:00:00Z"));
  CHECK(info->window_end == parse_rfc3339("2030-01-02T00:00:00Z"));
  CHECK(info->retry_after == std::chrono::seconds(21600));
  auto id = crypto::ari_cert_id(crypto::parse_pem_chain(out.chain_pem).front());
  auto req = request({"a.example"});
  req.replaces = id;
  client->issue(req, rig.publisher);
  CHECK(nlohmann::json::parse(rig.ca.last_new_order_payload())["replaces"] == id);

  CaStandinOptions no_ari;
  no_ari.offer_ari = false;
  Rig rig2(no_ari);
  auto c2 = rig2.client();
  CHECK_FALSE(c2->renewal_info(out.chain_pem));
  c2->issue(req, rig2.publisher);
  CHECK_FALSE(nlohmann::json::parse(rig2.ca.last_new_order_payload()).contains("replaces"));
}

TEST_CASE("hostile CA answers are refused", "[acme][client][hostile]") {
  auto [hostile, kind, needle] = GENERATE(table<Hostile, core::ErrorKind, std::string>({
      {Hostile::GarbageOrderJson, core::ErrorKind::Parse, "JSON"},
      {Hostile::GarbageChain, core::ErrorKind::Parse, ""},
      {Hostile::TruncatedChain, core::ErrorKind::Crypto, "truncated"},
      {Hostile::WrongNames, core::ErrorKind::Crypto, "other names"},
      {Hostile::WrongKey, core::ErrorKind::Crypto, "does not match the CSR key"},
  }));
  CaStandinOptions o;
  o.hostile = hostile;
  Rig rig(o);
  auto client = rig.client();
  std::string msg;
  CHECK(kind_of([&] { client->issue(request({"a.example", "b.example"}), rig.publisher); }, &msg) == kind);
  CHECK(msg.find(needle) != std::string::npos);
}

TEST_CASE("preferred chain by issuer CN follows Link rel=alternate", "[acme][client]") {
  Rig rig({});
  auto opts = rig.options();
  opts.preferred_chain = "Standin Alt Root";
  auto client = rig.client(opts);
  auto out = client->issue(request({"a.example"}), rig.publisher);
  CHECK(out.root_name == "Standin Alt Root");
  CHECK(out.certificate_url.find("/alt") != std::string::npos);
  opts.preferred_chain = "Nobody";
  auto out2 = rig.client(opts)->issue(request({"a.example"}), rig.publisher);
  CHECK(out2.root_name == "Standin Root");
}

TEST_CASE("a wrong challenge answer ends the order invalid with the CA's error", "[acme][client]") {
  CaStandinOptions o;
  o.validator = [](const std::string& domain, const std::string&, const std::string&) { return domain != "b.example"; };
  o.authz_pending_polls = 1;
  Rig rig(o);
  auto client = rig.client();
  core::Error err(core::ErrorKind::Internal, "");
  std::string msg;
  CHECK(kind_of([&] { client->issue(request({"a.example", "b.example", "c.example"}), rig.publisher); }, &msg, &err) ==
        core::ErrorKind::AcmeProblem);
  CHECK(err.acme_type == "incorrectResponse");
  CHECK(msg.find("b.example") != std::string::npos);
  CHECK(msg.find("did not match") != std::string::npos);
  CHECK(rig.publisher.tokens.empty());
}

TEST_CASE("self-check failure aborts before the CA validates and deactivates authorizations", "[acme][client]") {
  Rig rig({});
  auto client = rig.client();
  auto req = request({"a.example", "b.example"});
  req.self_check = [](const std::string& d, const std::string&, const std::string&) {
    throw core::Error(core::ErrorKind::Invalid, "controller does not route " + d);
  };
  std::string msg;
  CHECK(kind_of([&] { client->issue(req, rig.publisher); }, &msg) == core::ErrorKind::Invalid);
  CHECK(msg.find("controller does not route a.example") != std::string::npos);
  CHECK(rig.ca.count("POST", "/chall/") == 0);
  CHECK(rig.observer.count("authz") >= 4);  // read + deactivate
}

TEST_CASE("resume continues an order after the previous leader died", "[acme][client][resume]") {
  Rig rig({});
  std::string order_url;
  {
    auto first = rig.client();
    auto req = request({"a.example", "b.example"});
    req.on_order_created = [&](const std::string& u) { order_url = u; };
    rig.publisher.fail_publish = true;
    CHECK_THROWS(first->issue(req, rig.publisher));
  }
  REQUIRE_FALSE(order_url.empty());
  rig.publisher.fail_publish = false;
  auto second = rig.client();  // same key store: same account
  auto req = request({"a.example", "b.example"});
  auto out = second->resume(order_url, req, rig.publisher);
  CHECK(out.order_url == order_url);
  CHECK(rig.ca.count("POST", "/new-order") == 1);
  // Resuming a valid order only downloads.
  auto again = rig.client()->resume(order_url, req, rig.publisher);
  CHECK(rig.ca.count("POST", "/new-order") == 1);
  CHECK(rig.ca.count("POST", "/order/1/finalize") == 1);
  CHECK(again.chain_pem == out.chain_pem);
  // A gone order falls back to a new one.
  rig.client()->resume(rig.ca.directory_url().substr(0, 15) + "/order/999", req, rig.publisher);
  CHECK(rig.ca.count("POST", "/new-order") == 2);
}

TEST_CASE("the CA forgetting the account leads to re-registration", "[acme][client]") {
  Rig rig({});
  auto client = rig.client();
  client->issue(request({"a.example"}), rig.publisher);
  rig.ca.forget_accounts();
  client->issue(request({"a.example"}), rig.publisher);
  CHECK(rig.ca.count("POST", "/new-account") == 2);
  CHECK(client->find_account().has_value());
}

TEST_CASE("EAB required: refused clearly without it, accepted with it", "[acme][client][eab]") {
  CaStandinOptions o;
  o.external_account_required = true;
  Rig rig(o);
  std::string msg;
  CHECK(kind_of([&] { rig.client()->issue(request({"a.example"}), rig.publisher); }, &msg) == core::ErrorKind::Config);
  CHECK(msg.find("External Account Binding") != std::string::npos);
  auto opts = rig.options();
  opts.eab = ExternalAccountBinding{"kid-1", "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"};
  rig.client(opts)->issue(request({"a.example"}), rig.publisher);
}

TEST_CASE("transport failures are typed and reported with status 0", "[acme][client]") {
  struct DeadHttp final : http::HttpClient {
    http::Response send(const http::Request&) override {
      throw core::Error(core::ErrorKind::Transport, "connection refused");
    }
    http::Response stream(const http::Request& r, const http::ChunkHandler&) override { return send(r); }
  } dead;
  core::SystemClock clock;
  MemoryAccountKeyStore keys;
  CountingObserver obs;
  ClientOptions opts;
  opts.directory_url = "https://127.0.0.1:1/dir";
  AcmeClient client(dead, clock, core::Logger::discard(), keys, opts, &obs);
  MapPublisher pub;
  CHECK(kind_of([&] { client.issue(request({"a.example"}), pub); }) == core::ErrorKind::Transport);
  CHECK(obs.transport_failures == 1);
}

TEST_CASE("stored account key is reused and a broken one is a Config error", "[acme][client]") {
  Rig rig({});
  rig.client()->ensure_account();
  auto pem = rig.keys.load();
  rig.client()->ensure_account();
  CHECK(rig.keys.load() == pem);
  CHECK(rig.ca.count("POST", "/new-account") == 2);  // same key: the CA returns the same account
  rig.keys.save("garbage");
  CHECK(kind_of([&] { rig.client()->ensure_account(); }) == core::ErrorKind::Config);
}

TEST_CASE("concurrent issuances share one client (one account, one nonce pool)", "[acme][client][concurrency]") {
  CaStandinOptions o;
  o.authz_pending_polls = 2;
  Rig rig(o);
  auto client = rig.client();
  std::vector<std::future<IssuedCertificate>> runs;
  for (int i = 0; i < 4; ++i)
    runs.push_back(std::async(std::launch::async, [&, i] {
      return client->issue(request({"c" + std::to_string(i) + ".example"}), rig.publisher);
    }));
  for (int i = 0; i < 4; ++i) {
    auto out = runs[i].get();
    CHECK(crypto::parse_pem_chain(out.chain_pem).front().dns_names() ==
          std::vector<std::string>{"c" + std::to_string(i) + ".example"});
  }
  CHECK(rig.ca.count("POST", "/new-order") == 4);
  CHECK(rig.publisher.tokens.empty());
}

TEST_CASE("resume a ready order: finalize", "[acme][client][resume]") {
  CaStandinOptions o;
  o.fail_first_finalize = true;
  Rig rig(o);
  auto req = request({"a.example"});
  std::string order_url;
  req.on_order_created = [&](const std::string& u) { order_url = u; };
  core::Error err(core::ErrorKind::Internal, "");
  CHECK(kind_of([&] { rig.client()->issue(req, rig.publisher); }, nullptr, &err) == core::ErrorKind::AcmeProblem);
  CHECK(err.acme_type == "serverInternal");
  CHECK(rig.client()->fetch_order(order_url).status == Status::Ready);
  auto out = rig.client()->resume(order_url, req, rig.publisher);
  CHECK(out.order_url == order_url);
  CHECK(rig.ca.count("POST", "/chall/") == 1);  // nothing validated twice
  CHECK(rig.ca.count("POST", "/new-order") == 1);
}

TEST_CASE("resume a processing order: poll, then download", "[acme][client][resume]") {
  CaStandinOptions o;
  o.order_processing_polls = 1000;
  o.order_retry_after = 5;
  Rig rig(o, Rig::ClockKind::Step);
  auto opts = rig.options();
  opts.order_timeout = std::chrono::seconds(60);
  auto req = request({"a.example"});
  std::string order_url;
  req.on_order_created = [&](const std::string& u) { order_url = u; };
  CHECK(kind_of([&] { rig.client(opts)->issue(req, rig.publisher); }) == core::ErrorKind::Timeout);
  CHECK(rig.client()->fetch_order(order_url).status == Status::Processing);
  rig.ca.finish_processing();
  auto out = rig.client(opts)->resume(order_url, req, rig.publisher);
  CHECK(out.order_url == order_url);
  CHECK(rig.ca.count("POST", "/order/1/finalize") == 1);
}
