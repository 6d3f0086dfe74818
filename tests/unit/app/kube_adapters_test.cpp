#include <catch2/catch.hpp>

#include <atomic>
#include <nlohmann/json.hpp>

#include "app/kube_adapters.hpp"
#include "core/ingress.hpp"
#include "crypto/encoding.hpp"
#include "tests/unit/kube/fakes.hpp"

using namespace acme_sidecar;
using nlohmann::json;

namespace {

// Counts inspections; the "certificate" is valid when it contains "good".
class CountingInspector final : public controller::CertificateInspector {
 public:
  controller::Inspection inspect(std::string_view chain, std::string_view key) const override {
    ++calls;
    controller::Inspection out;
    if (chain.find("good") == std::string_view::npos) {
      out.error = "bad";
      return out;
    }
    core::CertificateFacts f;
    f.key_matches = key == "key";
    out.facts = f;
    return out;
  }
  mutable std::atomic<int> calls{0};
};

json secret(const std::string& name, const std::string& rv, const std::string& crt, bool with_key = true) {
  json data = {{"tls.crt", crypto::base64_encode(crt)}};
  if (with_key) data["tls.key"] = crypto::base64_encode(std::string("key"));
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"type", "kubernetes.io/tls"},
          {"metadata",
           {{"name", name},
            {"namespace", "ns"},
            {"resourceVersion", rv},
            {"labels", {{"app.kubernetes.io/managed-by", "acme-sidecar"}}},
            {"annotations", {{"acme-sidecar.io/names", "a.example"}}}}},
          {"data", data}};
}

json ingress(const std::string& name, const std::string& rv, const std::string& secret_name) {
  return {{"apiVersion", "networking.k8s.io/v1"},
          {"kind", "Ingress"},
          {"metadata", {{"name", name}, {"namespace", "ns"}, {"resourceVersion", rv}}},
          {"spec",
           {{"ingressClassName", "nginx"},
            {"tls", json::array({{{"hosts", {"a.example"}}, {"secretName", secret_name}}})}}}};
}

}  // namespace

TEST_CASE("SecretCache keeps metadata and inspected facts, never the PEM bytes") {
  CountingInspector inspector;
  app::SecretCache cache(inspector);
  cache.upsert(secret("a", "1", "-----BEGIN CERTIFICATE-----\ngood\n-----END CERTIFICATE-----\n"));
  cache.upsert(secret("b", "2", "junk", false));
  CHECK(inspector.calls == 1);  // b has no key: nothing to inspect
  CHECK(cache.size() == 2);

  auto a = cache.get("ns", "a");
  REQUIRE(a);
  CHECK(a->data.empty());
  CHECK(a->resource_version == "1");
  CHECK(a->annotations.at("acme-sidecar.io/names") == "a.example");
  REQUIRE(a->inspected);
  CHECK(a->inspected->present);
  REQUIRE(a->inspected->inspection.facts);
  CHECK(a->inspected->inspection.facts->key_matches);
  // Reads share the inspection: no crypto per get.
  CHECK(cache.get("ns", "a")->inspected == a->inspected);
  CHECK(inspector.calls == 1);

  auto b = cache.get("ns", "b");
  REQUIRE(b);
  REQUIRE(b->inspected);
  CHECK_FALSE(b->inspected->present);

  cache.upsert(secret("a", "3", "bad"));
  CHECK(inspector.calls == 2);
  CHECK(cache.get("ns", "a")->inspected->inspection.error == "bad");
  cache.erase(json{{"metadata", {{"name", "a"}, {"namespace", "ns"}}}});
  CHECK_FALSE(cache.get("ns", "a"));
  CHECK(cache.size() == 1);
}

TEST_CASE("SecretCache recognises the watch echo of its own write, and nothing else") {
  CountingInspector inspector;
  app::SecretCache cache(inspector);
  const std::string pem = "-----BEGIN CERTIFICATE-----\ngood\n-----END CERTIFICATE-----\n";
  // Never written by us: every version is news.
  CHECK_FALSE(cache.upsert(secret("a", "1", pem)));
  CHECK_FALSE(cache.upsert(secret("a", "2", pem)));

  // Our write stored as version 5: its event is an echo, once; the next version is someone's change.
  cache.note_own_write("ns/a", "5");
  CHECK(cache.upsert(secret("a", "5", pem)));
  CHECK(cache.get("ns", "a")->resource_version == "5");  // the cache is updated all the same
  CHECK_FALSE(cache.upsert(secret("a", "5", pem)));      // a relist replaying it is not skipped twice
  CHECK_FALSE(cache.upsert(secret("a", "6", pem)));

  // Someone else's write got in between: the version differs, so it is reconciled.
  cache.note_own_write("ns/a", "7");
  CHECK_FALSE(cache.upsert(secret("a", "8", pem)));
  CHECK_FALSE(cache.upsert(secret("a", "7", pem)));  // the note went with the first later event

  // The event arrived before the create call returned: nothing is noted, nothing skipped later.
  CHECK_FALSE(cache.upsert(secret("b", "9", pem)));
  cache.note_own_write("ns/b", "9");
  CHECK_FALSE(cache.upsert(secret("b", "9", pem)));

  // A deleted Secret forgets its note.
  cache.note_own_write("ns/c", "11");
  cache.erase(json{{"metadata", {{"name", "c"}, {"namespace", "ns"}}}});
  CHECK_FALSE(cache.upsert(secret("c", "11", pem)));
}

TEST_CASE("KubeSecretStore reads its own write from the API until the watch has delivered it") {
  // A reconcile of the same Secret that starts before the watch echoes the write (an Ingress event
  // queued meanwhile) must see the written version, not the cached one before it: that would order
  // the renewal just written again.
  CountingInspector inspector;
  app::SecretCache cache(inspector);
  const std::string old_pem = "-----BEGIN CERTIFICATE-----\ngood old\n-----END CERTIFICATE-----\n";
  const std::string new_pem = "-----BEGIN CERTIFICATE-----\ngood new\n-----END CERTIFICATE-----\n";
  json stored = secret("a", "4", old_pem);
  kube::testing::FakeHttp http([&](const http::Request& r, const http::ChunkHandler*) {
    if (r.method == "GET") return kube::testing::json_response(200, stored);
    stored = json::parse(r.body);
    stored["metadata"]["resourceVersion"] = "5";
    return kube::testing::json_response(200, stored);
  });
  kube::KubeConfig config;
  config.server = "https://api.test:6443";
  kube::Client client(http, config);
  app::KubeSecretStore store(client, &cache);
  cache.upsert(stored);  // version 4 from the watch

  auto current = store.get("ns", "a");
  REQUIRE(current);
  CHECK(current->resource_version == "4");
  CHECK(http.count() == 0);  // from the cache

  auto update = app::secret_from_json(secret("a", "4", new_pem));
  CHECK(store.update(update).resource_version == "5");
  auto read = store.get("ns", "a");  // no echo yet
  REQUIRE(read);
  CHECK(read->resource_version == "5");
  CHECK(read->data.at("tls.crt") == new_pem);
  CHECK(http.count() == 2);  // the PUT and one GET

  CHECK(cache.upsert(stored));  // the echo
  CHECK(store.get("ns", "a")->resource_version == "5");
  CHECK(http.count() == 2);  // from the cache again
}

TEST_CASE("SecretCache keeps the managed-by label and our own annotations only") {
  CountingInspector inspector;
  app::SecretCache cache(inspector);
  auto s = secret("a", "1", "good");
  s["metadata"]["labels"]["team"] = "web";
  s["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = std::string(4000, 'x');
  s["metadata"]["annotations"]["acme-sidecar.io/ingresses"] = "ns/i,ns/j";
  s["metadata"]["annotations"]["acme-sidecar.io/issuer"] = "";  // empty values survive too
  s["metadata"]["annotations"]["acme-sidecar.io/not-after"] = std::string("a\0b\0", 4);  // and any byte
  s["metadata"]["ownerReferences"] = json::array(
      {{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "i"}, {"uid", "u-1"}}});
  cache.upsert(s);
  auto a = cache.get("ns", "a");
  REQUIRE(a);
  CHECK(a->namespace_name == "ns");
  CHECK(a->name == "a");
  CHECK(a->type == "kubernetes.io/tls");
  CHECK(a->labels == std::map<std::string, std::string>{{"app.kubernetes.io/managed-by", "acme-sidecar"}});
  CHECK(a->annotations == std::map<std::string, std::string>{{"acme-sidecar.io/ingresses", "ns/i,ns/j"},
                                                             {"acme-sidecar.io/issuer", ""},
                                                             {"acme-sidecar.io/names", "a.example"},
                                                             {"acme-sidecar.io/not-after", std::string("a\0b\0", 4)}});
  REQUIRE(a->owner_references.size() == 1);
  CHECK(a->owner_references[0].uid == "u-1");
}

TEST_CASE("SecretCache::served_targets: TLS Secrets with a certificate and a names annotation") {
  CountingInspector inspector;
  app::SecretCache cache(inspector);
  auto named = secret("named", "1", "good");
  named["metadata"]["annotations"]["acme-sidecar.io/names"] = "a.example,b.example";
  named["metadata"]["annotations"]["acme-sidecar.io/names-x"] = "decoy";
  cache.upsert(named);
  auto unnamed = secret("unnamed", "1", "good");
  unnamed["metadata"]["annotations"] = json::object();
  cache.upsert(unnamed);
  cache.upsert(secret("broken", "1", "bad"));   // no facts
  auto opaque = secret("opaque", "1", "good");
  opaque["type"] = "Opaque";
  cache.upsert(opaque);
  auto targets = cache.served_targets();
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].namespace_name == "ns");
  CHECK(targets[0].name == "named");
  CHECK(targets[0].names == "a.example,b.example");
}

TEST_CASE("InformerIngressLister hands back the previous view, so moved Secrets are looked at too") {
  app::InformerIngressLister lister(nullptr, core::Logger::discard());
  auto first = lister.upsert(ingress("i", "1", "old-tls"));
  CHECK_FALSE(first.before);
  REQUIRE(first.after);
  CHECK(first.after->tls.at(0).secret_name == "old-tls");

  auto moved = lister.upsert(ingress("i", "2", "new-tls"));
  REQUIRE(moved.before);
  CHECK(moved.before->tls.at(0).secret_name == "old-tls");
  CHECK(moved.after->tls.at(0).secret_name == "new-tls");
  CHECK(lister.list_for_secret("ns", "old-tls").empty());
  CHECK(lister.list_for_secret("ns", "new-tls").size() == 1);

  // A relist's deletion carries only the metadata (the informer keeps keys only): the lister still knows
  // what the Ingress pointed at.
  auto removed = lister.erase(json{{"metadata", {{"name", "i"}, {"namespace", "ns"}, {"resourceVersion", "2"}}}});
  REQUIRE(removed);
  CHECK(removed->tls.at(0).secret_name == "new-tls");
  CHECK(lister.size() == 0);
  CHECK(lister.list_for_secret("ns", "new-tls").empty());
}

TEST_CASE("InformerIngressLister keeps only the annotations decisions read") {
  app::InformerIngressLister lister(nullptr, core::Logger::discard());
  auto ing = ingress("i", "1", "tls");
  ing["metadata"]["annotations"] = {{"kubectl.kubernetes.io/last-applied-configuration", std::string(5000, 'x')},
                                    {"nginx.ingress.kubernetes.io/ssl-redirect", "true"},
                                    {"cert-manager.io/cluster-issuer", "le"},
                                    {"acme-sidecar.io/profile", "shortlived"}};
  auto change = lister.upsert(ing);
  REQUIRE(change.after);
  auto kept = std::map<std::string, std::string>{{"acme-sidecar.io/profile", "shortlived"},
                                                 {"cert-manager.io/cluster-issuer", "le"}};
  CHECK(change.after->annotations == kept);
  REQUIRE(lister.list("ns").size() == 1);
  CHECK(lister.list("ns")[0].annotations == kept);
  // Selection still sees what hands the Ingress to cert-manager.
  CHECK(core::select_ingress(lister.list("ns")[0], {}).reason == core::SelectReason::CertManager);
}

TEST_CASE("InformerIngressLister::secret_keys follows its index, each Secret once") {
  app::InformerIngressLister lister(nullptr, core::Logger::discard());
  lister.upsert(ingress("a", "1", "shared-tls"));
  lister.upsert(ingress("b", "1", "shared-tls"));
  lister.upsert(ingress("c", "1", "own-tls"));
  CHECK(lister.secret_keys() == std::vector<std::string>{"ns/own-tls", "ns/shared-tls"});
  lister.upsert(ingress("c", "2", "moved-tls"));
  lister.erase(ingress("a", "1", "shared-tls"));
  CHECK(lister.secret_keys() == std::vector<std::string>{"ns/moved-tls", "ns/shared-tls"});
  lister.erase(ingress("b", "1", "shared-tls"));
  CHECK(lister.secret_keys() == std::vector<std::string>{"ns/moved-tls"});
}
