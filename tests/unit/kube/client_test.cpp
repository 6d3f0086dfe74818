#include "kube/client.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fakes.hpp"

using namespace acme_sidecar;
using json = nlohmann::json;
using core::ErrorKind;
using kube::testing::FakeHttp;
using kube::testing::json_response;
using kube::testing::path_of;
using kube::testing::query_of;
using kube::testing::status_body;

namespace {
kube::KubeConfig cfg() {
  kube::KubeConfig c;
  c.server = "https://api.test:6443";
  c.token = "tok";
  return c;
}
ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}
std::string header(const http::Request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}
}  // namespace

TEST_CASE("Client builds resource paths and rejects hostile names", "[kube][client]") {
  using kube::Client;
  CHECK(Client::path(kube::resources::ingresses(), "default", "web") ==
        "/apis/networking.k8s.io/v1/namespaces/default/ingresses/web");
  CHECK(Client::path(kube::resources::secrets(), "", "") == "/api/v1/secrets");
  CHECK(Client::path(kube::resources::namespaces(), "ignored", "kube-system") == "/api/v1/namespaces/kube-system");
  for (std::string bad : std::vector<std::string>{"../x", "a/b", "a?b", "a%2fb", "..", "a b", std::string(300, 'a')}) {
    INFO(bad);
    CHECK_THROWS_AS(Client::path(kube::resources::secrets(), "default", bad), core::Error);
    CHECK_THROWS_AS(Client::path(kube::resources::secrets(), bad, "x"), core::Error);
  }
}

TEST_CASE("Client verbs send the right method, body, content type and auth", "[kube][client]") {
  FakeHttp http([](const http::Request& r, const http::ChunkHandler*) {
    return json_response(r.method == "POST" ? 201 : 200, {{"kind", "Secret"}, {"echo", r.method}});
  });
  kube::Client c(http, cfg());
  auto ref = kube::resources::secrets();
  c.get(ref, "ns", "a");
  c.create(ref, "ns", {{"metadata", {{"name", "a"}}}});
  c.update(ref, "ns", "a", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}});
  c.patch(ref, "ns", "a", {{"data", {{"k", "v"}}}});
  c.patch(ref, "ns", "a", json::array({{{"op", "remove"}, {"path", "/data/k"}}}), kube::PatchType::Json);
  c.remove(ref, "ns", "a", "7");
  auto reqs = http.requests();
  REQUIRE(reqs.size() == 6);
  for (const auto& r : reqs) {
    CHECK(header(r, "Authorization") == "Bearer tok");
    CHECK(header(r, "Accept") == "application/json");
  }
  CHECK(reqs[0].method == "GET");
  CHECK(reqs[0].url == "https://api.test:6443/api/v1/namespaces/ns/secrets/a");
  CHECK(reqs[1].method == "POST");
  CHECK(reqs[1].url == "https://api.test:6443/api/v1/namespaces/ns/secrets");
  CHECK(json::parse(reqs[1].body)["metadata"]["name"] == "a");
  CHECK(header(reqs[1], "Content-Type") == "application/json");
  CHECK(reqs[2].method == "PUT");
  CHECK(json::parse(reqs[2].body)["metadata"]["resourceVersion"] == "5");
  CHECK(header(reqs[3], "Content-Type") == "application/merge-patch+json");
  CHECK(header(reqs[4], "Content-Type") == "application/json-patch+json");
  CHECK(reqs[5].method == "DELETE");
  CHECK(json::parse(reqs[5].body)["preconditions"]["resourceVersion"] == "7");
  CHECK_THROWS_AS(c.patch(ref, "ns", "a", json::object(), kube::PatchType::Json), core::Error);
}

TEST_CASE("Client writes can skip the echoed object's data", "[kube][client]") {
  const json stored = {{"apiVersion", "v1"},
                       {"kind", "Secret"},
                       {"metadata", {{"name", "a"}, {"resourceVersion", "42"}, {"labels", {{"x", "y"}}}}},
                       {"type", "kubernetes.io/tls"},
                       {"data", {{"tls.key", "c2VjcmV0"}, {"tls.crt", "Y2VydA=="}}}};
  FakeHttp http([&](const http::Request& r, const http::ChunkHandler*) {
    return json_response(r.method == "POST" ? 201 : 200, stored);
  });
  kube::Client c(http, cfg());
  auto ref = kube::resources::secrets();
  CHECK(c.create(ref, "ns", {{"metadata", {{"name", "a"}}}}) == stored);
  for (const json& echo : {c.create(ref, "ns", {{"metadata", {{"name", "a"}}}}, kube::Client::Echo::Metadata),
                           c.update(ref, "ns", "a", stored, kube::Client::Echo::Metadata)}) {
    CHECK(echo == json{{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", stored["metadata"]}});
  }
  // Garbage is still refused, whatever is kept.
  FakeHttp garbage([](const http::Request&, const http::ChunkHandler*) {
    http::Response r;
    r.status = 201;
    r.body = R"({"metadata": {"name": "a"}, "data": {)";
    return r;
  });
  kube::Client g(garbage, cfg());
  CHECK(kind_of([&] { g.create(ref, "ns", json::object(), kube::Client::Echo::Metadata); }) == ErrorKind::Parse);
}

TEST_CASE("Client lists with selectors and follows continue tokens", "[kube][client]") {
  FakeHttp http([](const http::Request& r, const http::ChunkHandler*) {
    auto q = query_of(r.url);
    if (q["continue"].empty()) {
      return json_response(200, {{"kind", "SecretList"},
                                 {"metadata", {{"resourceVersion", "100"}, {"continue", "page2"}}},
                                 {"items", json::array({{{"metadata", {{"name", "a"}}}}})}});
    }
    return json_response(200, {{"kind", "SecretList"},
                               {"metadata", {{"resourceVersion", "100"}}},
                               {"items", json::array({{{"metadata", {{"name", "b"}}}}})}});
  });
  kube::Client c(http, cfg());
  kube::ListOptions lo;
  lo.label_selector = "app.kubernetes.io/managed-by=acme-sidecar";
  lo.field_selector = "type=kubernetes.io/tls";
  lo.limit = 1;
  auto all = c.list_all(kube::resources::secrets(), "", lo);
  REQUIRE(all["items"].size() == 2);
  CHECK(all["items"][1]["metadata"]["name"] == "b");
  CHECK(all["metadata"]["resourceVersion"] == "100");
  CHECK_FALSE(all["metadata"].contains("continue"));
  auto reqs = http.requests();
  REQUIRE(reqs.size() == 2);
  auto q = query_of(reqs[0].url);
  CHECK(path_of(reqs[0].url) == "/api/v1/secrets");
  CHECK(q["labelSelector"] == "app.kubernetes.io%2Fmanaged-by%3Dacme-sidecar");
  CHECK(q["fieldSelector"] == "type%3Dkubernetes.io%2Ftls");
  CHECK(q["limit"] == "1");
  CHECK(query_of(reqs[1].url)["continue"] == "page2");
}

TEST_CASE("Client asks for metadata only when told, and deletes collections only with a selector", "[kube][client]") {
  FakeHttp http([](const http::Request& r, const http::ChunkHandler* on_chunk) {
    if (on_chunk != nullptr) {
      (*on_chunk)(R"({"type":"ADDED","object":{"kind":"PartialObjectMetadata","metadata":{"name":"a"}}})"
                  "\n");
      return json_response(200, json::object());
    }
    if (r.method == "DELETE")
      return json_response(200, {{"kind", "SecretList"}, {"metadata", json::object()},
                                 {"items", json::array({{{"metadata", {{"name", "x"}}}, {"data", {{"k", "c2VjcmV0"}}}}})}});
    return json_response(200, {{"kind", "PartialObjectMetadataList"}, {"metadata", {{"resourceVersion", "1"}}},
                               {"items", json::array()}});
  });
  kube::Client c(http, cfg());
  auto ref = kube::resources::secrets();
  kube::ListOptions lo;
  c.list(ref, "ns", lo);
  lo.representation = kube::Representation::MetadataOnly;
  c.list(ref, "ns", lo);
  kube::WatchOptions wo;
  wo.representation = kube::Representation::MetadataOnly;
  c.watch(ref, "ns", wo, [](kube::WatchEventType, const json& o) { return o["kind"] != "PartialObjectMetadata"; });
  auto reqs = http.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(header(reqs[0], "Accept") == "application/json");
  CHECK(header(reqs[1], "Accept") == "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1");
  CHECK(header(reqs[2], "Accept") == "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1");

  CHECK(kind_of([&] { c.remove_collection(ref, "ns", {}); }) == ErrorKind::Invalid);  // never "delete all"
  CHECK(http.requests().size() == 3);
  kube::ListOptions sel;
  sel.label_selector = "a in (x,y)";
  sel.field_selector = "metadata.name=x";
  c.remove_collection(ref, "ns", sel);
  auto del = http.requests().back();
  CHECK(del.method == "DELETE");
  CHECK(path_of(del.url) == "/api/v1/namespaces/ns/secrets");
  CHECK(query_of(del.url)["labelSelector"] == "a%20in%20%28x%2Cy%29");
  CHECK(query_of(del.url)["fieldSelector"] == "metadata.name%3Dx");
}

TEST_CASE("Client turns Status responses into error kinds and reports each request", "[kube][client]") {
  int code = 404;
  FakeHttp http([&](const http::Request&, const http::ChunkHandler*) {
    return json_response(code, status_body(code, code == 409 ? "AlreadyExists" : "X"));
  });
  kube::Client c(http, cfg());
  std::vector<std::tuple<std::string, std::string, int>> seen;
  c.set_observer([&](std::string_view verb, std::string_view res, int status) {
    seen.emplace_back(std::string(verb), std::string(res), status);
  });
  auto ref = kube::resources::secrets();
  CHECK(kind_of([&] { c.get(ref, "ns", "a"); }) == ErrorKind::NotFound);
  code = 409;
  CHECK(kind_of([&] { c.create(ref, "ns", json::object()); }) == ErrorKind::AlreadyExists);
  code = 403;
  CHECK(kind_of([&] { c.list(ref, "ns"); }) == ErrorKind::Forbidden);
  http.set_handler([](const http::Request&, const http::ChunkHandler*) -> http::Response {
    throw core::Error(ErrorKind::Transport, "refused");
  });
  CHECK(kind_of([&] { c.get(ref, "ns", "a"); }) == ErrorKind::Transport);
  http.set_handler([](const http::Request&, const http::ChunkHandler*) {
    http::Response r;
    r.status = 200;
    r.body = "not json";
    return r;
  });
  CHECK(kind_of([&] { c.get(ref, "ns", "a"); }) == ErrorKind::Parse);
  CHECK(kind_of([&] { c.list(ref, "ns"); }) == ErrorKind::Parse);
  REQUIRE(seen.size() == 6);
  CHECK(seen[0] == std::tuple<std::string, std::string, int>{"get", "secrets", 404});
  CHECK(seen[1] == std::tuple<std::string, std::string, int>{"create", "secrets", 409});
  CHECK(seen[2] == std::tuple<std::string, std::string, int>{"list", "secrets", 403});
  CHECK(seen[3] == std::tuple<std::string, std::string, int>{"get", "secrets", 0});
}

TEST_CASE("Client watch streams typed events and decodes ERROR events", "[kube][client]") {
  std::string body;
  long status = 200;
  FakeHttp http([&](const http::Request&, const http::ChunkHandler* on_chunk) {
    http::Response r;
    r.status = status;
    if (status != 200) {
      r.body = body;
      return r;
    }
    // Deliver in awkward 7-byte chunks.
    for (size_t i = 0; i < body.size(); i += 7) {
      if (!(*on_chunk)(std::string_view(body).substr(i, 7))) break;
    }
    return r;
  });
  kube::Client c(http, cfg());
  auto ref = kube::resources::ingresses();
  body = json{{"type", "ADDED"}, {"object", {{"metadata", {{"name", "a"}, {"resourceVersion", "5"}}}}}}.dump() +
         "\n" + json{{"type", "BOOKMARK"}, {"object", {{"metadata", {{"resourceVersion", "9"}}}}}}.dump() + "\n";
  std::vector<std::pair<kube::WatchEventType, std::string>> got;
  kube::WatchOptions wo;
  wo.resource_version = "4";
  wo.label_selector = "a=b";
  wo.timeout_seconds = 321;
  c.watch(ref, "default", wo, [&](kube::WatchEventType t, const json& o) {
    got.emplace_back(t, o["metadata"]["resourceVersion"].get<std::string>());
    return true;
  });
  REQUIRE(got.size() == 2);
  CHECK(got[0] == std::pair{kube::WatchEventType::Added, std::string("5")});
  CHECK(got[1] == std::pair{kube::WatchEventType::Bookmark, std::string("9")});
  auto req = http.requests().back();
  auto q = query_of(req.url);
  CHECK(path_of(req.url) == "/apis/networking.k8s.io/v1/namespaces/default/ingresses");
  CHECK(q["watch"] == "1");
  CHECK(q["allowWatchBookmarks"] == "true");
  CHECK(q["resourceVersion"] == "4");
  CHECK(q["timeoutSeconds"] == "321");
  CHECK(q["labelSelector"] == "a%3Db");
  CHECK(req.idle_timeout.has_value());

  body = json{{"type", "ERROR"}, {"object", status_body(410, "Expired", "too old resource version")}}.dump() + "\n";
  CHECK(kind_of([&] { c.watch(ref, "", wo, [](auto, const json&) { return true; }); }) == ErrorKind::Gone);

  body = "this is not json\n";
  CHECK(kind_of([&] { c.watch(ref, "", wo, [](auto, const json&) { return true; }); }) == ErrorKind::Parse);

  status = 410;
  body = status_body(410, "Expired").dump();
  CHECK(kind_of([&] { c.watch(ref, "", wo, [](auto, const json&) { return true; }); }) == ErrorKind::Gone);
  status = 500;
  body = "oops";
  CHECK(kind_of([&] { c.watch(ref, "", wo, [](auto, const json&) { return true; }); }) == ErrorKind::ServerError);
}
