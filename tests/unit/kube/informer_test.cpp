#include "kube/informer.hpp"

#include <catch2/catch.hpp>
#include <deque>
#include <nlohmann/json.hpp>
#include <thread>

#include "fakes.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using json = nlohmann::json;
using kube::testing::FakeHttp;
using kube::testing::json_response;
using kube::testing::query_of;
using kube::testing::SettlingClock;
using kube::testing::status_body;

namespace {

json obj(const std::string& name, const std::string& rv) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", rv}}}};
}
json list_of(const std::string& rv, std::vector<json> items) {
  return {{"kind", "IngressList"}, {"metadata", {{"resourceVersion", rv}}}, {"items", items}};
}
std::string line(const std::string& type, const json& o) { return json{{"type", type}, {"object", o}}.dump() + "\n"; }

using WatchScript = std::function<http::Response(const http::Request&, const http::ChunkHandler&)>;

// A scripted API: successive list answers (the last repeats) and successive watch scripts (once
// exhausted, watches park until the informer stops).
struct Api {
  std::mutex mu;
  std::vector<std::function<http::Response()>> lists;
  std::deque<WatchScript> watches;
  std::vector<std::string> watch_rvs;
  int list_calls = 0;
  FakeHttp http;

  Api() {
    http.set_handler([this](const http::Request& r, const http::ChunkHandler* chunk) -> http::Response {
      auto q = query_of(r.url);
      if (q.count("watch") != 0) {
        WatchScript script;
        {
          std::lock_guard lock(mu);
          watch_rvs.push_back(q["resourceVersion"]);
          if (!watches.empty()) {
            script = std::move(watches.front());
            watches.pop_front();
          }
        }
        if (!script) return kube::testing::park_until_cancelled(r);
        return script(r, *chunk);
      }
      std::function<http::Response()> answer;
      {
        std::lock_guard lock(mu);
        answer = lists.at(std::min<size_t>(list_calls, lists.size() - 1));
        ++list_calls;
      }
      return answer();
    });
  }
  void add_list(json l) {
    lists.push_back([l] { return json_response(200, l); });
  }
  void add_watch(std::vector<std::string> lines, long status = 200) {
    watches.push_back([lines, status](const http::Request&, const http::ChunkHandler& c) {
      http::Response r;
      r.status = status;
      for (const auto& l : lines) c(l);
      return r;
    });
  }
  int lists_made() {
    std::lock_guard lock(mu);
    return list_calls;
  }
  std::vector<std::string> rvs() {
    std::lock_guard lock(mu);
    return watch_rvs;
  }
};

struct Recorder {
  std::mutex mu;
  std::vector<std::string> log;
  kube::InformerHandlers handlers() {
    kube::InformerHandlers h;
    h.on_add = [this](const json& o) { push("add " + o["metadata"]["name"].get<std::string>() + "@" + rv(o)); };
    h.on_update = [this](const json& a, const json& b) {
      push("update " + b["metadata"]["name"].get<std::string>() + "@" + rv(a) + "->" + rv(b));
    };
    h.on_delete = [this](const json& o) { push("delete " + o["metadata"]["name"].get<std::string>()); };
    return h;
  }
  static std::string rv(const json& o) { return o["metadata"]["resourceVersion"].get<std::string>(); }
  void push(std::string s) {
    std::lock_guard lock(mu);
    log.push_back(std::move(s));
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mu);
    return log;
  }
};

kube::KubeConfig cfg() {
  kube::KubeConfig c;
  c.server = "https://api.test";
  return c;
}

kube::InformerOptions opts() {
  kube::InformerOptions o;
  o.resource = kube::resources::ingresses();
  return o;
}

core::RandomSource half() {
  return [] { return 0.5; };
}

}  // namespace

TEST_CASE("Informer lists, watches from the list RV and resumes from the last bookmark", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1"), obj("b", "2")}));
  api.add_watch({line("ADDED", obj("c", "11")), line("MODIFIED", obj("a", "12")),
                 line("MODIFIED", obj("a", "12")),  // replayed: must not reach handlers twice
                 line("DELETED", obj("b", "13")), line("BOOKMARK", {{"metadata", {{"resourceVersion", "20"}}}})});
  kube::Client client(api.http, cfg());
  Recorder rec;
  core::ManualClock clock;
  std::vector<std::string> restarts;
  std::atomic<int> events{0};
  kube::InformerMetrics metrics;
  metrics.on_watch_restart = [&](std::string_view r) { restarts.emplace_back(r); };
  metrics.on_event = [&](core::TimePoint) { ++events; };
  kube::Informer inf(client, opts(), rec.handlers(), clock, half(), core::Logger::discard(), metrics);
  CHECK_FALSE(inf.synced());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(inf.wait_for_sync(runner.get_stop_token(), 10s));
  REQUIRE(api.http.wait_for_requests(3));  // list, watch 1, watch 2
  runner.request_stop();
  runner.join();

  CHECK(api.rvs() == std::vector<std::string>{"10", "20"});
  CHECK(rec.get() == std::vector<std::string>{"add a@1", "add b@2", "add c@11", "update a@1->12", "delete b"});
  CHECK(inf.keys() == std::vector<std::string>{"default/a", "default/c"});
  CHECK(inf.last_resource_version() == "20");
  CHECK(restarts == std::vector<std::string>{"closed"});
  CHECK(events == 5);
  CHECK(api.lists_made() == 1);
  CHECK(clock.waiters() == 0);  // no backoff was needed
}

TEST_CASE("Informer relists on 410 and synthesizes only the differences", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1"), obj("b", "2"), obj("c", "3")}));
  api.add_list(list_of("20", {obj("a", "5"), obj("c", "3"), obj("d", "6")}));
  api.add_watch({line("ERROR", status_body(410, "Expired", "too old resource version: 10 (15)"))});
  kube::Client client(api.http, cfg());
  Recorder rec;
  core::ManualClock clock;
  std::vector<std::string> restarts;
  kube::InformerMetrics metrics;
  metrics.on_watch_restart = [&](std::string_view r) { restarts.emplace_back(r); };
  kube::Informer inf(client, opts(), rec.handlers(), clock, half(), core::Logger::discard(), metrics);
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(api.http.wait_for_requests(4));  // list, watch (410), list, watch
  runner.request_stop();
  runner.join();

  CHECK(api.lists_made() == 2);
  CHECK(api.rvs() == std::vector<std::string>{"10", "20"});
  // A relist's additions and updates come page by page, its deletions once the list is complete.
  CHECK(rec.get() == std::vector<std::string>{"add a@1", "add b@2", "add c@3", "update a@1->5", "add d@6",
                                              "delete b"});
  CHECK(restarts == std::vector<std::string>{"expired"});
  CHECK(inf.size() == 3);
}

TEST_CASE("Informer with keys_only keeps key and resourceVersion and hands out metadata stubs", "[kube][informer]") {
  Api api;
  auto big = [](const std::string& name, const std::string& rv) {
    auto o = obj(name, rv);
    o["data"] = {{"big", std::string(1000, 'x')}};
    o["metadata"]["labels"] = {{"l", "v"}};
    return o;
  };
  api.add_list(list_of("10", {big("a", "1"), big("b", "2")}));
  api.add_list(list_of("20", {big("a", "5")}));
  api.add_watch({line("ERROR", status_body(410, "Expired", "too old"))});
  kube::Client client(api.http, cfg());
  core::ManualClock clock;
  auto o = opts();
  o.keys_only = true;
  o.transform = [](const json&) -> json { FAIL("keys_only overrides transform"); return {}; };
  std::vector<json> olds, deleted;
  std::vector<bool> full_seen;
  std::mutex mu;
  kube::InformerHandlers h;
  h.on_add = [&](const json& x) {
    std::lock_guard lock(mu);
    full_seen.push_back(x.contains("data"));
  };
  h.on_update = [&](const json& a, const json& b) {
    std::lock_guard lock(mu);
    olds.push_back(a);
    full_seen.push_back(b.contains("data"));
  };
  h.on_delete = [&](const json& x) {
    std::lock_guard lock(mu);
    deleted.push_back(x);
  };
  kube::Informer inf(client, o, h, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(api.http.wait_for_requests(4));  // list, watch (410), list, watch
  runner.request_stop();
  runner.join();
  auto stub = [](const std::string& name, const std::string& rv) {
    return json{{"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", rv}}}};
  };
  CHECK(full_seen == std::vector<bool>{true, true, true});  // handlers still get whole objects
  CHECK(olds == std::vector<json>{stub("a", "1")});
  CHECK(deleted == std::vector<json>{stub("b", "2")});
  CHECK(inf.get("default/a") == stub("a", "5"));
  CHECK(inf.list() == std::vector<json>{stub("a", "5")});
  CHECK_FALSE(inf.get("default/b"));
}

TEST_CASE("Informer also relists when the watch request itself answers 410", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1")}));
  api.add_list(list_of("30", {obj("a", "1")}));
  api.watches.push_back([](const http::Request&, const http::ChunkHandler&) {
    return json_response(410, status_body(410, "Gone"));
  });
  kube::Client client(api.http, cfg());
  Recorder rec;
  core::ManualClock clock;
  kube::Informer inf(client, opts(), rec.handlers(), clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(api.http.wait_for_requests(4));
  runner.request_stop();
  runner.join();
  CHECK(api.rvs() == std::vector<std::string>{"10", "30"});
  CHECK(rec.get() == std::vector<std::string>{"add a@1"});  // unchanged object: no event
}

TEST_CASE("Informer backs off on 500s: exactly one request per backoff step", "[kube][informer]") {
  Api api;
  api.lists.push_back([] { return json_response(500, status_body(500, "InternalError")); });
  kube::Client client(api.http, cfg());
  Recorder rec;
  SettlingClock clock;
  kube::Informer inf(client, opts(), rec.handlers(), clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(clock.settle(1));
  CHECK(api.lists_made() == 1);
  // Default policy: 1s, 2s, 4s, 8s, 16s, 30s, 30s ... (random 0.5 = no jitter).
  int expected = 1;
  for (auto delay : {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s}) {
    REQUIRE(clock.step(delay - 1ms, 1));
    CHECK(api.lists_made() == expected);  // not yet
    REQUIRE(clock.step(1ms, 1));
    ++expected;
    CHECK(api.lists_made() == expected);
  }
  CHECK_FALSE(inf.synced());
  runner.request_stop();
  runner.join();
  CHECK(api.lists_made() == expected);
}

TEST_CASE("Informer backs off on failing or empty watches and keeps its cache", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1")}));
  for (int i = 0; i < 3; ++i) {
    api.watches.push_back([](const http::Request&, const http::ChunkHandler&) -> http::Response {
      throw core::Error(core::ErrorKind::Transport, "connection reset");
    });
  }
  api.add_watch({});  // closes at once without events: must not spin either
  api.add_watch({line("ADDED", obj("b", "11"))});
  kube::Client client(api.http, cfg());
  Recorder rec;
  SettlingClock clock;
  std::vector<std::string> restarts;
  kube::InformerMetrics metrics;
  metrics.on_watch_restart = [&](std::string_view r) { restarts.emplace_back(r); };
  kube::Informer inf(client, opts(), rec.handlers(), clock, half(), core::Logger::discard(), metrics);
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(clock.settle(1));
  CHECK(api.http.count() == 2);  // list + first failing watch
  REQUIRE(clock.step(1s, 1));
  CHECK(api.http.count() == 3);
  REQUIRE(clock.step(2s, 1));
  CHECK(api.http.count() == 4);
  REQUIRE(clock.step(4s, 1));  // the empty watch, then parks again
  CHECK(api.http.count() == 5);
  clock.advance(8s);
  REQUIRE(api.http.wait_for_requests(7));  // the watch with an event, then a parked watch
  runner.request_stop();
  runner.join();
  CHECK(api.lists_made() == 1);  // resumed, never relisted
  CHECK(api.rvs() == std::vector<std::string>{"10", "10", "10", "10", "10", "11"});
  CHECK(rec.get() == std::vector<std::string>{"add a@1", "add b@11"});
  CHECK(restarts == std::vector<std::string>{"transport", "transport", "transport", "closed", "closed"});
}

TEST_CASE("Informer hands out copies from get and passes selectors", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1")}));
  kube::Client client(api.http, cfg());
  core::ManualClock clock;
  auto o = opts();
  o.label_selector = "app=x";
  o.field_selector = "metadata.name=a";
  o.namespace_name = "default";
  o.page_size = 50;
  // Handlers get the cached object itself (const, shared: no copy per event); get() copies.
  kube::Informer inf(client, o, {}, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(api.http.wait_for_requests(2));
  auto got = inf.get("default", "a");
  REQUIRE(got.has_value());
  (*got)["metadata"]["name"] = "changed";
  CHECK(inf.get("default/a").value()["metadata"]["name"] == "a");
  CHECK_FALSE(inf.get("default", "missing").has_value());
  runner.request_stop();
  runner.join();
  auto reqs = api.http.requests();
  auto lq = query_of(reqs[0].url);
  auto wq = query_of(reqs[1].url);
  CHECK(reqs[0].url.find("/namespaces/default/ingresses") != std::string::npos);
  CHECK(lq["labelSelector"] == "app%3Dx");
  CHECK(lq["fieldSelector"] == "metadata.name%3Da");
  CHECK(lq["limit"] == "50");
  CHECK(wq["labelSelector"] == "app%3Dx");
  CHECK(wq["fieldSelector"] == "metadata.name%3Da");
  int timeout = std::stoi(wq["timeoutSeconds"]);
  CHECK(timeout >= 300);
  CHECK(timeout < 600);
}

TEST_CASE("Informer calls the resync callback every period", "[kube][informer]") {
  Api api;
  api.add_list(list_of("10", {obj("a", "1")}));
  kube::Client client(api.http, cfg());
  SettlingClock clock;
  auto o = opts();
  o.resync_period = 1h;
  std::atomic<int> resyncs{0};
  kube::InformerHandlers h;
  h.on_resync = [&] { ++resyncs; };
  kube::Informer inf(client, o, h, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(inf.wait_for_sync(runner.get_stop_token(), 10s));
  REQUIRE(clock.settle(1));
  REQUIRE(clock.step(59min, 1));
  CHECK(resyncs == 0);
  REQUIRE(clock.step(1min, 1));
  CHECK(resyncs == 1);
  REQUIRE(clock.step(1h, 1));
  CHECK(resyncs == 2);
  runner.request_stop();
  runner.join();
}

TEST_CASE("Informer wait_for_sync times out before the first list and stops promptly", "[kube][informer]") {
  Api api;
  api.lists.push_back([] { return json_response(403, status_body(403, "Forbidden")); });
  kube::Client client(api.http, cfg());
  SettlingClock clock;
  kube::Informer inf(client, opts(), {}, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  CHECK_FALSE(inf.wait_for_sync(runner.get_stop_token(), 50ms));
  REQUIRE(clock.settle(1));
  runner.request_stop();
  runner.join();  // parked in backoff: returns without time passing
  CHECK(api.lists_made() == 1);
}

TEST_CASE("Informer waits at least the server's Retry-After on 429", "[kube][informer]") {
  Api api;
  api.lists.push_back([] {
    auto r = json_response(429, status_body(429, "TooManyRequests"));
    r.headers.emplace_back("Retry-After", "10");
    return r;
  });
  api.add_list(list_of("10", {}));
  kube::Client client(api.http, cfg());
  SettlingClock clock;
  kube::Informer inf(client, opts(), {}, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(clock.settle(1));
  REQUIRE(clock.step(9s, 1));  // backoff alone would have retried after 1 s
  CHECK(api.lists_made() == 1);
  clock.advance(1s);
  REQUIRE(inf.wait_for_sync(runner.get_stop_token(), 10s));
  CHECK(api.lists_made() == 2);
  runner.request_stop();
  runner.join();
}

TEST_CASE("Informer caches the transformed form and hands the full object to the handlers", "[kube][informer]") {
  Api api;
  auto full = [](const std::string& name, const std::string& rv, const std::string& payload) {
    auto o = obj(name, rv);
    o["data"] = {{"big", payload}};
    return o;
  };
  api.add_list(list_of("10", {full("a", "1", "one")}));
  api.add_watch({line("MODIFIED", full("a", "11", "two")), line("DELETED", full("a", "12", "three"))});
  kube::Client client(api.http, cfg());
  core::ManualClock clock;
  auto o = opts();
  int transformed = 0;
  o.transform = [&](const json& in) {
    ++transformed;
    return json{{"metadata", in.at("metadata")}};
  };
  std::vector<std::string> seen;
  std::mutex mu;
  kube::InformerHandlers h;
  auto payload = [](const json& x) { return x.contains("data") ? x["data"]["big"].get<std::string>() : "-"; };
  h.on_add = [&](const json& x) {
    std::lock_guard lock(mu);
    seen.push_back("add " + payload(x));
  };
  h.on_update = [&](const json& a, const json& b) {
    std::lock_guard lock(mu);
    seen.push_back("update " + payload(a) + "->" + payload(b));
  };
  h.on_delete = [&](const json& x) {
    std::lock_guard lock(mu);
    seen.push_back("delete " + payload(x));
  };
  kube::Informer inf(client, o, h, clock, half(), core::Logger::discard());
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(api.http.wait_for_requests(3));
  runner.request_stop();
  runner.join();
  // The cache keeps only the metadata: the old object of the update is the transformed one, the
  // watch's DELETED event carries the last state as sent.
  CHECK(seen == std::vector<std::string>{"add one", "update -->two", "delete three"});
  CHECK(transformed == 2);
  CHECK(inf.size() == 0);
}

TEST_CASE("Informer lists page by page and is synced only after the handlers saw every page", "[kube][informer]") {
  Api api;
  json first = list_of("7", {obj("a", "1"), obj("b", "2")});
  first["metadata"]["continue"] = "next";
  json second = list_of("9", {obj("c", "3")});
  api.add_list(first);
  api.add_list(second);
  kube::Client client(api.http, cfg());
  core::ManualClock clock;
  kube::Informer* self = nullptr;
  std::vector<std::string> log;
  kube::InformerHandlers h;
  h.on_add = [&](const json& x) {
    // A handler already finds its object (and the earlier pages) in the cache, but the informer does not
    // call itself synced before the last page was handed over.
    log.push_back(x["metadata"]["name"].get<std::string>() + (self->synced() ? " synced" : "") + " size " +
                  std::to_string(self->size()));
  };
  auto o = opts();
  o.page_size = 2;
  kube::Informer inf(client, o, h, clock, half(), core::Logger::discard());
  self = &inf;
  std::jthread runner([&](std::stop_token st) { inf.run(st); });
  REQUIRE(inf.wait_for_sync({}, std::chrono::seconds(30)));
  CHECK(log == std::vector<std::string>{"a size 2", "b size 2", "c size 3"});
  REQUIRE(api.http.wait_for_requests(3));
  runner.request_stop();
  runner.join();
  auto reqs = api.http.requests();
  CHECK(query_of(reqs[1].url)["continue"] == "next");
  CHECK(api.rvs() == std::vector<std::string>{"9"});
  CHECK(inf.list_shared().size() == 3);
  CHECK(inf.get_shared("default/c") != nullptr);
}
