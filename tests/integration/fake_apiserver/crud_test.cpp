// Wire-level tests of the fake API server: TLS, auth, discovery, CRUD, selectors, patches, validation.
#include <catch2/catch.hpp>

#include <set>
#include <thread>

#include "internal.hpp"
#include "wire.hpp"

using namespace fa_test;

TEST_CASE("fake_apiserver: TLS verifies against the generated CA for 127.0.0.1 and localhost", "[fake_apiserver]") {
  Fixture f;
  for (const char* host : {"127.0.0.1", "localhost"}) {
    auto c = f.client(f.server.admin_token(), host);
    auto r = c->Get("/version");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  httplib::SSLClient untrusted("127.0.0.1", f.server.port());
  untrusted.enable_server_certificate_verification(true);
  untrusted.set_ca_cert_path("/dev/null");
  auto r = untrusted.Get("/version");
  CHECK(!r);
}

TEST_CASE("fake_apiserver: missing or unknown bearer token is 401 Status", "[fake_apiserver]") {
  Fixture f;
  for (const std::string token : {"", "wrong"}) {
    auto r = f.req("GET", kSecrets, "", "", token);
    CHECK(r.status == 401);
    CHECK(r.j["kind"] == "Status");
    CHECK(r.j["reason"] == "Unauthorized");
    CHECK(r.j["code"] == 401);
    CHECK(r.j["message"] == "Unauthorized");
  }
  CHECK(f.get(kSecrets).status == 200);
}

TEST_CASE("fake_apiserver: policy answers 403 with the real server's message", "[fake_apiserver]") {
  Options o = default_options();
  o.tokens = {{"alice", "alice-token"}, {"bob", "bob-token"}};
  o.policy = R"(
users:
  alice:
    - verbs: [get, list, watch]
      apiGroups: [""]
      resources: [configmaps]
      namespaces: [default]
    - verbs: [get, update]
      apiGroups: [networking.k8s.io]
      resources: [ingresses/status]
)";
  Fixture f(o);
  REQUIRE(f.post(kSecrets, secret("x")).status == 201);
  REQUIRE(f.post(kConfigMaps, configmap("c")).status == 201);

  auto r = f.req("GET", std::string(kSecrets) + "/x", "", "", "alice-token");
  CHECK(r.status == 403);
  CHECK(r.j["reason"] == "Forbidden");
  CHECK(r.j["message"] ==
        "secrets \"x\" is forbidden: User \"alice\" cannot get resource \"secrets\" in API group \"\" in the namespace "
        "\"default\"");
  CHECK(r.j["details"]["name"] == "x");
  CHECK(r.j["details"]["kind"] == "secrets");

  r = f.req("GET", "/api/v1/configmaps", "", "", "alice-token");
  CHECK(r.status == 403);
  CHECK(r.j["message"] ==
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" at the cluster "
        "scope");
  CHECK(f.req("GET", std::string(kConfigMaps) + "/c", "", "", "alice-token").status == 200);
  CHECK(f.req("GET", kConfigMaps, "", "", "alice-token").status == 200);
  r = f.req("GET", "/api/v1/namespaces/kube-system/configmaps", "", "", "alice-token");
  CHECK(r.status == 403);
  CHECK(r.j["message"] ==
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the "
        "namespace \"kube-system\"");
  r = f.req("POST", kConfigMaps, configmap("d").dump(), "application/json", "alice-token");
  CHECK(r.status == 403);
  // Subresources are authorized separately.
  REQUIRE(f.post(kIngresses, ingress("web")).status == 201);
  r = f.req("PUT", std::string(kIngresses) + "/web", ingress("web").dump(), "application/json", "alice-token");
  CHECK(r.status == 403);
  CHECK(r.j["message"] ==
        "ingresses.networking.k8s.io \"web\" is forbidden: User \"alice\" cannot update resource \"ingresses\" in "
        "API group \"networking.k8s.io\" in the namespace \"default\"");
  CHECK(f.req("PUT", std::string(kIngresses) + "/web/status", ingress("web").dump(), "application/json", "alice-token")
            .status == 200);
  // A user the policy does not name may do nothing; discovery stays open to every authenticated user.
  CHECK(f.req("GET", kConfigMaps, "", "", "bob-token").status == 403);
  CHECK(f.req("GET", "/api/v1", "", "", "bob-token").status == 200);
  // The admin is never restricted.
  CHECK(f.get(std::string(kSecrets) + "/x").status == 200);
}

TEST_CASE("fake_apiserver: rules match like RBAC for wildcard subresources and field-selected names", "[fake_apiserver]") {
  Options o = default_options();
  o.tokens = {{"dave", "dave-token"}};
  o.policy = R"(
users:
  dave:
    - verbs: [update]
      apiGroups: ["*"]
      resources: ["*/status"]
    - verbs: [get, list, watch]
      apiGroups: [""]
      resources: [secrets]
      resourceNames: [mine]
)";
  Fixture f(o);
  REQUIRE(f.post(kIngresses, ingress("web")).status == 201);
  REQUIRE(f.post(kSecrets, secret("mine")).status == 201);
  REQUIRE(f.post(kSecrets, secret("other")).status == 201);
  // "*/status" is the status subresource of every resource, and never the resource itself.
  CHECK(f.req("PUT", std::string(kIngresses) + "/web/status", ingress("web").dump(), "application/json", "dave-token")
            .status == 200);
  CHECK(f.req("PUT", std::string(kIngresses) + "/web", ingress("web").dump(), "application/json", "dave-token").status ==
        403);
  // resourceNames: the named get, and a list/watch pinned to that name by metadata.name, are allowed.
  CHECK(f.req("GET", std::string(kSecrets) + "/mine", "", "", "dave-token").status == 200);
  CHECK(f.req("GET", std::string(kSecrets) + "?fieldSelector=metadata.name%3Dmine", "", "", "dave-token").status == 200);
  CHECK(f.req("GET", std::string(kSecrets) + "?fieldSelector=metadata.name%3D%3Dmine", "", "", "dave-token").status ==
        200);
  auto r = f.req("GET", std::string(kSecrets) + "?fieldSelector=metadata.name%3Dother", "", "", "dave-token");
  CHECK(r.status == 403);
  CHECK(r.j["message"] ==
        "secrets \"other\" is forbidden: User \"dave\" cannot list resource \"secrets\" in API group \"\" in the "
        "namespace \"default\"");
  CHECK(f.req("GET", kSecrets, "", "", "dave-token").status == 403);
  CHECK(f.req("GET", std::string(kSecrets) + "?fieldSelector=metadata.name!%3Dother", "", "", "dave-token").status ==
        403);
}

TEST_CASE("fake_apiserver: discovery documents kubectl needs", "[fake_apiserver]") {
  Fixture f;
  auto v = f.get("/version");
  CHECK(v.j["major"] == "1");
  CHECK(v.j["minor"] == "32");
  auto api = f.get("/api");
  CHECK(api.j["kind"] == "APIVersions");
  CHECK(api.j["versions"] == json{"v1"});
  auto v1 = f.get("/api/v1");
  CHECK(v1.j["kind"] == "APIResourceList");
  std::set<std::string> names;
  for (const auto& r : v1.j["resources"]) names.insert(r["name"]);
  for (const char* n : {"namespaces", "secrets", "configmaps", "events"}) CHECK(names.count(n));
  auto apis = f.get("/apis");
  CHECK(apis.j["kind"] == "APIGroupList");
  std::set<std::string> groups;
  for (const auto& g : apis.j["groups"]) groups.insert(g["name"]);
  for (const char* g : {"networking.k8s.io", "coordination.k8s.io", "events.k8s.io"}) CHECK(groups.count(g));
  auto net = f.get("/apis/networking.k8s.io/v1");
  bool ingress_status = false;
  for (const auto& r : net.j["resources"]) ingress_status |= r["name"] == "ingresses/status";
  CHECK(ingress_status);
  CHECK(f.get("/apis/coordination.k8s.io/v1").status == 200);
  auto idx = f.get("/openapi/v3");
  REQUIRE(idx.j["paths"].contains("api/v1"));
  auto doc = f.get(idx.j["paths"]["apis/networking.k8s.io/v1"]["serverRelativeURL"].get<std::string>());
  REQUIRE(doc.status == 200);
  CHECK(doc.body.find("fieldValidation") != std::string::npos);
  CHECK(doc.body.find("\"kind\":\"Ingress\"") != std::string::npos);
  CHECK(f.get("/apis/nope.example.com/v1").status == 404);
}

TEST_CASE("fake_apiserver: create sets metadata, 409 AlreadyExists, generateName", "[fake_apiserver]") {
  Fixture f;
  auto r = f.post(kSecrets, secret("s1"));
  REQUIRE(r.status == 201);
  CHECK(r.j["kind"] == "Secret");
  CHECK(r.j["metadata"]["namespace"] == "default");
  CHECK(!r.j["metadata"]["uid"].get<std::string>().empty());
  CHECK(!r.j["metadata"]["resourceVersion"].get<std::string>().empty());
  CHECK(r.j["metadata"]["creationTimestamp"].get<std::string>().size() == 20);
  CHECK(r.j["type"] == "Opaque");
  auto dup = f.post(kSecrets, secret("s1"));
  CHECK(dup.status == 409);
  CHECK(dup.j["reason"] == "AlreadyExists");
  CHECK(dup.j["message"] == "secrets \"s1\" already exists");
  json g = secret("");
  g["metadata"].erase("name");
  g["metadata"]["generateName"] = "gen-";
  auto gen = f.post(kSecrets, g);
  REQUIRE(gen.status == 201);
  std::string name = gen.j["metadata"]["name"];
  CHECK(name.rfind("gen-", 0) == 0);
  CHECK(name.size() == 9);
  // The global resourceVersion grows across resources.
  auto cm = f.post(kConfigMaps, configmap("c"));
  CHECK(std::stoull(cm.j["metadata"]["resourceVersion"].get<std::string>()) >
        std::stoull(gen.j["metadata"]["resourceVersion"].get<std::string>()));
  // Ingresses carry a generation.
  auto ing = f.post(kIngresses, ingress("web"));
  CHECK(ing.j["metadata"]["generation"] == 1);
}

TEST_CASE("fake_apiserver: hostile input gets the real server's 400/404/405/415/422", "[fake_apiserver]") {
  Fixture f;
  auto r = f.req("POST", kSecrets, "{\"kind\": \"Secret\", ");
  CHECK(r.status == 400);
  CHECK(r.j["reason"] == "BadRequest");
  CHECK(r.j["message"].get<std::string>().rfind("the object provided is unrecognized", 0) == 0);

  r = f.post(kSecrets, configmap("c"));
  CHECK(r.status == 400);
  CHECK(r.j["message"].get<std::string>().find("cannot be handled as a Secret") != std::string::npos);

  json wrong_version = secret("s");
  wrong_version["apiVersion"] = "networking.k8s.io/v1";
  r = f.post(kSecrets, wrong_version);
  CHECK(r.status == 400);

  json other_ns = secret("s");
  other_ns["metadata"]["namespace"] = "kube-system";
  r = f.post(kSecrets, other_ns);
  CHECK(r.status == 400);
  CHECK(r.j["message"] == "the namespace of the provided object does not match the namespace sent on the request");

  r = f.post(kSecrets, secret("Bad_Name"));
  CHECK(r.status == 422);
  CHECK(r.j["reason"] == "Invalid");
  CHECK(r.j["message"].get<std::string>().rfind("Secret \"Bad_Name\" is invalid: metadata.name: Invalid value", 0) == 0);
  CHECK(r.j["details"]["causes"][0]["field"] == "metadata.name");

  json nameless = secret("x");
  nameless["metadata"].erase("name");
  r = f.post(kSecrets, nameless);
  CHECK(r.status == 422);
  CHECK(r.j["message"] == "Secret \"\" is invalid: metadata.name: Required value: name or generateName is required");

  r = f.post("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "a.b"}}}});
  CHECK(r.status == 422);  // namespaces are DNS-1123 labels

  r = f.get("/api/v1/namespaces/default/widgets");
  CHECK(r.status == 404);
  CHECK(r.j["reason"] == "NotFound");
  CHECK(r.j["message"] == "the server could not find the requested resource");

  r = f.post("/api/v1/namespaces/nowhere/secrets", secret("s"));
  CHECK(r.status == 404);
  CHECK(r.j["message"] == "namespaces \"nowhere\" not found");

  r = f.get(std::string(kSecrets) + "/missing");
  CHECK(r.status == 404);
  CHECK(r.j["message"] == "secrets \"missing\" not found");
  CHECK(r.j["details"]["name"] == "missing");

  r = f.post(std::string(kSecrets) + "/named", secret("named"));
  CHECK(r.status == 405);
  CHECK(r.j["reason"] == "MethodNotAllowed");
  r = f.put(kSecrets, secret("x"));
  CHECK(r.status == 405);

  r = f.req("POST", kSecrets, "{}", "application/cbor");
  CHECK(r.status == 415);
  CHECK(r.j["reason"] == "UnsupportedMediaType");
  r = f.req("POST", kSecrets, std::string("k8s\0\x0a", 5), "application/vnd.kubernetes.protobuf");
  CHECK(r.status == 400);  // truncated protobuf
  r = f.req("POST", kSecrets, "not protobuf", "application/vnd.kubernetes.protobuf");
  CHECK(r.status == 400);

  REQUIRE(f.post(kSecrets, secret("p")).status == 201);
  r = f.req("PATCH", std::string(kSecrets) + "/p", "{}", "text/plain");
  CHECK(r.status == 415);
  r = f.req("PATCH", std::string(kSecrets) + "/p", "{not json", "application/merge-patch+json");
  CHECK(r.status == 400);

  r = f.put(std::string(kSecrets) + "/p", secret("q"));
  CHECK(r.status == 400);
  CHECK(r.j["message"] == "the name of the object (q) does not match the name on the URL (p)");

  r = f.req("POST", kSecrets, "[1,2]");
  CHECK(r.status == 400);
  r = f.req("POST", kSecrets, R"({"kind":7})");
  CHECK(r.status == 400);
  r = f.post(kSecrets, {{"kind", "Secret"}, {"apiVersion", "v1"}, {"metadata", {{"name", "l"}, {"labels", {{"a", 1}}}}}});
  CHECK(r.status == 400);
  // Absurd input is refused without harming the server.
  r = f.req("POST", kSecrets, std::string(100000, '[') + std::string(100000, ']'));
  CHECK(r.status == 400);
  r = f.req("PATCH", std::string(kSecrets) + "/p", std::string(100000, '{'), "application/merge-patch+json");
  CHECK(r.status == 400);
  CHECK(f.get(std::string(kSecrets) + "?labelSelector=" + std::string(6000, 'a')).status == 400);
  r = f.post(kSecrets, secret("long", {{"k", std::string(100000, 'v')}}));
  CHECK(r.status == 422);
  CHECK(r.j["details"]["causes"][0]["field"] == "metadata.labels");
  CHECK(f.post(kSecrets, secret("badlabel", {{"-x", "y"}})).status == 422);
  CHECK(f.post(kSecrets, secret(std::string(300, 'a'))).status == 422);
  CHECK(f.post(kSecrets, secret("bigkey", json::object(), {{std::string(100000, 'k'), "YQ=="}})).status == 422);
  CHECK(f.post(kLeases, lease("l", std::string(100000, '1'))).status == 400);
  CHECK(f.get("/version").status == 200);
  // Strict field validation, as kubectl asks for.
  json extra = secret("strict");
  extra["bogus"] = 1;
  r = f.req("POST", std::string(kSecrets) + "?fieldValidation=Strict", extra.dump());
  CHECK(r.status == 400);
  CHECK(r.j["message"].get<std::string>().find("strict decoding error: unknown field \"bogus\"") != std::string::npos);
}

TEST_CASE("fake_apiserver: update conflicts on a stale resourceVersion - no-op update keeps it", "[fake_apiserver]") {
  Fixture f;
  auto created = f.post(kSecrets, secret("s"));
  json obj = created.j;
  obj["metadata"]["labels"] = {{"a", "b"}};
  auto updated = f.put(std::string(kSecrets) + "/s", obj);
  REQUIRE(updated.status == 200);
  CHECK(updated.j["metadata"]["resourceVersion"] != created.j["metadata"]["resourceVersion"]);

  auto stale = f.put(std::string(kSecrets) + "/s", obj);  // still carries the old RV
  CHECK(stale.status == 409);
  CHECK(stale.j["reason"] == "Conflict");
  CHECK(stale.j["message"] ==
        "Operation cannot be fulfilled on secrets \"s\": the object has been modified; please apply your changes to the "
        "latest version and try again");

  auto rv_before = f.server.resource_version();
  auto same = f.put(std::string(kSecrets) + "/s", updated.j);
  CHECK(same.status == 200);
  CHECK(same.j["metadata"]["resourceVersion"] == updated.j["metadata"]["resourceVersion"]);
  CHECK(f.server.resource_version() == rv_before);

  // Unconditional update (no RV) is allowed for Secrets.
  json no_rv = updated.j;
  no_rv["metadata"].erase("resourceVersion");
  no_rv["data"] = {{"k", "eHg="}};
  CHECK(f.put(std::string(kSecrets) + "/s", no_rv).status == 200);
  CHECK(f.put(std::string(kSecrets) + "/absent", secret("absent")).status == 404);

  // Generation bumps on spec changes only.
  auto ing = f.post(kIngresses, ingress("web")).j;
  ing["metadata"]["labels"] = {{"x", "y"}};
  ing = f.put(std::string(kIngresses) + "/web", ing).j;
  CHECK(ing["metadata"]["generation"] == 1);
  ing["spec"]["rules"][0]["host"] = "b.example.com";
  ing = f.put(std::string(kIngresses) + "/web", ing).j;
  CHECK(ing["metadata"]["generation"] == 2);
  // Server-owned metadata is not client-writable.
  json hijack = ing;
  hijack["metadata"]["uid"] = "other";
  hijack["metadata"]["labels"] = {{"x", "z"}};
  auto h = f.put(std::string(kIngresses) + "/web", hijack);
  CHECK(h.j["metadata"]["uid"] == ing["metadata"]["uid"]);
}

TEST_CASE("fake_apiserver: list items carry no kind/apiVersion - lists span namespaces - limit/continue",
          "[fake_apiserver]") {
  Fixture f;
  f.post("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "other"}}}});
  for (int i = 0; i < 5; ++i) f.post(kSecrets, secret("s" + std::to_string(i)));
  f.post("/api/v1/namespaces/other/secrets", secret("o1"));
  auto l = f.get(kSecrets);
  REQUIRE(l.status == 200);
  CHECK(l.j["kind"] == "SecretList");
  CHECK(l.j["apiVersion"] == "v1");
  CHECK(!l.j["metadata"]["resourceVersion"].get<std::string>().empty());
  REQUIRE(l.j["items"].size() == 5);
  for (const auto& item : l.j["items"]) {
    CHECK(!item.contains("kind"));
    CHECK(!item.contains("apiVersion"));
  }
  CHECK(f.get("/api/v1/secrets").j["items"].size() == 6);

  std::vector<std::string> seen;
  std::string cont;
  int pages = 0;
  do {
    auto page = f.get(std::string(kSecrets) + "?limit=2" + (cont.empty() ? "" : "&continue=" + cont));
    REQUIRE(page.status == 200);
    for (const auto& item : page.j["items"]) seen.push_back(item["metadata"]["name"]);
    cont = page.j["metadata"].value("continue", "");
    if (!cont.empty()) CHECK(page.j["metadata"]["remainingItemCount"].get<int>() > 0);
    ++pages;
  } while (!cont.empty() && pages < 10);
  CHECK(pages == 3);
  CHECK(seen == std::vector<std::string>{"s0", "s1", "s2", "s3", "s4"});
  CHECK(f.get(std::string(kSecrets) + "?limit=2&continue=%%%").status == 400);
  auto ns = f.get("/api/v1/namespaces");
  CHECK(ns.j["kind"] == "NamespaceList");
  CHECK(ns.j["items"].size() == 5);
}

TEST_CASE("fake_apiserver: label selectors =, ==, !=, in, notin, exists, !key", "[fake_apiserver]") {
  Fixture f;
  f.post(kSecrets, secret("a", {{"app", "web"}, {"tier", "front"}}));
  f.post(kSecrets, secret("b", {{"app", "db"}}));
  f.post(kSecrets, secret("c", json::object()));
  auto names = [&](const std::string& sel) {
    auto r = f.get(std::string(kSecrets) + "?labelSelector=" + httplib::detail::encode_query_param(sel));
    std::vector<std::string> out;
    for (const auto& i : r.j["items"]) out.push_back(i["metadata"]["name"]);
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(names("app=web") == V{"a"});
  CHECK(names("app==web") == V{"a"});
  CHECK(names("app!=web") == V{"b", "c"});
  CHECK(names("app in (web,db)") == V{"a", "b"});
  CHECK(names("app notin (web)") == V{"b", "c"});
  CHECK(names("app") == V{"a", "b"});
  CHECK(names("!app") == V{"c"});
  CHECK(names("app=web,tier=front") == V{"a"});
  CHECK(names("app,!tier") == V{"b"});
  auto bad = f.get(std::string(kSecrets) + "?labelSelector=" + httplib::detail::encode_query_param("a b c"));
  CHECK(bad.status == 400);
  CHECK(bad.j["reason"] == "BadRequest");
  CHECK(f.get(std::string(kSecrets) + "?labelSelector=" + httplib::detail::encode_query_param("app in (a")).status == 400);
}

TEST_CASE("fake_apiserver: field selectors metadata.name, metadata.namespace, Secret type - others 400",
          "[fake_apiserver]") {
  Fixture f;
  f.post(kSecrets, secret("a"));
  json tls = secret("t", json::object(), {{"tls.crt", "Yw=="}, {"tls.key", "aw=="}});
  tls["type"] = "kubernetes.io/tls";
  REQUIRE(f.post(kSecrets, tls).status == 201);
  auto count = [&](const std::string& path, const std::string& sel) {
    return f.get(path + "?fieldSelector=" + httplib::detail::encode_query_param(sel)).j["items"].size();
  };
  CHECK(count(kSecrets, "metadata.name=a") == 1);
  CHECK(count(kSecrets, "metadata.name!=a") == 1);
  CHECK(count("/api/v1/secrets", "metadata.namespace=default") == 2);
  CHECK(count("/api/v1/secrets", "metadata.namespace=kube-system") == 0);
  CHECK(count(kSecrets, "type=kubernetes.io/tls") == 1);
  auto bad = f.get(std::string(kSecrets) + "?fieldSelector=spec.foo%3Dbar");
  CHECK(bad.status == 400);
  CHECK(bad.j["message"] == "field label not supported: spec.foo");
  CHECK(f.get(std::string(kConfigMaps) + "?fieldSelector=type%3Dx").j["message"] == "field label not supported: type");
}

TEST_CASE("fake_apiserver: merge, JSON and strategic merge patches", "[fake_apiserver]") {
  Fixture f;
  f.post(kSecrets, secret("s", {{"a", "1"}, {"b", "2"}}));
  std::string p = std::string(kSecrets) + "/s";
  auto r = f.patch(p, {{"metadata", {{"labels", {{"a", nullptr}, {"c", "3"}}}}}}, "application/merge-patch+json");
  REQUIRE(r.status == 200);
  CHECK(r.j["metadata"]["labels"] == json{{"b", "2"}, {"c", "3"}});

  r = f.patch(p, json::array({{{"op", "add"}, {"path", "/metadata/labels/d"}, {"value", "4"}}}),
              "application/json-patch+json");
  REQUIRE(r.status == 200);
  CHECK(r.j["metadata"]["labels"]["d"] == "4");
  r = f.patch(p, json::array({{{"op", "test"}, {"path", "/metadata/labels/d"}, {"value", "5"}}}),
              "application/json-patch+json");
  CHECK(r.status == 422);

  // Strategic merge patch as kubectl apply sends it: directives are honoured or ignored, maps merge.
  json smp = {{"metadata",
               {{"labels", {{"e", "5"}}},
                {"finalizers", {"x.io/one"}},
                {"$setElementOrder/finalizers", {"x.io/one"}}}},
              {"data", {{"k", "eXk="}}}};
  r = f.patch(p, smp, "application/strategic-merge-patch+json");
  REQUIRE(r.status == 200);
  CHECK(r.j["metadata"]["labels"]["e"] == "5");
  CHECK(r.j["metadata"]["labels"]["b"] == "2");
  CHECK(r.j["metadata"]["finalizers"] == json{"x.io/one"});
  CHECK(!r.j["metadata"].contains("$setElementOrder/finalizers"));
  r = f.patch(p, {{"metadata", {{"finalizers", {"x.io/two"}}}}}, "application/strategic-merge-patch+json");
  CHECK(r.j["metadata"]["finalizers"] == json{"x.io/one", "x.io/two"});  // patchStrategy merge on finalizers
  r = f.patch(p, {{"metadata", {{"$deleteFromPrimitiveList/finalizers", {"x.io/one", "x.io/two"}}}}},
              "application/strategic-merge-patch+json");
  CHECK(r.j["metadata"]["finalizers"].empty());
  // A resourceVersion in a patch is a precondition.
  r = f.patch(p, {{"metadata", {{"resourceVersion", "1"}}}}, "application/merge-patch+json");
  CHECK(r.status == 409);
  CHECK(f.patch(std::string(kSecrets) + "/none", json::object(), "application/merge-patch+json").status == 404);
  r = f.patch(p, {{"data", {{"k", "not base64!"}}}}, "application/merge-patch+json");
  CHECK(r.status == 400);
}

TEST_CASE("fake_apiserver: DELETE answers a Success Status for Secrets, ConfigMaps, Ingresses, Leases",
          "[fake_apiserver]") {
  Fixture f;
  struct Case {
    std::string path;
    json body;
    std::string kind, group;
  };
  std::vector<Case> cases = {{kSecrets, secret("x"), "secrets", ""},
                             {kConfigMaps, configmap("x"), "configmaps", ""},
                             {kIngresses, ingress("x"), "ingresses", "networking.k8s.io"},
                             {kLeases, lease("x"), "leases", "coordination.k8s.io"}};
  for (const auto& c : cases) {
    auto created = f.post(c.path, c.body);
    REQUIRE(created.status == 201);
    auto r = f.del(c.path + "/x");
    CHECK(r.status == 200);
    CHECK(r.j["kind"] == "Status");
    CHECK(r.j["apiVersion"] == "v1");
    CHECK(r.j["status"] == "Success");
    CHECK(r.j["details"]["name"] == "x");
    CHECK(r.j["details"]["kind"] == c.kind);
    CHECK(r.j["details"]["uid"] == created.j["metadata"]["uid"]);
    if (!c.group.empty()) CHECK(r.j["details"]["group"] == c.group);
    CHECK(f.get(c.path + "/x").status == 404);
    CHECK(f.del(c.path + "/x").status == 404);
  }
  // Preconditions.
  auto s = f.post(kSecrets, secret("p")).j;
  auto r = f.req("DELETE", std::string(kSecrets) + "/p", R"({"preconditions":{"resourceVersion":"1"}})");
  CHECK(r.status == 409);
  CHECK(r.j["message"].get<std::string>().find("Precondition failed") != std::string::npos);
  r = f.req("DELETE", std::string(kSecrets) + "/p",
            json{{"preconditions", {{"uid", s["metadata"]["uid"]}}}}.dump());
  CHECK(r.status == 200);
  // Finalizers hold an object until they are removed.
  json fin = secret("fin");
  fin["metadata"]["finalizers"] = {"x.io/hold"};
  f.post(kSecrets, fin);
  r = f.del(std::string(kSecrets) + "/fin");
  CHECK(r.status == 200);
  CHECK(r.j["metadata"].contains("deletionTimestamp"));
  auto held = f.get(std::string(kSecrets) + "/fin");
  REQUIRE(held.status == 200);
  CHECK(f.patch(std::string(kSecrets) + "/fin", {{"metadata", {{"finalizers", nullptr}}}}, "application/merge-patch+json")
            .status == 200);
  CHECK(f.get(std::string(kSecrets) + "/fin").status == 404);
}

TEST_CASE("fake_apiserver: Secret data must be base64, stringData merges into data, tls keys required",
          "[fake_apiserver]") {
  Fixture f;
  auto r = f.post(kSecrets, secret("bad", json::object(), {{"k", "%%%"}}));
  CHECK(r.status == 400);
  CHECK(r.j["message"].get<std::string>().find("illegal base64 data") != std::string::npos);
  r = f.post(kSecrets, secret("bad2", json::object(), {{"k", "abc"}}));  // not padded
  CHECK(r.status == 400);
  json sd = secret("sd", json::object(), {{"keep", "a2VlcA=="}, {"over", "b2xk"}});
  sd["stringData"] = {{"over", "new"}, {"plain", "hello"}};
  r = f.post(kSecrets, sd);
  REQUIRE(r.status == 201);
  CHECK(!r.j.contains("stringData"));
  CHECK(r.j["data"] == json{{"keep", "a2VlcA=="}, {"over", "bmV3"}, {"plain", "aGVsbG8="}});
  json tls = secret("t", json::object(), {{"tls.crt", "Yw=="}});
  tls["type"] = "kubernetes.io/tls";
  r = f.post(kSecrets, tls);
  CHECK(r.status == 422);
  CHECK(r.j["message"] == "Secret \"t\" is invalid: data[tls.key]: Required value");
  // type is immutable.
  auto s = f.get(std::string(kSecrets) + "/sd").j;
  s["type"] = "kubernetes.io/basic-auth";
  r = f.put(std::string(kSecrets) + "/sd", s);
  CHECK(r.status == 422);
  CHECK(r.j["message"].get<std::string>().find("field is immutable") != std::string::npos);
  CHECK(f.post(kSecrets, secret("badkey", json::object(), {{"a/b", "YQ=="}})).status == 422);
}

TEST_CASE("fake_apiserver: Lease times are MicroTime - Lease update needs a resourceVersion", "[fake_apiserver]") {
  Fixture f;
  for (const char* bad : {"2024-01-01T00:00:00Z", "2024-01-01T00:00:00.12345Z", "2024-01-01T00:00:00.123456789Z",
                          "yesterday"}) {
    auto r = f.post(kLeases, lease("l", bad));
    CHECK(r.status == 400);
    CHECK(r.j["reason"] == "BadRequest");
  }
  auto ok = f.post(kLeases, lease("l", "2024-01-01T02:00:00.123456+02:00"));
  REQUIRE(ok.status == 201);
  CHECK(ok.j["spec"]["renewTime"] == "2024-01-01T00:00:00.123456Z");
  json upd = ok.j;
  upd["metadata"].erase("resourceVersion");
  upd["spec"]["holderIdentity"] = "b";
  auto r = f.put(std::string(kLeases) + "/l", upd);
  CHECK(r.status == 422);
  CHECK(r.j["message"] ==
        "Lease.coordination.k8s.io \"l\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified "
        "for an update");
  upd["metadata"]["resourceVersion"] = ok.j["metadata"]["resourceVersion"];
  CHECK(f.put(std::string(kLeases) + "/l", upd).status == 200);
  // Patches need no resourceVersion.
  CHECK(f.patch(std::string(kLeases) + "/l", {{"spec", {{"holderIdentity", "c"}}}}, "application/merge-patch+json")
            .status == 200);
  auto neg = lease("neg");
  neg["spec"]["leaseDurationSeconds"] = 0;
  CHECK(f.post(kLeases, neg).status == 422);
}

TEST_CASE("fake_apiserver: Ingress status changes only through /status", "[fake_apiserver]") {
  Fixture f;
  json ing = ingress("web");
  ing["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "1.2.3.4"}}}}}}};
  auto created = f.post(kIngresses, ing);
  REQUIRE(created.status == 201);
  CHECK(!created.j.contains("status"));  // dropped on create

  json with_status = created.j;
  with_status["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "9.9.9.9"}}}}}}};
  auto r = f.put(std::string(kIngresses) + "/web", with_status);
  CHECK(r.status == 200);
  CHECK(!r.j.contains("status"));
  CHECK(r.j["metadata"]["resourceVersion"] == created.j["metadata"]["resourceVersion"]);  // nothing changed

  json st = created.j;
  st["status"] = {{"loadBalancer", {{"ingress", {{{"ip", "10.0.0.1"}}}}}}};
  st["spec"]["rules"][0]["host"] = "changed.example.com";
  r = f.put(std::string(kIngresses) + "/web/status", st);
  REQUIRE(r.status == 200);
  CHECK(r.j["status"]["loadBalancer"]["ingress"][0]["ip"] == "10.0.0.1");
  CHECK(r.j["spec"]["rules"][0]["host"] == "a.example.com");
  CHECK(r.j["metadata"]["generation"] == 1);

  r = f.patch(std::string(kIngresses) + "/web/status", {{"status", {{"loadBalancer", {{"ingress", {{{"hostname", "lb"}}}}}}}}},
              "application/merge-patch+json");
  CHECK(r.j["status"]["loadBalancer"]["ingress"][0]["hostname"] == "lb");
  CHECK(f.get(std::string(kIngresses) + "/web/status").status == 200);
  CHECK(f.del(std::string(kIngresses) + "/web/status").status == 405);
  CHECK(f.get(std::string(kSecrets) + "/x/status").status == 404);
}

TEST_CASE("fake_apiserver: cluster-scoped kinds, namespace deletion, events in both groups", "[fake_apiserver]") {
  Fixture f;
  auto ns = f.post("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "team"}}}});
  REQUIRE(ns.status == 201);
  CHECK(ns.j["status"]["phase"] == "Active");
  REQUIRE(f.post("/api/v1/namespaces/team/configmaps", configmap("c")).status == 201);
  auto ic = f.post("/apis/networking.k8s.io/v1/ingressclasses",
                   {{"apiVersion", "networking.k8s.io/v1"}, {"kind", "IngressClass"}, {"metadata", {{"name", "nginx"}}},
                    {"spec", {{"controller", "k8s.io/ingress-nginx"}}}});
  REQUIRE(ic.status == 201);
  CHECK(!ic.j["metadata"].contains("namespace"));
  CHECK(f.get("/apis/networking.k8s.io/v1/ingressclasses/nginx").status == 200);
  json ev = {{"apiVersion", "v1"}, {"kind", "Event"}, {"metadata", {{"name", "e1"}}},
             {"involvedObject", {{"kind", "Ingress"}, {"name", "web"}}}, {"reason", "Issued"}, {"message", "ok"}};
  CHECK(f.post("/api/v1/namespaces/default/events", ev).status == 201);
  json ev2 = {{"apiVersion", "events.k8s.io/v1"}, {"kind", "Event"}, {"metadata", {{"name", "e2"}}},
              {"regarding", {{"kind", "Ingress"}, {"name", "web"}}}, {"reason", "Issued"}, {"note", "ok"},
              {"eventTime", "2024-01-01T00:00:00.000000Z"}, {"action", "Issue"}, {"reportingController", "x"},
              {"reportingInstance", "y"}, {"type", "Normal"}};
  CHECK(f.post("/apis/events.k8s.io/v1/namespaces/default/events", ev2).status == 201);
  auto d = f.del("/api/v1/namespaces/team");
  CHECK(d.status == 200);
  CHECK(d.j["kind"] == "Namespace");
  CHECK(f.get("/api/v1/namespaces/team/configmaps/c").status == 404);
  CHECK(f.get("/api/v1/namespaces/team").status == 404);
}

namespace {

std::string pb_len(int field, const std::string& bytes) {
  std::string out(1, static_cast<char>(field << 3 | 2));
  std::size_t n = bytes.size();
  do {
    unsigned char b = n & 0x7f;
    n >>= 7;
    out += static_cast<char>(n ? b | 0x80 : b);
  } while (n);
  return out + bytes;
}

std::string k8s_pb(const std::string& api_version, const std::string& kind, const std::string& raw) {
  return std::string("k8s\0", 4) + pb_len(1, pb_len(1, api_version) + pb_len(2, kind)) + pb_len(2, raw);
}

}  // namespace

TEST_CASE("fake_apiserver: protobuf bodies for Secret/ConfigMap/Namespace decode - other kinds are 415",
          "[fake_apiserver]") {
  Fixture f;
  // v1.Secret{metadata{name: "pb", labels{a: b}}, data{k: "\x00\xff"}, type: "Opaque"}
  std::string meta = pb_len(1, "pb") + pb_len(11, pb_len(1, "a") + pb_len(2, "b"));
  std::string raw = pb_len(1, meta) + pb_len(2, pb_len(1, "k") + pb_len(2, std::string("\x00\xff", 2))) + pb_len(3, "Opaque");
  auto r = f.req("POST", kSecrets, k8s_pb("v1", "Secret", raw), "application/vnd.kubernetes.protobuf");
  INFO(r.body);
  REQUIRE(r.status == 201);
  CHECK(r.j["metadata"]["name"] == "pb");
  CHECK(r.j["metadata"]["labels"]["a"] == "b");
  CHECK(r.j["data"]["k"] == "AP8=");
  std::string cm = pb_len(1, pb_len(1, "cm")) + pb_len(2, pb_len(1, "x") + pb_len(2, "y"));
  r = f.req("POST", kConfigMaps, k8s_pb("v1", "ConfigMap", cm), "application/vnd.kubernetes.protobuf");
  REQUIRE(r.status == 201);
  CHECK(r.j["data"]["x"] == "y");
  r = f.req("POST", "/api/v1/namespaces", k8s_pb("v1", "Namespace", pb_len(1, pb_len(1, "pbns"))),
            "application/vnd.kubernetes.protobuf");
  CHECK(r.status == 201);
  r = f.req("POST", kIngresses, k8s_pb("networking.k8s.io/v1", "Ingress", pb_len(1, pb_len(1, "i"))),
            "application/vnd.kubernetes.protobuf");
  CHECK(r.status == 415);
  CHECK(r.j["message"].get<std::string>().find("use kubectl create/apply -f") != std::string::npos);
  // The kind in the envelope must match the endpoint.
  r = f.req("POST", kSecrets, k8s_pb("v1", "ConfigMap", cm), "application/vnd.kubernetes.protobuf");
  CHECK(r.status == 400);
}

TEST_CASE("fake_apiserver: Event validation in both groups - ownerReferences - Secret size", "[fake_apiserver]") {
  Fixture f;
  const std::string v1 = "/api/v1/namespaces/default/events";
  const std::string ev = "/apis/events.k8s.io/v1/namespaces/default/events";
  json good = {{"apiVersion", "events.k8s.io/v1"}, {"kind", "Event"}, {"metadata", {{"name", "e"}}},
               {"regarding", {{"kind", "Ingress"}, {"name", "web"}, {"namespace", "default"}}},
               {"reason", "Issued"}, {"note", "ok"}, {"eventTime", "2024-01-01T00:00:00.000001Z"}, {"action", "Issue"},
               {"reportingController", "acme-sidecar.io/controller"}, {"reportingInstance", "pod-1"},
               {"type", "Normal"}};
  CHECK(f.post(ev, good).status == 201);
  json bad_time = good;
  bad_time["metadata"]["name"] = "t";
  bad_time["eventTime"] = "2024-01-01T00:00:00Z";
  CHECK(f.post(ev, bad_time).status == 400);
  json missing = good;
  missing["metadata"]["name"] = "m";
  missing.erase("reportingController");
  missing.erase("eventTime");
  missing["type"] = "Info";
  auto r = f.post(ev, missing);
  CHECK(r.status == 422);
  CHECK(r.j["details"]["causes"].size() == 3);
  json other_ns = good;
  other_ns["metadata"]["name"] = "o";
  other_ns["regarding"]["namespace"] = "kube-system";
  CHECK(f.post(ev, other_ns).status == 422);
  json core = {{"apiVersion", "v1"}, {"kind", "Event"}, {"metadata", {{"name", "c"}}},
               {"involvedObject", {{"kind", "Ingress"}, {"name", "web"}, {"namespace", "other"}}},
               {"reason", "Issued"}, {"message", "ok"}, {"type", "Normal"}};
  r = f.post(v1, core);
  CHECK(r.status == 422);
  CHECK(r.j["message"].get<std::string>().find("does not match event.namespace") != std::string::npos);
  core["involvedObject"]["namespace"] = "default";
  CHECK(f.post(v1, core).status == 201);
  // Events may be created by PUT (create-on-update), as the real registry allows.
  core["metadata"]["name"] = "viaput";
  CHECK(f.put(v1 + "/viaput", core).status == 201);

  json owned = secret("owned");
  owned["metadata"]["ownerReferences"] = {{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"},
                                           {"name", "web"}, {"uid", ""}}};
  r = f.post(kSecrets, owned);
  CHECK(r.status == 422);
  CHECK(r.j["details"]["causes"][0]["field"] == "metadata.ownerReferences.uid");
  owned["metadata"]["ownerReferences"][0]["uid"] = "1234";
  owned["metadata"]["ownerReferences"][0]["controller"] = true;
  CHECK(f.post(kSecrets, owned).status == 201);

  std::string big = std::string(1536 * 1024, 'A');  // 1.125 MiB once decoded
  CHECK(f.post(kSecrets, secret("huge", json::object(), {{"k", big}})).status == 422);
  CHECK(f.post(kSecrets, secret("large", json::object(), {{"k", std::string(1024 * 1024, 'A')}})).status == 201);
}

TEST_CASE("fake_apiserver: concurrent writers — patches retry internally, updates conflict, RVs stay unique",
          "[fake_apiserver]") {
  Fixture f;
  REQUIRE(f.post(kLeases, lease("l")).status == 201);
  REQUIRE(f.post(kConfigMaps, configmap("c")).status == 201);
  constexpr int kThreads = 4, kEach = 15;
  std::vector<std::thread> threads;
  std::mutex mu;
  std::vector<int> patch_status, put_status;
  std::set<std::string> rvs;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto r = f.patch(std::string(kLeases) + "/l", {{"metadata", {{"annotations", {{key, "1"}}}}}},
                         "application/merge-patch+json");
        auto cm = f.get(std::string(kConfigMaps) + "/c").j;
        cm["data"]["k"] = key;
        auto u = f.put(std::string(kConfigMaps) + "/c", cm);
        std::lock_guard lk(mu);
        patch_status.push_back(r.status);
        put_status.push_back(u.status);
        if (r.status == 200) rvs.insert(r.j["metadata"]["resourceVersion"].get<std::string>());
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int s : patch_status) CHECK(s == 200);
  for (int s : put_status) CHECK((s == 200 || s == 409));
  CHECK(rvs.size() == static_cast<std::size_t>(kThreads * kEach));  // every patch got its own resourceVersion
  auto l = f.get(std::string(kLeases) + "/l").j;
  CHECK(l["metadata"]["annotations"].size() == static_cast<std::size_t>(kThreads * kEach));  // no lost update
}

TEST_CASE("fake_apiserver: metadata-only reads (PartialObjectMetadata) for get, list and watch",
          "[fake_apiserver]") {
  Fixture f;
  REQUIRE(f.post(kSecrets, secret("a", {{"app", "x"}}, {{"tls.key", "c2VjcmV0"}})).status == 201);
  REQUIRE(f.post(kSecrets, secret("b")).status == 201);
  auto c = f.client(f.server.admin_token());
  const httplib::Headers as_list = {{"Accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}};
  const httplib::Headers as_object = {{"Accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"}};

  auto r = c->Get((std::string(kSecrets) + "?labelSelector=app%3Dx").c_str(), as_list);
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto l = json::parse(r->body);
  CHECK(l["kind"] == "PartialObjectMetadataList");
  CHECK(l["apiVersion"] == "meta.k8s.io/v1");
  CHECK_FALSE(l["metadata"]["resourceVersion"].get<std::string>().empty());
  REQUIRE(l["items"].size() == 1);  // selectors apply as usual
  CHECK(l["items"][0]["kind"] == "PartialObjectMetadata");
  CHECK(l["items"][0]["metadata"]["name"] == "a");
  CHECK(l["items"][0]["metadata"]["labels"]["app"] == "x");
  CHECK_FALSE(l["items"][0].contains("data"));  // no Secret data on the wire
  CHECK(r->body.find("c2VjcmV0") == std::string::npos);

  r = c->Get((std::string(kSecrets) + "/a").c_str(), as_object);
  REQUIRE(r);
  auto o = json::parse(r->body);
  CHECK(o["kind"] == "PartialObjectMetadata");
  CHECK_FALSE(o.contains("data"));

  // The media type must match the request, as on a real server.
  r = c->Get(kSecrets, as_object);
  REQUIRE(r);
  CHECK(r->status == 406);
  CHECK(json::parse(r->body)["reason"] == "NotAcceptable");
  r = c->Get((std::string(kSecrets) + "/a").c_str(), as_list);
  CHECK(r->status == 406);

  WatchReader w(f, std::string(kSecrets) + "?watch=true&allowWatchBookmarks=true", "", as_object);
  REQUIRE(w.wait_for_events(2));
  REQUIRE(f.del(std::string(kSecrets) + "/a").status == 200);
  REQUIRE(w.wait_for_events(3));
  auto ev = w.events();
  CHECK(ev[0]["type"] == "ADDED");
  CHECK(ev[2]["type"] == "DELETED");
  for (const auto& e : ev) {
    CHECK(e["object"]["kind"] == "PartialObjectMetadata");
    CHECK_FALSE(e["object"].contains("data"));
  }
  CHECK(ev[2]["object"]["metadata"]["name"] == "a");
}

TEST_CASE("fake_apiserver: server-side Table printing for kubectl get", "[fake_apiserver]") {
  Fixture f;
  json ing = ingress("web");
  ing["spec"]["tls"] = {{{"hosts", {"a.example.com"}}, {"secretName", "web-tls"}}};
  REQUIRE(f.post(kIngresses, ing).status == 201);
  REQUIRE(f.post(kSecrets, secret("s")).status == 201);
  auto c = f.client(f.server.admin_token());
  httplib::Headers accept = {{"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}};
  auto r = c->Get(kIngresses, accept);
  REQUIRE(r);
  auto t = json::parse(r->body);
  CHECK(t["kind"] == "Table");
  CHECK(t["apiVersion"] == "meta.k8s.io/v1");
  std::vector<std::string> cols;
  for (const auto& col : t["columnDefinitions"]) cols.push_back(col["name"]);
  CHECK(cols == std::vector<std::string>{"Name", "Class", "Hosts", "Address", "Ports", "Age"});
  REQUIRE(t["rows"].size() == 1);
  CHECK(t["rows"][0]["cells"][0] == "web");
  CHECK(t["rows"][0]["cells"][1] == "nginx");
  CHECK(t["rows"][0]["cells"][2] == "a.example.com");
  CHECK(t["rows"][0]["cells"][4] == "80, 443");
  CHECK(t["rows"][0]["object"]["kind"] == "PartialObjectMetadata");
  CHECK(t["rows"][0]["object"]["metadata"]["name"] == "web");
  r = c->Get((std::string(kSecrets) + "/s").c_str(), accept);
  t = json::parse(r->body);
  CHECK(t["kind"] == "Table");
  CHECK(t["rows"][0]["cells"][1] == "Opaque");
  // Plain JSON when Table is not asked for.
  CHECK(f.get(kSecrets).j["kind"] == "SecretList");
  CHECK(acme_sidecar::fake_apiserver::detail::human_duration(59) == "59s");
  CHECK(acme_sidecar::fake_apiserver::detail::human_duration(150) == "2m30s");
  CHECK(acme_sidecar::fake_apiserver::detail::human_duration(3 * 86400 + 7200) == "3d2h");
}

TEST_CASE("fake_apiserver: RBAC manifests as policy and SelfSubjectAccessReview", "[fake_apiserver]") {
  Options o = default_options();
  const std::string sa = "system:serviceaccount:ingress:controller";
  o.tokens = {{sa, "sa-token"}, {"carol", "carol-token"}};
  o.policy_namespace = "kube-system";
  o.policy = R"(apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules:
  - apiGroups: ["networking.k8s.io"]
    resources: ["ingresses"]
    verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}
subjects:
  - {kind: ServiceAccount, name: controller, namespace: ingress}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leases}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get", "create", "update"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leases}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leases}
subjects:
  - {kind: ServiceAccount, name: controller, namespace: ingress}
  - {kind: User, name: carol}
)";
  Fixture f(o);
  CHECK(f.req("GET", "/apis/networking.k8s.io/v1/ingresses", "", "", "sa-token").status == 200);
  CHECK(f.req("GET", "/apis/networking.k8s.io/v1/ingresses", "", "", "carol-token").status == 403);
  CHECK(f.req("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", lease("l").dump(),
              "application/json", "carol-token").status == 201);
  auto r = f.req("POST", kLeases, lease("l").dump(), "application/json", "sa-token");
  CHECK(r.status == 403);  // the RoleBinding holds in kube-system only
  CHECK(r.j["message"] ==
        "leases.coordination.k8s.io is forbidden: User \"system:serviceaccount:ingress:controller\" cannot create "
        "resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\"");

  auto review = [&](const json& attrs, const std::string& token) {
    json body = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SelfSubjectAccessReview"},
                 {"spec", {{"resourceAttributes", attrs}}}};
    auto res = f.req("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body.dump(), "application/json", token);
    REQUIRE(res.status == 201);
    return res.j["status"]["allowed"].get<bool>();
  };
  CHECK(review({{"verb", "watch"}, {"group", "networking.k8s.io"}, {"resource", "ingresses"}}, "sa-token"));
  CHECK(!review({{"verb", "delete"}, {"group", "networking.k8s.io"}, {"resource", "ingresses"}, {"namespace", "a"}}, "sa-token"));
  CHECK(review({{"verb", "update"}, {"group", "coordination.k8s.io"}, {"resource", "leases"}, {"namespace", "kube-system"}}, "carol-token"));
  CHECK(!review({{"verb", "update"}, {"group", "coordination.k8s.io"}, {"resource", "leases"}, {"namespace", "default"}}, "carol-token"));
  auto disc = f.get("/apis/authorization.k8s.io/v1");
  CHECK(disc.j["resources"][0]["name"] == "selfsubjectaccessreviews");
  // A binding to a role that does not exist is a startup error.
  Options broken = default_options();
  broken.policy = R"({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "x"},
                      "roleRef": {"kind": "ClusterRole", "name": "missing"}, "subjects": [{"kind": "User", "name": "u"}]})";
  FakeApiServer bad(broken);
  CHECK_THROWS(bad.start());
}

TEST_CASE("fake_apiserver: dryRun=All validates and answers but changes nothing", "[fake_apiserver]") {
  Fixture f;
  auto rv = f.server.resource_version();
  auto r = f.req("POST", std::string(kSecrets) + "?dryRun=All", secret("dry").dump());
  CHECK(r.status == 201);
  CHECK(r.j["metadata"]["name"] == "dry");
  CHECK(f.get(std::string(kSecrets) + "/dry").status == 404);
  CHECK(f.req("POST", std::string(kSecrets) + "?dryRun=All", secret("Bad_Name").dump()).status == 422);
  auto real = f.post(kSecrets, secret("real")).j;
  rv = f.server.resource_version();
  json changed = real;
  changed["metadata"]["labels"] = {{"a", "b"}};
  r = f.req("PUT", std::string(kSecrets) + "/real?dryRun=All", changed.dump());
  CHECK(r.status == 200);
  CHECK(r.j["metadata"]["labels"]["a"] == "b");
  CHECK(f.req("DELETE", std::string(kSecrets) + "/real?dryRun=All").j["status"] == "Success");
  CHECK(f.req("DELETE", std::string(kSecrets) + "?dryRun=All").status == 200);
  auto still = f.get(std::string(kSecrets) + "/real");
  REQUIRE(still.status == 200);
  CHECK(!still.j["metadata"]["labels"].contains("a"));
  CHECK(f.server.resource_version() == rv);
}
