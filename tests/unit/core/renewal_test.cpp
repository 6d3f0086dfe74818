#include <catch2/catch.hpp>

#include <functional>

#include "core/renewal.hpp"

using namespace acme_sidecar::core;
using namespace std::chrono_literals;

namespace {
const TimePoint kNow = TimePoint(std::chrono::seconds(1'700'000'000));
constexpr auto kDay = 24h;

DesiredCertificate desired() {
  DesiredCertificate d;
  d.namespace_name = "default";
  d.secret_name = "tls";
  d.names = {"a.example.com", "b.example.com"};
  d.key_algorithm = "ecdsa-p256";
  return d;
}

// A valid, managed Secret holding a 90-day certificate issued 10 days ago.
CertStatus valid_status() {
  CertStatus s;
  SecretView v;
  v.namespace_name = "default";
  v.name = "tls";
  v.type = "kubernetes.io/tls";
  v.labels["app.kubernetes.io/managed-by"] = "acme-sidecar";
  v.annotations["acme-sidecar.io/issuer"] = "https://ca.example/dir";
  s.secret = v;
  CertificateFacts f;
  f.dns_names = {"b.example.com", "A.example.com"};
  f.not_before = kNow - 10 * kDay;
  f.not_after = kNow + 80 * kDay;
  f.key_matches = true;
  f.key_algorithm = "ecdsa-p256";
  s.facts = f;
  return s;
}

using Mutator = std::function<void(CertStatus&, RenewalConfig&, TimePoint&)>;
}  // namespace

// One row per scenario, as cert-manager's policies/checks_test.go.
TEST_CASE("renewal policy chain") {
  auto [scenario, mutate, action, reason] = GENERATE(table<std::string, Mutator, Action, std::string>({
      {"valid secret: nothing to do", [](CertStatus&, RenewalConfig&, TimePoint&) {}, Action::None, ""},
      {"secret missing", [](CertStatus& s, RenewalConfig&, TimePoint&) { s = CertStatus{}; }, Action::Issue,
       "secret_missing"},
      {"foreign secret is skipped even when broken",
       [](CertStatus& s, RenewalConfig&, TimePoint&) {
         s.secret->labels.clear();
         s.facts.reset();
       },
       Action::Skip, "not_managed"},
      {"managed-by another value is foreign",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.secret->labels["app.kubernetes.io/managed-by"] = "helm"; },
       Action::Skip, "not_managed"},
      {"wrong type", [](CertStatus& s, RenewalConfig&, TimePoint&) { s.secret->type = "Opaque"; }, Action::Skip,
       "wrong_type"},
      {"unparsable",
       [](CertStatus& s, RenewalConfig&, TimePoint&) {
         s.facts.reset();
         s.parse_error = "bad PEM";
       },
       Action::Issue, "unparsable"},
      {"key does not match", [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->key_matches = false; },
       Action::Issue, "key_mismatch"},
      {"name added", [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->dns_names = {"a.example.com"}; },
       Action::Renew, "names_changed"},
      {"name removed",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->dns_names.push_back("c.example.com"); },
       Action::Renew, "names_changed"},
      {"duplicate SAN is not a difference",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->dns_names.push_back("a.example.com"); },
       Action::None, ""},
      {"extra IP SAN", [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->ip_addresses = {"10.0.0.1"}; },
       Action::Renew, "names_changed"},
      {"issuer changed",
       [](CertStatus&, RenewalConfig& c, TimePoint&) { c.issuer = "https://other.example/dir"; }, Action::Renew,
       "issuer_changed"},
      {"issuer annotation missing",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.secret->annotations.clear(); }, Action::Renew,
       "issuer_changed"},
      {"issuer check disabled",
       [](CertStatus& s, RenewalConfig& c, TimePoint&) {
         s.secret->annotations.clear();
         c.issuer.clear();
       },
       Action::None, ""},
      {"key algorithm changed",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->key_algorithm = "rsa-2048"; }, Action::Renew,
       "key_algorithm_changed"},
      {"key algorithm change ignored when configured",
       [](CertStatus& s, RenewalConfig& c, TimePoint&) {
         s.facts->key_algorithm = "rsa-2048";
         c.reissue_on_key_algorithm_change = false;
       },
       Action::None, ""},
      {"one second before the renewal point (90d cert: 30d before expiry)",
       [](CertStatus&, RenewalConfig&, TimePoint& now) { now = kNow + 50 * kDay - 1s; }, Action::None, ""},
      {"at the renewal point", [](CertStatus&, RenewalConfig&, TimePoint& now) { now = kNow + 50 * kDay; },
       Action::Renew, "due"},
      {"expired", [](CertStatus&, RenewalConfig&, TimePoint& now) { now = kNow + 81 * kDay; }, Action::Renew,
       "expired"},
      {"configurable fraction (1/2: due 45d before expiry)",
       [](CertStatus&, RenewalConfig& c, TimePoint& now) {
         c.renew_before_fraction = 0.5;
         now = kNow + 35 * kDay;
       },
       Action::Renew, "due"},
      {"short-lived (6d) not yet at half",
       [](CertStatus& s, RenewalConfig&, TimePoint&) {
         s.facts->not_before = kNow - 2 * kDay;
         s.facts->not_after = kNow + 4 * kDay;
       },
       Action::None, ""},
      {"short-lived (6d) at half",
       [](CertStatus& s, RenewalConfig&, TimePoint&) {
         s.facts->not_before = kNow - 3 * kDay;
         s.facts->not_after = kNow + 3 * kDay;
       },
       Action::Renew, "due"},
      {"validity ending before it starts is due at once",
       [](CertStatus& s, RenewalConfig&, TimePoint&) { s.facts->not_before = s.facts->not_after + 1s; },
       Action::Renew, "due"},
  }));
  CAPTURE(scenario);
  auto status = valid_status();
  RenewalConfig config;
  config.issuer = "https://ca.example/dir";
  TimePoint now = kNow;
  mutate(status, config, now);
  auto want = desired();
  auto d = decide(PolicyInput{want, status, config, now});
  CHECK(to_string(d.action) == to_string(action));
  CHECK(d.reason == reason);
  if (action != Action::None) CHECK_FALSE(d.message.empty());
  CHECK(d.renewal_time.has_value() == status.facts.has_value());
}

TEST_CASE("renewal_time follows the fraction of the lifetime") {
  auto [lifetime, fraction, before] = GENERATE(table<Duration, double, Duration>({
      {Duration(90 * kDay), 1.0 / 3.0, Duration(30 * kDay)},
      {Duration(90 * kDay), 0.5, Duration(45 * kDay)},
      {Duration(10 * kDay), 1.0 / 3.0, Duration(80h)},   // exactly 10 days: not short
      {Duration(9 * kDay), 1.0 / 3.0, Duration(108h)},   // shorter than 10 days: half
      {Duration(6h), 1.0 / 3.0, Duration(3h)},
  }));
  RenewalConfig c;
  c.renew_before_fraction = fraction;
  auto nb = kNow;
  auto na = kNow + lifetime;
  CHECK(renewal_time(nb, na, c) == na - before);
}

TEST_CASE("an ARI window wins over the fraction and the random point is an input") {
  RenewalConfig c;
  auto nb = kNow - 10 * kDay;
  auto na = kNow + 80 * kDay;
  RenewalWindow w{kNow + 5 * kDay, kNow + 7 * kDay};
  CHECK(renewal_time(nb, na, c, w, 0.0) == w.start);
  CHECK(renewal_time(nb, na, c, w, 0.5) == kNow + 6 * kDay);
  CHECK(renewal_time(nb, na, c, w, 0.999999) < w.end);
  CHECK(renewal_time(nb, na, c, w, 7.0) == w.end);  // clamped

  auto status = valid_status();
  auto want = desired();
  auto before = decide(PolicyInput{want, status, c, kNow + 6 * kDay - 1s, w, 0.5});
  CHECK(before.action == Action::None);
  CHECK(before.renewal_time == kNow + 6 * kDay);
  auto inside = decide(PolicyInput{want, status, c, kNow + 6 * kDay, w, 0.5});
  CHECK(inside.action == Action::Renew);
  CHECK(inside.reason == "ari_window");
  // A window in the past (CA asks for immediate renewal, e.g. revocation) is due now.
  RenewalWindow past{kNow - 2 * kDay, kNow - kDay};
  CHECK(decide(PolicyInput{want, status, c, kNow, past, 0.3}).action == Action::Renew);
}

TEST_CASE("custom policy chains are evaluated in order") {
  auto status = valid_status();
  RenewalConfig c;
  auto want = desired();
  std::vector<Policy> chain{[](const PolicyInput&) { return std::optional<Violation>(); },
                            [](const PolicyInput&) {
                              return std::optional<Violation>(Violation{Action::Skip, "first", "m"});
                            },
                            [](const PolicyInput&) {
                              return std::optional<Violation>(Violation{Action::Issue, "second", "m"});
                            }};
  auto d = decide(PolicyInput{want, status, c, kNow}, chain);
  CHECK(d.reason == "first");
}
