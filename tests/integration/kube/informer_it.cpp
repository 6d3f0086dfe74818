// Informer against the fake API server under dropped watches, 410s, 5xx/429 bursts and a restart:
// it converges to the server's state and its handlers see every resourceVersion at most once.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <thread>

#include "fake_api.hpp"
#include "kube/client.hpp"
#include "kube/informer.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const std::string kLabel = "suite=informer";

struct Seen {
  std::mutex mu;
  std::map<std::string, int> deliveries;  // "key@rv" -> times delivered to add/update
  std::map<std::string, std::string> state;  // what the handlers believe: key -> rv
  int deletes = 0;

  kube::InformerHandlers handlers() {
    kube::InformerHandlers h;
    h.on_add = [this](const json& o) { upsert(o); };
    h.on_update = [this](const json&, const json& o) { upsert(o); };
    h.on_delete = [this](const json& o) {
      std::lock_guard l(mu);
      state.erase(kube::Informer::key_of(o));
      ++deletes;
    };
    return h;
  }
  void upsert(const json& o) {
    std::lock_guard l(mu);
    auto key = kube::Informer::key_of(o);
    auto rv = o["metadata"]["resourceVersion"].get<std::string>();
    ++deliveries[key + "@" + rv];
    state[key] = rv;
  }
  std::vector<std::string> duplicates() {
    std::lock_guard l(mu);
    std::vector<std::string> out;
    for (const auto& [k, n] : deliveries) {
      if (n > 1) out.push_back(k + " x" + std::to_string(n));
    }
    return out;
  }
  std::map<std::string, std::string> snapshot() {
    std::lock_guard l(mu);
    return state;
  }
};

std::map<std::string, std::string> server_state(kube::Client& c) {
  kube::ListOptions lo;
  lo.label_selector = kLabel;
  auto list = c.list_all(kube::resources::configmaps(), "default", lo);
  std::map<std::string, std::string> out;
  for (const auto& item : list["items"]) out[kube::Informer::key_of(item)] = item["metadata"]["resourceVersion"];
  return out;
}

json configmap(const std::string& name, int value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"suite", "informer"}}}}},
          {"data", {{"value", std::to_string(value)}}}};
}

// Creates, updates and deletes ConfigMaps; write failures (injected faults) are fine.
void churn(kube::Client& c, int ops, std::mt19937& rng) {
  for (int i = 0; i < ops; ++i) {
    std::string name = "cm-" + std::to_string(rng() % 12);
    try {
      switch (rng() % 4) {
        case 0:
          c.remove(kube::resources::configmaps(), "default", name);
          break;
        default:
          try {
            c.patch(kube::resources::configmaps(), "default", name, {{"data", {{"value", std::to_string(i)}}}});
          } catch (const core::Error& e) {
            if (e.kind() != core::ErrorKind::NotFound) throw;
            c.create(kube::resources::configmaps(), "default", configmap(name, i));
          }
      }
    } catch (const core::Error&) {
    }
  }
}

bool converged(kube::Client& admin, kube::Informer& inf, Seen& seen, std::string& why) {
  auto server = server_state(admin);
  std::map<std::string, std::string> cache;
  for (const auto& o : inf.list()) cache[kube::Informer::key_of(o)] = o["metadata"]["resourceVersion"];
  if (cache != server) {
    why = "cache differs from server";
    return false;
  }
  if (seen.snapshot() != server) {
    why = "handler view differs from server";
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("Informer converges under dropped watches, 410s, 5xx bursts and a restart", "[kube][integration]") {
  kube::it::FakeApi api;
  auto cfg = api.config("a");
  http::CurlClient http(cfg.tls);
  kube::Client client(http, cfg);
  http::CurlClient admin_http(api.config().tls);
  kube::Client admin(admin_http, api.config());

  kube::InformerOptions o;
  o.resource = kube::resources::configmaps();
  o.namespace_name = "default";
  o.label_selector = kLabel;
  o.page_size = 5;  // several pages per list
  o.backoff = core::BackoffPolicy::exponential(20ms, 2.0, 400ms, 0.2);
  o.min_watch_timeout_seconds = 2;  // the server ends watches on its own too
  o.max_watch_timeout_seconds = 4;
  o.idle_timeout = 5s;
  Seen seen;
  std::mutex rmu;
  std::map<std::string, int> restarts;
  kube::InformerMetrics metrics;
  metrics.on_watch_restart = [&](std::string_view r) {
    std::lock_guard l(rmu);
    ++restarts[std::string(r)];
  };
  core::SystemClock clock;
  kube::Informer inf(client, o, seen.handlers(), clock, core::default_random_source(), core::Logger::discard(),
                     metrics);

  std::mt19937 rng(42);
  churn(admin, 30, rng);
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(inf.wait_for_sync(runner.get_stop_token(), 30s));

  const std::vector<std::function<void()>> faults = {
      [&] { api.control("POST", "/faults/drop-watches"); },
      [&] { api.control("POST", "/faults/expire-next-watch", {{"count", 2}}); },
      [&] { api.control("POST", "/faults/drop-watches"); },
      [&] { api.control("POST", "/faults/fail", {{"method", "GET"}, {"path", ".*configmaps.*"}, {"count", 6}, {"status", 500}}); },
      [&] { api.control("POST", "/faults/drop-watches"); },
      [&] { api.control("POST", "/faults/fail", {{"method", "GET"}, {"path", ".*configmaps.*"}, {"count", 3}, {"status", 429}, {"retry_after", 0}}); },
      [&] { api.control("POST", "/faults/drop-watches"); },
      [&] { api.control("POST", "/faults/fail", {{"method", "GET"}, {"path", ".*configmaps.*"}, {"count", 4}, {"status", 503}}); },
  };
  for (const auto& fault : faults) {
    fault();
    churn(admin, 25, rng);
  }
  api.control("POST", "/faults/clear");

  std::string why;
  REQUIRE(acme_sidecar::testing::poll_until([&] { return converged(admin, inf, seen, why); }, 30s));
  INFO(why);
  CHECK(seen.duplicates().empty());

  // A restarted API server (empty store, resourceVersions keep counting): resuming gets 410, the
  // relist turns every vanished object into a delete, new objects arrive normally.
  const int deletes_before = seen.deletes;
  const auto before = server_state(admin).size();
  api.control("POST", "/reset", {{"restart_resource_version", false}});
  churn(admin, 20, rng);
  REQUIRE(acme_sidecar::testing::poll_until([&] { return converged(admin, inf, seen, why); }, 30s));
  CHECK(seen.duplicates().empty());
  CHECK(seen.deletes >= deletes_before + 1);
  CHECK(before > 0);

  runner.request_stop();
  runner.join();
  std::lock_guard l(rmu);
  CHECK(restarts["expired"] >= 1);
  INFO("restart reasons: " << restarts.size());
  CHECK(restarts.size() >= 2);
}

TEST_CASE("Informer resumes from bookmarks without relisting", "[kube][integration]") {
  kube::it::FakeApi api("0.2");
  auto cfg = api.config("a");
  http::CurlClient http(cfg.tls);
  kube::Client client(http, cfg);
  kube::InformerOptions o;
  o.resource = kube::resources::configmaps();
  o.namespace_name = "default";
  o.label_selector = kLabel;
  core::SystemClock clock;
  Seen seen;
  kube::Informer inf(client, o, seen.handlers(), clock, core::default_random_source(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(inf.wait_for_sync(runner.get_stop_token(), 30s));
  const std::string listed_rv = inf.last_resource_version();
  // Unrelated writes move the resourceVersion; only bookmarks tell the informer about it.
  http::CurlClient admin_http(api.config().tls);
  kube::Client admin(admin_http, api.config());
  for (int i = 0; i < 5; ++i) {
    admin.create(kube::resources::secrets(), "default",
                 {{"metadata", {{"name", "other-" + std::to_string(i)}}}, {"type", "Opaque"}});
  }
  REQUIRE(acme_sidecar::testing::poll_until(
      [&] { return std::stoull(inf.last_resource_version()) > std::stoull(listed_rv); }, 20s));
  const std::string bookmarked = inf.last_resource_version();
  api.control("DELETE", "/requests");
  api.control("POST", "/faults/drop-watches");
  REQUIRE(acme_sidecar::testing::poll_until(
      [&] {
        for (const auto& e : api.request_log()) {
          if (e["watch"] == true) return true;
        }
        return false;
      },
      20s));
  runner.request_stop();
  runner.join();
  int lists = 0;
  std::string resumed_query;
  for (const auto& e : api.request_log()) {
    if (e["path"].get<std::string>().find("configmaps") == std::string::npos) continue;
    if (e["watch"] == true) {
      if (resumed_query.empty()) resumed_query = e["query"];
    } else {
      ++lists;
    }
  }
  CHECK(lists == 0);
  CHECK(resumed_query.find("resourceVersion=") != std::string::npos);
  // Resumed from a bookmark's RV (or later), never from the list's.
  auto pos = resumed_query.find("resourceVersion=") + 16;
  auto rv = std::stoull(resumed_query.substr(pos, resumed_query.find('&', pos) - pos));
  CHECK(rv >= std::stoull(bookmarked));
}
