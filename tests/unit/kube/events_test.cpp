#include "kube/events.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "fakes.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using json = nlohmann::json;
using kube::testing::FakeHttp;
using kube::testing::json_response;
using kube::testing::path_of;
using kube::testing::status_body;

namespace {
kube::KubeConfig cfg() {
  kube::KubeConfig c;
  c.server = "https://api.test";
  return c;
}
kube::ObjectReference ingress(const std::string& name = "web") {
  return {"networking.k8s.io/v1", "Ingress", "shop", name, "uid-" + name, "42"};
}
struct Fixture {
  int patch_status = 200;
  int create_status = 201;
  FakeHttp http{[this](const http::Request& r, const http::ChunkHandler*) {
    if (r.method == "PATCH") return json_response(patch_status, patch_status == 200 ? json::object() : status_body(patch_status, "X"));
    return json_response(create_status, create_status == 201 ? json::parse(r.body) : status_body(create_status, "X"));
  }};
  kube::Client client{http, cfg()};
  core::ManualClock clock;
  std::vector<std::string> logs;
  kube::EventRecorderOptions options() {
    kube::EventRecorderOptions o;
    o.host = "pod-a";
    return o;
  }
  core::Logger logger() {
    return core::Logger([this](std::string_view l) { logs.emplace_back(l); }, core::LogLevel::Debug);
  }
  std::vector<http::Request> of(const std::string& method) {
    std::vector<http::Request> out;
    for (auto& r : http.requests()) {
      if (r.method == method) out.push_back(r);
    }
    return out;
  }
};
}  // namespace

TEST_CASE("Event carries the involved object, source and timestamps", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  rec.record(ingress(), kube::EventType::Warning, "WildcardNotSupported", "*.example.com cannot use \"http-01\"\n");
  auto posts = f.of("POST");
  REQUIRE(posts.size() == 1);
  CHECK(path_of(posts[0].url) == "/api/v1/namespaces/shop/events");
  auto e = json::parse(posts[0].body);
  CHECK(e["kind"] == "Event");
  CHECK(e["apiVersion"] == "v1");
  CHECK(e["message"] == "*.example.com cannot use \"http-01\"\n");
  CHECK(e["reportingComponent"] == "acme-sidecar");
  CHECK(e["reportingInstance"] == "pod-a");
  CHECK(e["involvedObject"] ==
        json{{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"namespace", "shop"}, {"name", "web"},
             {"uid", "uid-web"}, {"resourceVersion", "42"}});
  CHECK(e["reason"] == "WildcardNotSupported");
  CHECK(e["type"] == "Warning");
  CHECK(e["source"] == json{{"component", "acme-sidecar"}, {"host", "pod-a"}});
  CHECK(e["count"] == 1);
  CHECK(e["firstTimestamp"] == "2023-11-14T22:13:20Z");
  CHECK(e["lastTimestamp"] == e["firstTimestamp"]);
  CHECK(e["metadata"]["namespace"] == "shop");
  CHECK(e["metadata"]["name"].get<std::string>().starts_with("web."));
}

TEST_CASE("Repeated events within the window patch the count instead of creating", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  for (int i = 0; i < 3; ++i) {
    rec.record(ingress(), kube::EventType::Warning, "IssuanceFailed", "rate limited");
    f.clock.advance(1min);
  }
  REQUIRE(f.of("POST").size() == 1);
  auto patches = f.of("PATCH");
  REQUIRE(patches.size() == 2);
  auto name = json::parse(f.of("POST")[0].body)["metadata"]["name"].get<std::string>();
  CHECK(path_of(patches[0].url) == "/api/v1/namespaces/shop/events/" + name);
  CHECK(json::parse(patches[0].body)["count"] == 2);
  CHECK(json::parse(patches[1].body)["count"] == 3);
  CHECK(json::parse(patches[1].body)["lastTimestamp"] == "2023-11-14T22:15:20Z");

  // A different message, reason or object is a different event.
  rec.record(ingress(), kube::EventType::Warning, "IssuanceFailed", "other message");
  rec.record(ingress("shop2"), kube::EventType::Warning, "IssuanceFailed", "rate limited");
  CHECK(f.of("POST").size() == 3);
  // After the window a new Event starts over.
  f.clock.advance(11min);
  rec.record(ingress(), kube::EventType::Warning, "IssuanceFailed", "rate limited");
  CHECK(f.of("POST").size() == 4);
  CHECK(rec.stats().patched == 2);
}

TEST_CASE("Events are rate limited per object", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  for (int i = 0; i < 40; ++i) {
    rec.record(ingress(), kube::EventType::Warning, "Failed", "attempt " + std::to_string(i));
  }
  CHECK(f.of("POST").size() == 25);
  CHECK(rec.stats().dropped == 15);
  // Another object has its own budget.
  rec.record(ingress("other"), kube::EventType::Normal, "Issued", "ok");
  CHECK(f.of("POST").size() == 26);
  // One more token every refill interval.
  f.clock.advance(5min);
  rec.record(ingress(), kube::EventType::Warning, "Failed", "after refill");
  rec.record(ingress(), kube::EventType::Warning, "Failed", "too soon");
  CHECK(f.of("POST").size() == 27);
}

TEST_CASE("Event failures are logged, never thrown", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  f.create_status = 403;
  CHECK_NOTHROW(rec.record(ingress(), kube::EventType::Normal, "Issued", "ok"));
  CHECK(rec.stats().failed == 1);
  CHECK_FALSE(f.logs.empty());
  f.http.set_handler([](const http::Request&, const http::ChunkHandler*) -> http::Response {
    throw core::Error(core::ErrorKind::Transport, "down");
  });
  CHECK_NOTHROW(rec.record(ingress(), kube::EventType::Normal, "Issued", "ok"));
  // Hostile input: names that cannot form a path, huge messages.
  kube::ObjectReference bad = ingress("../../etc");
  CHECK_NOTHROW(rec.record(bad, kube::EventType::Normal, "X", std::string(100000, 'm')));
}

TEST_CASE("A patched Event that expired server-side is created again", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  rec.record(ingress(), kube::EventType::Warning, "Failed", "same");
  f.patch_status = 404;
  rec.record(ingress(), kube::EventType::Warning, "Failed", "same");
  CHECK(f.of("POST").size() == 2);
  CHECK(f.of("PATCH").size() == 1);
  f.patch_status = 200;
  rec.record(ingress(), kube::EventType::Warning, "Failed", "same");
  CHECK(f.of("PATCH").size() == 2);
  CHECK(json::parse(f.of("PATCH")[1].body)["count"] == 2);
}

TEST_CASE("Long messages are truncated on a UTF-8 boundary", "[kube][events]") {
  Fixture f;
  kube::EventRecorder rec(f.client, f.clock, f.logger(), f.options());
  std::string msg;
  for (int i = 0; i < 600; ++i) msg += "\xc3\xa9";  // é × 600 = 1200 bytes
  rec.record(ingress(), kube::EventType::Normal, "Long", msg);
  auto e = json::parse(f.of("POST").at(0).body);
  auto m = e["message"].get<std::string>();
  CHECK(m.size() <= 1024);
  CHECK(m.size() % 2 == 0);
}

TEST_CASE("Object references come from API objects, tolerating junk", "[kube][events]") {
  auto r = kube::reference_to(json{{"apiVersion", "networking.k8s.io/v1"},
                                   {"kind", "Ingress"},
                                   {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"uid", "u1"}, {"resourceVersion", "9"}}}});
  CHECK(r.api_version == "networking.k8s.io/v1");
  CHECK(r.kind == "Ingress");
  CHECK(r.namespace_name == "shop");
  CHECK(r.name == "web");
  CHECK(r.uid == "u1");
  CHECK(r.resource_version == "9");
  CHECK(kube::reference_to(json::array()).name.empty());
  CHECK(kube::reference_to(json{{"metadata", {{"name", 5}}}}).name.empty());
}
