#include <catch2/catch.hpp>

#include "controller/reconciler.hpp"
#include "core/error.hpp"
#include "rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using namespace acme_sidecar::controller::testing;
using namespace std::chrono_literals;

TEST_CASE("Issuing is a progress event and Issued its outcome, for the same certificate, saying why") {
  // A sink may drop the progress event when the outcome follows soon (app::DeferredEventSink): the
  // outcome must then carry the reason the progress event gave.
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"example.com"}, "web-tls"));
  rig.reconciler()->reconcile("default/web-tls");
  auto all = rig.events.all();
  REQUIRE(all.size() == 2);
  CHECK(all[0].reason == "Issuing");
  CHECK(all[0].via == "progress");
  CHECK(all[0].certificate == "default/web-tls");
  CHECK(all[1].reason == "Issued");
  CHECK(all[1].via == "outcome");
  CHECK(all[1].certificate == "default/web-tls");
  CHECK(all[1].message.find("Secret default/web-tls does not exist") != std::string::npos);
}

TEST_CASE("a failed issuance is an outcome of the certificate too") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"example.com"}, "web-tls"));
  rig.issuer.behaviour = [](const core::DesiredCertificate&) {
    throw core::Error(core::ErrorKind::AcmeProblem, "rejected");
  };
  CHECK_THROWS(rig.reconciler()->reconcile("default/web-tls"));
  auto all = rig.events.all();
  REQUIRE(all.size() == 2);
  CHECK(all[1].reason == "Failed");
  CHECK(all[1].via == "outcome");
  CHECK(all[1].certificate == "default/web-tls");
}

TEST_CASE("a new Ingress gets a kubernetes.io/tls Secret with our label and annotations") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"WWW.Example.com", "example.com"}, "web-tls"));
  auto r = rig.reconciler();
  auto result = r->reconcile("default/web-tls");
  CHECK(rig.issuer.count() == 1);
  CHECK(rig.issuer.snapshot()[0].names == std::vector<std::string>{"example.com", "www.example.com"});
  auto s = rig.secrets.peek("default/web-tls");
  REQUIRE(s);
  CHECK(s->type == "kubernetes.io/tls");
  CHECK(s->labels.at("app.kubernetes.io/managed-by") == "acme-sidecar");
  CHECK(s->annotations.at("acme-sidecar.io/names") == "example.com,www.example.com");
  CHECK(s->annotations.at("acme-sidecar.io/issuer") == kDirectory);
  CHECK(s->annotations.at("acme-sidecar.io/ingresses") == "default/web");
  CHECK(s->annotations.at("acme-sidecar.io/not-after") == format_rfc3339(rig.clock.now() + 90 * 24h));
  CHECK(s->data.at("tls.crt").find("INTERMEDIATE") != std::string::npos);  // leaf + chain
  CHECK(s->data.count("tls.key") == 1);
  CHECK(s->owner_references.empty());
  CHECK(rig.secrets.creates == 1);
  // Requeue at the renewal point: 2/3 of 90 days.
  REQUIRE(result.requeue_after);
  CHECK(*result.requeue_after == 60 * 24h);
  CHECK(rig.events.count("Issuing", "default/web") == 1);
  CHECK(rig.events.count("Issued", "default/web") == 1);
  CHECK(rig.observer.issuances == std::vector<std::string>{"success:secret_missing"});
  CHECK(rig.observer.status.at("default/web-tls").ready);
  CHECK(rig.observer.status.at("default/web-tls").renewal_time == rig.clock.now() + 60 * 24h);
}

TEST_CASE("a restart with valid Secrets issues nothing") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "a-tls"));
  rig.lister.upsert(make_ingress("b", {"b.example"}, "b-tls", "other"));
  auto first = rig.reconciler();
  first->reconcile("default/a-tls");
  first->reconcile("other/b-tls");
  REQUIRE(rig.issuer.count() == 2);
  rig.clock.advance(24h);

  auto second = rig.reconciler();  // fresh process: no memory, only the Secrets
  auto ra = second->reconcile("default/a-tls");
  auto rb = second->reconcile("other/b-tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.secrets.updates == 0);
  REQUIRE(ra.requeue_after);
  CHECK(*ra.requeue_after == 59 * 24h);
  CHECK(rb.requeue_after.has_value());
}

TEST_CASE("hosts added to the Ingress re-issue with the new names") {
  Rig rig;
  auto ing = make_ingress("web", {"a.example"}, "tls");
  rig.lister.upsert(ing);
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  ing.tls[0].hosts.push_back("b.example");
  rig.lister.upsert(ing);
  r->reconcile("default/tls");
  REQUIRE(rig.issuer.count() == 2);
  CHECK(rig.issuer.snapshot()[1].names == std::vector<std::string>{"a.example", "b.example"});
  CHECK(rig.secrets.peek("default/tls")->annotations.at("acme-sidecar.io/names") == "a.example,b.example");
  CHECK(rig.secrets.updates == 1);
  CHECK(rig.events.count("Renewed") == 1);
  CHECK(rig.observer.issuances.back() == "success:names_changed");
}

TEST_CASE("two Ingresses pointing at one Secret get one merged certificate") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "shared"));
  rig.lister.upsert(make_ingress("b", {"b.example", "a.example"}, "shared"));
  auto r = rig.reconciler();
  r->reconcile("default/shared");
  REQUIRE(rig.issuer.count() == 1);
  CHECK(rig.issuer.snapshot()[0].names == std::vector<std::string>{"a.example", "b.example"});
  CHECK(rig.secrets.peek("default/shared")->annotations.at("acme-sidecar.io/ingresses") == "default/a,default/b");
  CHECK(rig.events.count("Issued", "default/a") == 1);
  CHECK(rig.events.count("Issued", "default/b") == 1);
}

TEST_CASE("a deleted Secret is issued again") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  rig.secrets.erase("default/tls");
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.secrets.peek("default/tls").has_value());
}

TEST_CASE("a foreign Secret is never touched and each source Ingress is told why") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  rig.lister.upsert(make_ingress("b", {"b.example"}, "tls"));
  SecretData foreign;
  foreign.namespace_name = "default";
  foreign.name = "tls";
  foreign.type = "kubernetes.io/tls";
  foreign.data["tls.crt"] = "garbage";
  rig.secrets.put(foreign);
  auto before = rig.secrets.peek("default/tls");
  auto r = rig.reconciler();
  auto result = r->reconcile("default/tls");
  r->reconcile("default/tls");  // again: no duplicate Event
  CHECK(rig.issuer.count() == 0);
  CHECK(rig.secrets.updates == 0);
  CHECK(rig.secrets.creates == 0);
  CHECK(rig.secrets.peek("default/tls")->data == before->data);
  CHECK_FALSE(result.requeue_after);
  CHECK(rig.events.count("Skipped", "default/a") == 1);
  CHECK(rig.events.count("Skipped", "default/b") == 1);
  CHECK(rig.events.all()[0].type == EventType::Warning);
  CHECK(rig.events.all()[0].message.find("app.kubernetes.io/managed-by") != std::string::npos);
  CHECK_FALSE(rig.observer.status.at("default/tls").ready);
}

TEST_CASE("a Secret taken over by someone else during issuance is not overwritten") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  rig.issuer.behaviour = [&](const core::DesiredCertificate&) {
    SecretData foreign;
    foreign.namespace_name = "default";
    foreign.name = "tls";
    foreign.type = "Opaque";
    rig.secrets.put(foreign);
  };
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  CHECK(rig.secrets.peek("default/tls")->type == "Opaque");
  CHECK(rig.events.count("Skipped") == 1);
}

TEST_CASE("a Conflict on write re-reads and retries, keeping the other writer's changes") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  rig.lister.upsert(make_ingress("web", {"a.example", "b.example"}, "tls"));
  rig.secrets.conflicts_left = 1;
  r->reconcile("default/tls");
  auto s = rig.secrets.peek("default/tls");
  CHECK(s->annotations.at("acme-sidecar.io/names") == "a.example,b.example");
  CHECK(s->annotations.at("other-writer") == "was-here");
  CHECK(rig.secrets.updates == 2);
  CHECK(rig.secrets.fresh_gets == 1);  // the re-read bypasses caches
  CHECK(rig.issuer.count() == 2);  // the certificate is not requested twice
}

TEST_CASE("endless Conflicts give up after a bounded number of attempts with a Conflict error") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  rig.lister.upsert(make_ingress("web", {"b.example"}, "tls"));
  rig.secrets.conflicts_left = 100;
  try {
    r->reconcile("default/tls");
    FAIL("no error");
  } catch (const core::Error& e) {
    CHECK(e.kind() == core::ErrorKind::Conflict);
  }
  CHECK(rig.secrets.updates == 3);
  CHECK(rig.events.count("Failed") == 1);
  CHECK(rig.observer.issuances.back() == "failure:secret_write");
}

TEST_CASE("a create racing another creator falls back to update") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  rig.issuer.behaviour = [&](const core::DesiredCertificate&) {
    SecretData ours;
    ours.namespace_name = "default";
    ours.name = "tls";
    ours.type = "kubernetes.io/tls";
    ours.labels["app.kubernetes.io/managed-by"] = "acme-sidecar";
    rig.secrets.put(ours);
  };
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  CHECK(rig.secrets.creates == 1);
  CHECK(rig.secrets.updates == 1);
  CHECK(rig.secrets.peek("default/tls")->data.count("tls.crt") == 1);
}

TEST_CASE("a CA failure emits Failed with the CA's reason and rethrows") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  rig.issuer.behaviour = [](const core::DesiredCertificate&) {
    core::Error e(core::ErrorKind::RateLimited, "too many certificates already issued for example");
    e.acme_type = "rateLimited";
    e.retry_after = std::chrono::seconds(3600);
    throw e;
  };
  auto r = rig.reconciler();
  try {
    r->reconcile("default/tls");
    FAIL("no error");
  } catch (const core::Error& e) {
    CHECK(e.kind() == core::ErrorKind::RateLimited);
  }
  auto events = rig.events.all();
  REQUIRE(rig.events.count("Failed") == 1);
  auto failed = std::find_if(events.begin(), events.end(), [](const auto& e) { return e.reason == "Failed"; });
  CHECK(failed->type == EventType::Warning);
  CHECK(failed->message.find("too many certificates") != std::string::npos);
  CHECK(failed->message.find("rateLimited") != std::string::npos);
  CHECK(rig.observer.issuances == std::vector<std::string>{"failure:rate_limited"});
  CHECK_FALSE(rig.secrets.peek("default/tls"));
}

TEST_CASE("an issued certificate that does not match is rejected before writing") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  SECTION("wrong names") { rig.issuer.tamper_names = true; }
  SECTION("wrong key") { rig.issuer.wrong_key = true; }
  auto r = rig.reconciler();
  CHECK_THROWS_AS(r->reconcile("default/tls"), core::Error);
  CHECK_FALSE(rig.secrets.peek("default/tls"));
  CHECK(rig.observer.issuances == std::vector<std::string>{"failure:invalid_certificate"});
  CHECK(rig.events.count("Failed") == 1);
}

TEST_CASE("during failure backoff the same request is deferred, a changed one goes ahead") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  bool fail = true;
  rig.issuer.behaviour = [&](const core::DesiredCertificate&) {
    if (fail) throw core::Error(core::ErrorKind::ServerError, "CA down");
  };
  auto r = rig.reconciler();
  CHECK_THROWS(r->reconcile("default/tls"));
  ReconcileOptions opts{rig.clock.now() + 10min};
  auto deferred = r->reconcile("default/tls", opts);
  CHECK(deferred.deferred);
  CHECK(deferred.requeue_after == 10min);
  CHECK(rig.issuer.count() == 1);
  fail = false;
  rig.lister.upsert(make_ingress("web", {"a.example", "b.example"}, "tls"));
  auto result = r->reconcile("default/tls", opts);
  CHECK_FALSE(result.deferred);
  CHECK(rig.issuer.count() == 2);
}

TEST_CASE("renewal happens at the renewal point and not before") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  rig.clock.advance(60 * 24h - 1s);
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 1);
  rig.clock.advance(1s);
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.observer.issuances.back() == "success:due");
  CHECK(rig.events.count("Renewed") == 1);
}

TEST_CASE("a changed directory re-issues") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  rig.reconciler()->reconcile("default/tls");
  rig.config.renewal.issuer = "https://other-ca.test/dir";
  rig.reconciler()->reconcile("default/tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.secrets.peek("default/tls")->annotations.at("acme-sidecar.io/issuer") == "https://other-ca.test/dir");
}

TEST_CASE("owner references only with the flag") {
  Rig rig;
  rig.config.owner_references = true;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  rig.lister.upsert(make_ingress("b", {"b.example"}, "tls"));
  rig.reconciler()->reconcile("default/tls");
  auto s = rig.secrets.peek("default/tls");
  REQUIRE(s->owner_references.size() == 2);
  CHECK(s->owner_references[0].name == "a");
  CHECK(s->owner_references[0].uid == "uid-default-a");
  CHECK(s->owner_references[0].kind == "Ingress");
}

TEST_CASE("dropped names are reported once as Warning events and metrics and the rest is issued") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"*.example.com", "10.1.2.3", "ok.example.com"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  r->reconcile("default/tls");
  CHECK(rig.issuer.snapshot().at(0).names == std::vector<std::string>{"ok.example.com"});
  CHECK(rig.events.count("NameRejected", "default/web") == 2);
  CHECK(rig.observer.rejected == std::vector<std::string>{"wildcard", "ip_address"});
}

TEST_CASE("too many names: refused with an Event, nothing sent to the CA") {
  Rig rig;
  std::vector<std::string> hosts;
  for (int i = 0; i < 101; ++i) hosts.push_back("h" + std::to_string(i) + ".example");
  rig.lister.upsert(make_ingress("web", hosts, "tls"));
  auto result = rig.reconciler()->reconcile("default/tls");
  CHECK(rig.issuer.count() == 0);
  CHECK_FALSE(result.requeue_after);
  REQUIRE(rig.events.count("Failed", "default/web") == 1);
  CHECK(rig.events.all().back().message.find("101 names exceed the limit of 100") != std::string::npos);
}

TEST_CASE("a key no Ingress wants any more is reported removed and its Secret stays") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  rig.lister.remove("default", "web");
  CHECK(r->scan().keys == std::set<std::string>{"default/tls"});  // still visited once more
  auto result = r->reconcile("default/tls");
  CHECK_FALSE(result.requeue_after);
  CHECK(rig.observer.removed == std::vector<std::string>{"default/tls"});
  CHECK(rig.secrets.peek("default/tls").has_value());
  CHECK(r->scan().keys.empty());
}

TEST_CASE("Ingresses of another class or opted out are ignored") {
  Rig rig;
  auto other = make_ingress("web", {"a.example"}, "tls");
  other.ingress_class_name = "traefik";
  rig.lister.upsert(other);
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 0);
  // Class-less Ingresses count once our IngressClass is the default.
  other.ingress_class_name.reset();
  rig.lister.upsert(other);
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 0);
  rig.lister.set_classes({{"nginx", "k8s.io/ingress-nginx", true}});
  r->reconcile("default/tls");
  CHECK(rig.issuer.count() == 1);
}

TEST_CASE("scan: desired certificates counted one Secret at a time, other classes left out") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "shared-tls"));
  rig.lister.upsert(make_ingress("api", {"b.example"}, "shared-tls"));  // same Secret: one certificate
  auto two = make_ingress("two", {"c.example"}, "c-tls", "other-ns");
  two.tls.push_back({{"d.example"}, "d-tls"});
  rig.lister.upsert(two);
  auto foreign = make_ingress("foreign", {"e.example"}, "e-tls");
  foreign.ingress_class_name = "traefik";
  rig.lister.upsert(foreign);
  auto r = rig.reconciler();
  auto scan = r->scan();
  CHECK(scan.desired == 3);
  CHECK(scan.keys == std::set<std::string>{"default/shared-tls", "other-ns/c-tls", "other-ns/d-tls"});
  // The generic lister (no index) gives the same answer through its default secret_keys().
  CHECK(rig.lister.IngressLister::secret_keys() ==
        std::vector<std::string>{"default/e-tls", "default/shared-tls", "other-ns/c-tls", "other-ns/d-tls"});
}

TEST_CASE("malformed keys are an Invalid error") {
  Rig rig;
  CHECK_THROWS_AS(rig.reconciler()->reconcile("no-slash"), core::Error);
}

namespace {
struct FixedAri final : RenewalInfoSource {
  std::optional<core::RenewalWindow> window;
  int calls = 0;
  std::vector<std::string> ids;
  std::optional<core::RenewalWindow> renewal_window(std::string_view ari_id) override {
    ++calls;
    ids.emplace_back(ari_id);
    return window;
  }
};
}  // namespace

TEST_CASE("an ARI window moves the renewal point to a random time inside it") {
  Rig rig;
  FixedAri ari;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  ReconcilerDeps deps{rig.lister, rig.secrets, rig.issuer, rig.inspector, rig.events, rig.clock,
                      core::Logger::discard(), [] { return 0.25; }, &rig.observer, &ari};
  Reconciler r(deps, rig.config);
  r.reconcile("default/tls");
  auto t0 = rig.clock.now();
  ari.window = core::RenewalWindow{t0 + 10 * 24h, t0 + 14 * 24h};
  auto result = r.reconcile("default/tls");
  CHECK(result.requeue_after == 11 * 24h);  // start + 0.25 * 4 days
  rig.clock.advance(11 * 24h);
  r.reconcile("default/tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.observer.issuances.back() == "success:ari_window");
  // ARI is asked by the CertID of the certificate in the Secret, and the renewal order names it in
  // "replaces"; the first issuance replaces nothing.
  REQUIRE_FALSE(ari.ids.empty());
  CHECK(ari.ids.front() == "fake.k1");
  CHECK(rig.issuer.replaced() == std::vector<std::string>{"", "fake.k1"});
}

TEST_CASE("a Skipped state is reported again after the Secret was healthy in between") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  auto r = rig.reconciler();
  r->reconcile("default/tls");
  auto ours = rig.secrets.peek("default/tls");
  auto foreign = *ours;
  foreign.labels.clear();
  rig.secrets.put(foreign);
  r->reconcile("default/tls");
  r->reconcile("default/tls");
  CHECK(rig.events.count("Skipped") == 1);
  rig.secrets.put(*ours);
  r->reconcile("default/tls");
  rig.secrets.put(foreign);
  r->reconcile("default/tls");
  CHECK(rig.events.count("Skipped") == 2);
  CHECK(rig.issuer.count() == 1);
}

TEST_CASE("a managed Secret of the wrong type is reported, not rewritten") {
  Rig rig;
  rig.lister.upsert(make_ingress("web", {"a.example"}, "tls"));
  SecretData s;
  s.namespace_name = "default";
  s.name = "tls";
  s.type = "Opaque";
  s.labels["app.kubernetes.io/managed-by"] = "acme-sidecar";
  rig.secrets.put(s);
  rig.reconciler()->reconcile("default/tls");
  CHECK(rig.issuer.count() == 0);
  CHECK(rig.secrets.updates == 0);
  REQUIRE(rig.events.count("Skipped") == 1);
  CHECK(rig.events.all().back().message.find("immutable") != std::string::npos);
}

TEST_CASE("a cached Secret's inspected facts decide, and it is read whole before it is renewed") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "a-tls"));
  rig.reconciler()->reconcile("default/a-tls");
  REQUIRE(rig.issuer.count() == 1);
  auto stored = rig.secrets.peek("default/a-tls").value();
  stored.data["ca.crt"] = "foreign bytes";  // a key someone else added: an update must keep it
  rig.secrets.put(stored);
  rig.secrets.serve_inspected = &rig.inspector;

  auto r = rig.reconciler();  // fresh process reading through a facts-only cache
  auto valid = r->reconcile("default/a-tls");
  CHECK(rig.issuer.count() == 1);
  CHECK(rig.secrets.fresh_gets == 0);
  CHECK(rig.observer.status.at("default/a-tls").ready);
  REQUIRE(valid.requeue_after);
  CHECK(*valid.requeue_after == 60 * 24h);

  rig.clock.advance(61 * 24h);  // renewal due
  r->reconcile("default/a-tls");
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.secrets.fresh_gets == 1);
  CHECK(rig.secrets.updates == 1);
  auto renewed = rig.secrets.peek("default/a-tls").value();
  CHECK(renewed.data.at("ca.crt") == "foreign bytes");
  CHECK(renewed.data.count("tls.key") == 1);
}

TEST_CASE("inspect_tls reports a missing key or certificate") {
  FakeInspector inspector;
  CHECK_FALSE(inspect_tls({{"tls.crt", "x"}}, inspector).present);
  CHECK_FALSE(inspect_tls({{"tls.key", "x"}}, inspector).present);
  auto chain = std::string("-----BEGIN CERTIFICATE-----\nFAKE names=a.example nb=0 na=100 key=k alg=ecdsa-p256\n"
                           "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nINTERMEDIATE\n"
                           "-----END CERTIFICATE-----\n");
  auto t = inspect_tls({{"tls.crt", chain}, {"tls.key", "\nk\n"}}, inspector);
  CHECK(t.present);
  REQUIRE(t.inspection.facts);
  CHECK(t.inspection.facts->key_matches);
}
