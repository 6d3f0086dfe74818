// CA faults: badNonce at a high rate, Pebble stopped and started again (state lost), a challenge that
// fails validation beside a healthy certificate, a hostile CA (garbage JSON, garbage/truncated chains,
// a certificate for other names or for another key) — nothing unverifiable ever reaches a Secret — and
// the failure backoff counted from Pebble's own log.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <iostream>

#include "core/clock.hpp"
#include "tests/reliability/hygiene.hpp"
#include "tests/reliability/rig.hpp"
#include "tests/support/ca_standin/ca_standin.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::reliability;
using nlohmann::json;

namespace {

bool has_event(Rig& rig, const std::string& ingress, const std::string& reason) {
  for (const auto& e : rig.api().list("events", "demo"))
    if (e.contains("involvedObject") && e["involvedObject"].value("name", "") == ingress &&
        e.value("reason", "") == reason)
      return true;
  return false;
}

// The CA stand-in behind HTTPS (the sidecar insists on an https:// directory), reusing the Pebble rig's
// 127.0.0.1 serving certificate so --acme-ca-bundle already trusts it.
class TlsStandin {
 public:
  TlsStandin(const std::filesystem::path& pebble_dir, int port) : port_(port) {
    testing::CaStandinOptions o;
    o.base_url = "https://127.0.0.1:" + std::to_string(port);
    o.offer_ari = false;
    ca_ = std::make_unique<testing::CaStandin>(o, clock_);
    server_ = std::make_unique<httplib::SSLServer>((pebble_dir / "cert.pem").c_str(), (pebble_dir / "key.pem").c_str());
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      http::Request r;
      r.method = req.method;
      r.url = "https://127.0.0.1:" + std::to_string(port_) + req.path;
      for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
      r.body = req.body;
      auto out = ca_->handle(r);
      res.status = static_cast<int>(out.status);
      std::string type = "application/json";
      auto lower = [](std::string s) {
        for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return s;
      };
      for (const auto& [k, v] : out.headers) {
        if (lower(k) == "content-type") type = v;
        else if (lower(k) != "content-length") res.headers.emplace(k, v);
      }
      res.set_content(out.body, type);
    };
    server_->Get(".*", handler);
    server_->Post(".*", handler);
    REQUIRE(server_->bind_to_port("127.0.0.1", port));
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    REQUIRE(testing::wait_for_port("127.0.0.1", port, 10s));
  }
  ~TlsStandin() {
    server_->stop();
    thread_.join();
  }
  testing::CaStandin& ca() { return *ca_; }
  std::string directory_url() const { return ca_->directory_url(); }

 private:
  int port_;
  core::SystemClock clock_;
  std::unique_ptr<testing::CaStandin> ca_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("badNonce on 60% of requests: every certificate is issued, retries are bounded and counted") {
  RigOptions o;
  o.pebble.nonce_reject_percent = 60;
  Rig rig(o);
  SecretWatcher watcher(rig);
  const std::vector<std::string> certs = {"n1", "n2", "n3", "n4"};
  for (const auto& c : certs) rig.apply(ingress_yaml("demo", c, {c + ".demo.example"}, c + "-tls"));
  for (const auto& c : certs) rig.wait_valid("demo", c + "-tls", {c + ".demo.example"});
  auto retries = rig.metric(0, "acme_sidecar_acme_bad_nonce_retries_total").value_or(-1);
  auto failures = rig.metric(0, "acme_sidecar_issuance_total", {{"result", "failure"}}).value_or(0);
  std::cout << "[badnonce] injected: PEBBLE_WFE_NONCEREJECT=60\n[badnonce] observed: " << certs.size()
            << " certificates valid; badNonce retries " << retries << ", signed requests Pebble saw "
            << rig.pebble_count("POST /") << ", failed issuances " << failures << ", newOrder requests (incl. rejected nonces) "
            << rig.pebble_count("POST /order-plz") << ", finalizes " << rig.pebble_count("POST /finalize-order") << "; invalid Secret events " << watcher.stats().invalid << "\n";
  CHECK(retries > 0);
  CHECK(watcher.stats().invalid == 0);
  check_hygiene(rig);
}

TEST_CASE("Pebble stopped mid-issuance and started again with its state lost: the sidecar converges") {
  Rig rig;
  rig.apply(ingress_yaml("demo", "before", {"before.demo.example"}, "before-tls"));
  rig.wait_valid("demo", "before-tls", {"before.demo.example"});
  SecretWatcher watcher(rig);
  auto log_from = rig.sidecar_log_size(0);
  rig.apply(ingress_yaml("demo", "during", {"during.demo.example"}, "during-tls"));
  REQUIRE(testing::poll_until(
      [&] { return rig.sidecar_log_from(0, log_from).find("created ACME order") != std::string::npos; }, 60s));
  rig.pebble().stop();
  auto t_stop = std::chrono::steady_clock::now();
  // Outage window: long enough for several attempts on the 2s,4s,8s schedule.
  REQUIRE(testing::poll_until([&] { return has_event(rig, "during", "Failed"); }, 60s));
  std::this_thread::sleep_for(8s);
  auto failed_during_outage = rig.metric(0, "acme_sidecar_issuance_total", {{"result", "failure"}}).value_or(0);
  auto outage = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_stop).count();
  rig.pebble_restart();
  auto t_back = std::chrono::steady_clock::now();
  rig.wait_valid("demo", "during-tls", {"during.demo.example"});
  auto recover = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_back).count();
  // The certificate issued before the outage is untouched (its root is the old Pebble's: still valid).
  CHECK(rig.valid(*rig.secret("demo", "before-tls")));
  std::cout << "[pebble-restart] injected: Pebble down " << outage << " s after the order was created, restarted"
            << " empty (accounts, orders, roots gone)\n[pebble-restart] observed: failed issuances during the outage "
            << failed_during_outage << ", converged " << recover << " s after Pebble came back; accounts registered"
            << " after restart " << rig.pebble().count_log("POST /sign-me-up") << "; invalid Secret events "
            << watcher.stats().invalid << "\n";
  CHECK(rig.sidecar(0).running());
  CHECK(watcher.stats().invalid == 0);
  check_hygiene(rig);
}

TEST_CASE("a challenge that fails validation is retried on the schedule while a healthy certificate is issued") {
  RigOptions o;
  o.extra_args = {"--no-self-check"};  // let the CA see the broken route (the self-check would catch it first)
  Rig rig(o);
  rig.break_challenge_route("broken.demo.example");
  rig.apply(ingress_yaml("demo", "broken", {"broken.demo.example"}, "broken-tls"));
  rig.apply(ingress_yaml("demo", "healthy", {"healthy.demo.example"}, "healthy-tls"));
  rig.wait_valid("demo", "healthy-tls", {"healthy.demo.example"});
  REQUIRE(testing::poll_until([&] { return has_event(rig, "broken", "Failed"); }, 60s));
  // Observation window: the schedule 2s,4s,8s allows more attempts.
  std::this_thread::sleep_for(10s);
  std::string message;
  for (const auto& e : rig.api().list("events", "demo"))
    if (e["involvedObject"].value("name", "") == "broken" && e.value("reason", "") == "Failed")
      message = e.value("message", "");
  auto invalid_authz = rig.pebble_count("POST /chalZ/");
  std::cout << "[challenge-fails] injected: nginx answers 404 for broken.demo.example's challenges\n"
            << "[challenge-fails] observed: orders " << rig.pebble_count("POST /order-plz") << ", challenge POSTs "
            << invalid_authz << ", Failed Event: " << message << "\n";
  CHECK_FALSE(rig.secret("demo", "broken-tls").has_value());
  CHECK(rig.pebble_count("POST /order-plz") >= 3);  // healthy once + broken retried at least once
  CHECK(message.find("404") != std::string::npos);
  check_hygiene(rig);
}

TEST_CASE("a hostile CA: garbage JSON, garbage or truncated chains, other names, another key — never written") {
  RigOptions o;
  o.start_sidecars = false;
  Rig rig(o);
  TlsStandin ca(rig.pebble().work_dir(), 14443);
  rig.set_directory(ca.directory_url());
  rig.add_root(ca.ca().root_pem());
  rig.add_root(ca.ca().alt_root_pem());
  rig.start_sidecar(0);
  SecretWatcher watcher(rig);
  const std::vector<std::pair<testing::Hostile, std::string>> modes = {
      {testing::Hostile::GarbageOrderJson, "garbage-json"}, {testing::Hostile::GarbageChain, "garbage-chain"},
      {testing::Hostile::TruncatedChain, "truncated"},      {testing::Hostile::WrongNames, "wrong-names"},
      {testing::Hostile::WrongKey, "wrong-key"}};
  for (const auto& [mode, name] : modes) {
    ca.ca().set_hostile(mode);
    rig.apply(ingress_yaml("demo", name, {name + ".demo.example"}, name + "-tls"));
    REQUIRE(testing::poll_until([&] { return has_event(rig, name, "Failed"); }, 60s));
    std::string message;
    for (const auto& e : rig.api().list("events", "demo"))
      if (e["involvedObject"].value("name", "") == name && e.value("reason", "") == "Failed") message = e.value("message", "");
    std::cout << "[hostile-ca] injected: " << name << "; observed Failed Event: " << message << "\n";
    CHECK_FALSE(rig.secret("demo", name + "-tls").has_value());
  }
  auto failures = rig.metric(0, "acme_sidecar_issuance_total", {{"result", "failure"}}).value_or(0);
  ca.ca().set_hostile(testing::Hostile::None);
  for (const auto& [mode, name] : modes) rig.wait_valid("demo", name + "-tls", {name + ".demo.example"});
  std::cout << "[hostile-ca] observed: failed issuances while hostile " << failures << ", Secrets written while"
            << " hostile 0; after the CA turned honest all " << modes.size() << " converged; invalid Secret events "
            << watcher.stats().invalid << " of " << watcher.stats().events << "\n";
  CHECK(watcher.stats().invalid == 0);
  CHECK(rig.sidecar(0).running());
  check_hygiene(rig);
}

TEST_CASE("backoff: a permanently refused certificate produces exactly the orders the schedule allows") {
  RigOptions o;
  o.pebble.domain_blocklist = {"blocked.demo.example"};
  // The healthy certificate is renewed (half of 30 s left) within the window.
  o.pebble.certificate_validity_seconds = 30;
  Rig rig(o);
  rig.apply(ingress_yaml("demo", "healthy", {"healthy.demo.example"}, "healthy-tls"));
  auto first = rig.wait_valid("demo", "healthy-tls", {"healthy.demo.example"});
  auto first_fp = Rig::leaf_fingerprint(first);
  // Blocked orders = newOrder requests that never reach finalize (Pebble refuses them at newOrder).
  auto blocked = [&] { return rig.pebble_count("POST /order-plz") - rig.pebble_count("POST /finalize-order"); };
  rig.apply(ingress_yaml("demo", "blocked", {"blocked.demo.example"}, "blocked-tls"));
  REQUIRE(testing::poll_until([&] { return blocked() >= 1; }, 60s));
  auto t0 = std::chrono::steady_clock::now();
  const double window = 40;  // seconds, from the first refused order
  std::this_thread::sleep_for(std::chrono::seconds(static_cast<int>(window)));  // observation window
  auto n = blocked();
  // Attempts at 0, d1, d1+d2, ... with d = 2s,4s,8s,8s,... each ±10% jitter (BackoffPolicy default).
  auto attempts_within = [&](double factor, double per_attempt_overhead) {
    double t = 0;
    std::size_t k = 1;
    for (int i = 0;; ++i) {
      double d = (i == 0 ? 2 : i == 1 ? 4 : 8) * factor + per_attempt_overhead;
      if (t + d > window) return k;
      t += d;
      ++k;
    }
  };
  auto most = attempts_within(0.9, 0.0);
  auto least = attempts_within(1.1, 0.5);
  auto renewed = rig.wait_valid("demo", "healthy-tls", {"healthy.demo.example"});
  (void)t0;
  std::cout << "[backoff] injected: Pebble domainBlocklist refuses blocked.demo.example; schedule 2s,4s,8s\n"
            << "[backoff] observed: " << n << " refused orders in " << window << " s (schedule allows " << least
            << ".." << most << "); healthy certificate renewed: " << (Rig::leaf_fingerprint(renewed) != first_fp)
            << ", finalizes " << rig.pebble_count("POST /finalize-order") << "\n";
  CHECK(n >= 2);  // retried at least once
  CHECK(n >= least);
  CHECK(n <= most);
  CHECK_FALSE(rig.secret("demo", "blocked-tls").has_value());
  CHECK(testing::poll_until([&] {
    auto s = rig.secret("demo", "healthy-tls");
    return s && Rig::leaf_fingerprint(*s) != first_fp && rig.valid(*s);
  }, 60s));
  check_hygiene(rig);
}
