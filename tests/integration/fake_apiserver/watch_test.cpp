#include <thread>
// Wire-level tests of watch semantics: initial ADDED, resume from RV, 410, bookmarks, timeouts,
// DELETED state, selector transitions, slow watchers.
#include <catch2/catch.hpp>

#include "wire.hpp"

using namespace fa_test;

namespace {

std::vector<std::string> types_of(const std::vector<json>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e["type"]);
  return out;
}

std::string rv_of(const json& o) { return o["metadata"]["resourceVersion"]; }

}  // namespace

TEST_CASE("fake_apiserver watch: initial ADDED without resourceVersion (and with 0), then live events",
          "[fake_apiserver][watch]") {
  Fixture f;
  f.post(kSecrets, secret("a"));
  f.post(kSecrets, secret("b"));
  for (const std::string q : {"?watch=true", "?watch=1&resourceVersion=0"}) {
    WatchReader w(f, std::string(kSecrets) + q);
    REQUIRE(w.wait_for_events(2));
    auto ev = w.events();
    CHECK(types_of(ev) == std::vector<std::string>{"ADDED", "ADDED"});
    CHECK(ev[0]["object"]["kind"] == "Secret");  // watch objects carry kind/apiVersion
    CHECK(ev[0]["object"]["apiVersion"] == "v1");
  }
  WatchReader w(f, std::string(kSecrets) + "?watch=true");
  REQUIRE(w.wait_for_events(2));
  f.post(kSecrets, secret("c"));
  REQUIRE(w.wait_for_events(3));
  CHECK(w.events()[2]["type"] == "ADDED");
  CHECK(w.events()[2]["object"]["metadata"]["name"] == "c");
  // Legacy /watch/ path prefix works too.
  WatchReader legacy(f, "/api/v1/watch/namespaces/default/secrets");
  CHECK(legacy.wait_for_events(3));
}

TEST_CASE("fake_apiserver watch: from a resourceVersion only later events arrive", "[fake_apiserver][watch]") {
  Fixture f;
  f.post(kSecrets, secret("a"));
  auto list = f.get(kSecrets);
  std::string rv = list.j["metadata"]["resourceVersion"];
  auto b = f.post(kSecrets, secret("b"));
  json a = f.get(std::string(kSecrets) + "/a").j;
  a["metadata"]["labels"] = {{"x", "1"}};
  auto a2 = f.put(std::string(kSecrets) + "/a", a);
  WatchReader w(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + rv);
  REQUIRE(w.wait_for_events(2));
  auto ev = w.events();
  CHECK(types_of(ev) == std::vector<std::string>{"ADDED", "MODIFIED"});
  CHECK(ev[0]["object"]["metadata"]["name"] == "b");
  CHECK(rv_of(ev[0]["object"]) == rv_of(b.j));
  CHECK(rv_of(ev[1]["object"]) == rv_of(a2.j));
  // Events in other namespaces are not delivered to a namespaced watch; all-namespace watches see them.
  WatchReader all(f, "/api/v1/secrets?watch=true&resourceVersion=" + rv);
  f.post("/api/v1/namespaces", {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "o"}}}});
  f.post("/api/v1/namespaces/o/secrets", secret("z"));
  REQUIRE(all.wait_for_events(3));
  f.post(kSecrets, secret("last"));
  REQUIRE(w.wait_for_events(3));
  CHECK(w.events()[2]["object"]["metadata"]["name"] == "last");
}

TEST_CASE("fake_apiserver watch: a resourceVersion older than the window is 410 Expired", "[fake_apiserver][watch]") {
  Options o = default_options();
  o.watch_window = 3;
  Fixture f(o);
  auto first = f.post(kSecrets, secret("s0"));
  for (int i = 1; i < 6; ++i) f.post(kSecrets, secret("s" + std::to_string(i)));
  WatchReader w(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + rv_of(first.j));
  REQUIRE(w.wait_for_events(1));
  REQUIRE(w.wait_for_end());
  auto ev = w.events();
  REQUIRE(ev.size() == 1);
  CHECK(w.status() == 200);
  CHECK(ev[0]["type"] == "ERROR");
  CHECK(ev[0]["object"]["kind"] == "Status");
  CHECK(ev[0]["object"]["code"] == 410);
  CHECK(ev[0]["object"]["reason"] == "Expired");
  CHECK(ev[0]["object"]["message"].get<std::string>().rfind("too old resource version: ", 0) == 0);
  // A recent RV inside the window still resumes.
  auto l = f.get(kSecrets);
  WatchReader ok(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + l.j["metadata"]["resourceVersion"].get<std::string>());
  REQUIRE(wait_watches(f, 1));
  f.post(kSecrets, secret("fresh"));
  REQUIRE(ok.wait_for_events(1));
  CHECK(ok.events()[0]["type"] == "ADDED");
  CHECK(f.get(std::string(kSecrets) + "?watch=true&resourceVersion=abc").status == 400);
}

TEST_CASE("fake_apiserver watch: BOOKMARK events only when allowed, at the configured interval",
          "[fake_apiserver][watch]") {
  Options o = default_options();
  o.bookmark_interval = std::chrono::milliseconds(100);
  Fixture f(o);
  f.post(kSecrets, secret("a"));
  std::string rv = f.get(kSecrets).j["metadata"]["resourceVersion"];
  WatchReader with(f, std::string(kSecrets) + "?watch=true&allowWatchBookmarks=true&resourceVersion=" + rv);
  WatchReader without(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + rv);
  REQUIRE(with.wait_for_events(2));
  for (const auto& e : with.events()) {
    CHECK(e["type"] == "BOOKMARK");
    CHECK(e["object"]["kind"] == "Secret");
    CHECK(e["object"]["apiVersion"] == "v1");
    CHECK(e["object"]["metadata"]["resourceVersion"] == rv);
  }
  f.post(kSecrets, secret("b"));
  REQUIRE(without.wait_for_events(1));
  for (const auto& e : without.events()) CHECK(e["type"] != "BOOKMARK");
  // Bookmarks follow the global resourceVersion.
  auto after = f.server.resource_version();
  REQUIRE(acme_sidecar::testing::poll_until(
      [&] {
        auto ev = with.events();
        return ev.back()["type"] == "BOOKMARK" && ev.back()["object"]["metadata"]["resourceVersion"] == std::to_string(after);
      },
      std::chrono::seconds(10)));
  // sendInitialEvents ends the initial list with an annotated bookmark.
  WatchReader wl(f, std::string(kSecrets) + "?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan");
  REQUIRE(wl.wait_for_events(3));
  auto ev = wl.events();
  CHECK(ev[2]["type"] == "BOOKMARK");
  CHECK(ev[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true");
}

TEST_CASE("fake_apiserver watch: timeoutSeconds ends the stream cleanly", "[fake_apiserver][watch]") {
  Fixture f;
  WatchReader w(f, std::string(kSecrets) + "?watch=true&timeoutSeconds=1");
  REQUIRE(w.wait_for_end(std::chrono::seconds(15)));
  CHECK(w.status() == 200);
  // The server forgets the watcher just after the client sees the end of the stream: poll, bounded.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (f.server.open_watches() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(f.server.open_watches() == 0);
}

TEST_CASE("fake_apiserver watch: DELETED carries the last state", "[fake_apiserver][watch]") {
  Fixture f;
  auto s = f.post(kSecrets, secret("gone", {{"app", "x"}})).j;
  WatchReader w(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + rv_of(s));
  REQUIRE(wait_watches(f, 1));
  f.patch(std::string(kSecrets) + "/gone", {{"metadata", {{"annotations", {{"last", "state"}}}}}},
          "application/merge-patch+json");
  f.del(std::string(kSecrets) + "/gone");
  REQUIRE(w.wait_for_events(2));
  auto ev = w.events();
  CHECK(types_of(ev) == std::vector<std::string>{"MODIFIED", "DELETED"});
  CHECK(ev[1]["object"]["metadata"]["annotations"]["last"] == "state");
  CHECK(ev[1]["object"]["metadata"]["labels"]["app"] == "x");
  CHECK(std::stoull(rv_of(ev[1]["object"])) > std::stoull(rv_of(ev[0]["object"])));
}

TEST_CASE("fake_apiserver watch: an update that changes nothing makes no event", "[fake_apiserver][watch]") {
  Fixture f;
  auto s = f.post(kSecrets, secret("same")).j;
  WatchReader w(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + rv_of(s));
  REQUIRE(wait_watches(f, 1));
  CHECK(f.put(std::string(kSecrets) + "/same", s).status == 200);
  CHECK(f.patch(std::string(kSecrets) + "/same", {{"data", {{"k", "dg=="}}}}, "application/merge-patch+json").status == 200);
  f.post(kSecrets, secret("marker"));
  REQUIRE(w.wait_for_events(1));
  auto ev = w.events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0]["object"]["metadata"]["name"] == "marker");  // the no-op updates produced nothing before it
}

TEST_CASE("fake_apiserver watch: label selector transitions are ADDED/DELETED - field selectors filter",
          "[fake_apiserver][watch]") {
  Fixture f;
  auto s = f.post(kSecrets, secret("t", {{"app", "web"}})).j;
  WatchReader w(f, std::string(kSecrets) + "?watch=true&labelSelector=app%3Dweb&resourceVersion=" + rv_of(s));
  WatchReader byname(f, std::string(kSecrets) + "?watch=true&fieldSelector=metadata.name%3Dother&resourceVersion=" + rv_of(s));
  REQUIRE(wait_watches(f, 2));
  std::string p = std::string(kSecrets) + "/t";
  auto off = f.patch(p, {{"metadata", {{"labels", {{"app", "db"}}}}}}, "application/merge-patch+json").j;
  f.patch(p, {{"metadata", {{"annotations", {{"while", "unmatched"}}}}}}, "application/merge-patch+json");
  auto on = f.patch(p, {{"metadata", {{"labels", {{"app", "web"}}}}}}, "application/merge-patch+json").j;
  f.patch(p, {{"metadata", {{"annotations", {{"still", "matching"}}}}}}, "application/merge-patch+json");
  f.post(kSecrets, secret("other"));
  REQUIRE(w.wait_for_events(3));
  auto ev = w.events();
  CHECK(types_of(ev) == std::vector<std::string>{"DELETED", "ADDED", "MODIFIED"});
  CHECK(ev[0]["object"]["metadata"]["labels"]["app"] == "web");  // the state that matched
  CHECK(rv_of(ev[0]["object"]) == rv_of(off));
  CHECK(rv_of(ev[1]["object"]) == rv_of(on));
  REQUIRE(byname.wait_for_events(1));
  CHECK(byname.events().size() == 1);
  CHECK(byname.events()[0]["object"]["metadata"]["name"] == "other");
  CHECK(f.get(std::string(kSecrets) + "?watch=true&fieldSelector=data.k%3Dx").status == 400);
}

TEST_CASE("fake_apiserver watch: a watcher that reads too slowly gets its stream closed", "[fake_apiserver][watch]") {
  Options o = default_options();
  o.watch_queue_limit = 5;
  Fixture f(o);
  auto s = f.post(kConfigMaps, configmap("first")).j;
  WatchReader w(f, std::string(kConfigMaps) + "?watch=true&resourceVersion=" + rv_of(s));
  REQUIRE(wait_watches(f, 1));
  w.block_reading(true);  // the client stops reading after its first chunk
  f.post(kConfigMaps, configmap("c0"));
  REQUIRE(acme_sidecar::testing::poll_until([&] { return f.server.open_watches() == 1; }, std::chrono::seconds(5)));
  // Big objects fill the socket buffers, then the server-side queue overflows.
  json big = configmap("x");
  big["data"] = {{"blob", std::string(256 * 1024, 'x')}};
  const int total = 60;
  for (int i = 1; i <= total; ++i) {
    big["metadata"]["name"] = "c" + std::to_string(i);
    REQUIRE(f.post(kConfigMaps, big).status == 201);
  }
  w.block_reading(false);
  REQUIRE(w.wait_for_end(std::chrono::seconds(30)));
  CHECK(w.events().size() < static_cast<std::size_t>(total + 1));
  CHECK(f.server.open_watches() == 0);
}

TEST_CASE("fake_apiserver watch: watching one named object sees only that object", "[fake_apiserver][watch]") {
  Fixture f;
  auto s = f.post(kSecrets, secret("one")).j;
  f.post(kSecrets, secret("two"));
  WatchReader w(f, std::string(kSecrets) + "/one?watch=true");
  WatchReader legacy(f, "/api/v1/watch/namespaces/default/secrets/one");
  REQUIRE(w.wait_for_events(1));
  REQUIRE(legacy.wait_for_events(1));
  f.patch(std::string(kSecrets) + "/two", {{"metadata", {{"labels", {{"x", "1"}}}}}}, "application/merge-patch+json");
  f.patch(std::string(kSecrets) + "/one", {{"metadata", {{"labels", {{"x", "1"}}}}}}, "application/merge-patch+json");
  REQUIRE(w.wait_for_events(2));
  REQUIRE(legacy.wait_for_events(2));
  for (const auto& e : w.events()) CHECK(e["object"]["metadata"]["name"] == "one");
  for (const auto& e : legacy.events()) CHECK(e["object"]["metadata"]["name"] == "one");
}
