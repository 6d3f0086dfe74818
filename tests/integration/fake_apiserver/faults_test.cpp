// Wire-level tests of the fault-control port (plain HTTP on loopback) and the request log.
#include <catch2/catch.hpp>

#include "wire.hpp"

using namespace fa_test;

TEST_CASE("fake_apiserver faults: drop every open watch", "[fake_apiserver][faults]") {
  Fixture f;
  WatchReader a(f, std::string(kSecrets) + "?watch=true");
  WatchReader b(f, std::string(kIngresses) + "?watch=true");
  REQUIRE(wait_watches(f, 2));
  CHECK(f.control("POST", "/faults/drop-watches").status == 200);
  CHECK(a.wait_for_end());
  CHECK(b.wait_for_end());
  CHECK(acme_sidecar::testing::poll_until([&] { return f.server.open_watches() == 0; }, std::chrono::seconds(10)));
}

TEST_CASE("fake_apiserver faults: next N matching requests fail with 500/503/429 + Retry-After",
          "[fake_apiserver][faults]") {
  Fixture f;
  REQUIRE(f.control("POST", "/faults/fail",
                    {{"method", "GET"}, {"path", "/secrets$"}, {"count", 2}, {"status", 429}, {"retry_after", 7}})
              .status == 200);
  CHECK(f.get(kConfigMaps).status == 200);  // other paths untouched
  auto r = f.get(kSecrets);
  CHECK(r.status == 429);
  CHECK(r.header("Retry-After") == "7");
  CHECK(r.j["reason"] == "TooManyRequests");
  CHECK(r.j["details"]["retryAfterSeconds"] == 7);
  CHECK(f.post(kSecrets, secret("x")).status == 201);  // method does not match
  CHECK(f.get(kSecrets).status == 429);
  CHECK(f.get(kSecrets).status == 200);  // count used up

  f.control("POST", "/faults/fail", {{"status", 503}});
  r = f.get(kSecrets);
  CHECK(r.status == 503);
  CHECK(r.j["reason"] == "ServiceUnavailable");
  f.control("POST", "/faults/fail", {{"status", 500}});
  r = f.get("/api/v1");
  CHECK(r.status == 500);
  CHECK(r.j["reason"] == "InternalError");
  CHECK(f.get(kSecrets).status == 200);
  // Bad regexes are refused.
  CHECK(f.control("POST", "/faults/fail", {{"path", "("}}).status == 400);
  CHECK(f.control("POST", "/faults/nope").status == 404);
}

TEST_CASE("fake_apiserver faults: added latency delays matching requests", "[fake_apiserver][faults]") {
  Fixture f;
  f.control("POST", "/faults/latency", {{"ms", 300}, {"path", "/configmaps"}});
  auto t0 = std::chrono::steady_clock::now();
  CHECK(f.get(kConfigMaps).status == 200);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
  f.control("POST", "/faults/latency", {{"ms", 0}});
  CHECK(f.get(kConfigMaps).status == 200);
}

TEST_CASE("fake_apiserver faults: force the next watch to start with 410", "[fake_apiserver][faults]") {
  Fixture f;
  f.post(kSecrets, secret("a"));
  f.control("POST", "/faults/expire-next-watch", {{"count", 1}});
  {
    WatchReader w(f, std::string(kSecrets) + "?watch=true");
    REQUIRE(w.wait_for_end());
    auto ev = w.events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0]["type"] == "ERROR");
    CHECK(ev[0]["object"]["code"] == 410);
    CHECK(ev[0]["object"]["reason"] == "Expired");
  }
  WatchReader w(f, std::string(kSecrets) + "?watch=true");
  REQUIRE(w.wait_for_events(1));
  CHECK(w.events()[0]["type"] == "ADDED");
}

TEST_CASE("fake_apiserver faults: forced Conflicts on the next N updates, every k-th", "[fake_apiserver][faults]") {
  Fixture f;
  json s = f.post(kSecrets, secret("s")).j;
  s.erase("metadata");
  s["metadata"] = {{"name", "s"}};
  f.control("POST", "/faults/conflicts", {{"count", 2}, {"every", 2}});
  std::vector<int> statuses;
  for (int i = 0; i < 6; ++i) {
    s["data"] = {{"k", i % 2 ? "YQ==" : "Yg=="}};
    statuses.push_back(f.put(std::string(kSecrets) + "/s", s).status);
  }
  CHECK(statuses == std::vector<int>{200, 409, 200, 409, 200, 200});
}

TEST_CASE("fake_apiserver faults: reset wipes the store - resourceVersion continues or restarts",
          "[fake_apiserver][faults]") {
  Fixture f;
  f.post(kSecrets, secret("a"));
  auto before = f.server.resource_version();
  WatchReader w(f, std::string(kSecrets) + "?watch=true");
  REQUIRE(w.wait_for_events(1));
  CHECK(f.control("POST", "/reset").status == 200);
  CHECK(w.wait_for_end());  // a restart drops watches
  CHECK(f.get(std::string(kSecrets) + "/a").status == 404);
  CHECK(f.get("/api/v1/namespaces/default").status == 200);
  CHECK(f.server.resource_version() > before);
  // Resuming from a pre-restart RV is Expired.
  WatchReader old(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + std::to_string(before));
  REQUIRE(old.wait_for_end());
  REQUIRE(old.events().size() == 1);
  CHECK(old.events()[0]["object"]["code"] == 410);

  f.control("POST", "/reset", {{"restart_resource_version", true}});
  CHECK(f.server.resource_version() < before);
  WatchReader future(f, std::string(kSecrets) + "?watch=true&resourceVersion=" + std::to_string(before));
  REQUIRE(future.wait_for_end());
  CHECK(future.events()[0]["object"]["code"] == 410);
}

TEST_CASE("fake_apiserver faults: request log records method, path, query, user, status, time",
          "[fake_apiserver][faults]") {
  Options o = default_options();
  o.tokens = {{"sidecar", "sidecar-token"}};
  Fixture f(o);
  f.control("DELETE", "/requests");
  f.req("GET", std::string(kSecrets) + "?labelSelector=a%3Db", "", "", "sidecar-token");
  f.req("GET", kSecrets, "", "", "nope");
  f.post(kSecrets, secret("x"));
  auto log = f.control("GET", "/requests");
  REQUIRE(log.status == 200);
  REQUIRE(log.j.size() == 3);
  CHECK(log.j[0]["method"] == "GET");
  CHECK(log.j[0]["path"] == kSecrets);
  CHECK(log.j[0]["query"] == "labelSelector=a%3Db");
  CHECK(log.j[0]["user"] == "sidecar");
  CHECK(log.j[0]["status"] == 200);
  CHECK(log.j[0]["time"].get<std::string>().size() == 24);
  CHECK(log.j[1]["status"] == 401);
  CHECK(log.j[1]["user"] == "");
  CHECK(log.j[2]["method"] == "POST");
  CHECK(log.j[2]["status"] == 201);
  CHECK(log.j[2]["user"] == "kubernetes-admin");
  CHECK(f.server.request_log().size() == 3);
  auto filtered = f.control("GET", "/requests?method=GET&path=%2Fsecrets%24&user=sidecar");
  REQUIRE(filtered.j.size() == 1);
  CHECK(filtered.j[0]["query"] == "labelSelector=a%3Db");
  CHECK(f.control("GET", "/requests?method=POST").j.size() == 1);
  CHECK(f.control("GET", "/requests?path=(").status == 400);
  WatchReader w(f, std::string(kSecrets) + "?watch=true");
  REQUIRE(w.wait_for_events(1));
  auto entries = f.server.request_log();
  CHECK(entries.back().watch);
}
