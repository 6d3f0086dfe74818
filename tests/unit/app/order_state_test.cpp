// OrderStateStore against a scripted API (tests/unit/kube/fakes.hpp): what it asks the API server for,
// counted per request — a first issuance must not cost a GET, a new term must still find what a
// previous leader left, finished orders' states go in batches that can only match those orders.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "app/kube_adapters.hpp"
#include "tests/unit/kube/fakes.hpp"

using namespace acme_sidecar;
using nlohmann::json;
using kube::testing::FakeHttp;
using kube::testing::json_response;
using kube::testing::path_of;
using kube::testing::status_body;

namespace {

constexpr const char* kPrefix = "/api/v1/namespaces/own/secrets";

// Secrets of namespace "own", in memory; `fail_lists` makes LIST answer 500.
class FakeSecrets {
 public:
  FakeSecrets()
      : http_([this](const http::Request& r, const http::ChunkHandler*) { return handle(r); }),
        client_(http_, config()) {}
  kube::Client& client() { return client_; }
  void put(const json& secret) {
    std::lock_guard lock(mu_);
    store_[secret["metadata"]["name"].get<std::string>()] = secret;
  }
  std::size_t size() const {
    std::lock_guard lock(mu_);
    return store_.size();
  }
  json get(const std::string& name) const {
    std::lock_guard lock(mu_);
    auto it = store_.find(name);
    return it == store_.end() ? json() : it->second;
  }
  // "GET", "LIST", "POST", "PUT", "DELETE", "DELETECOLLECTION" made since the last reset_counts().
  std::size_t count(const std::string& verb) const {
    std::size_t n = 0;
    for (const auto& r : http_.requests()) {
      bool named = path_of(r.url).size() > std::string(kPrefix).size();
      std::string v = r.method == "GET" && !named ? "LIST" : r.method == "DELETE" && !named ? "DELETECOLLECTION" : r.method;
      n += v == verb;
    }
    return n - (counted_.count(verb) ? counted_.at(verb) : 0);
  }
  void reset_counts() {
    counted_.clear();
    for (const char* v : {"GET", "LIST", "POST", "PUT", "DELETE", "DELETECOLLECTION"})
      counted_[v] = 0, counted_[v] = count(v);
  }
  // The label selector of the last deletecollection, decoded.
  std::string last_collection_selector() const {
    std::lock_guard lock(mu_);
    return last_selector_;
  }
  bool fail_lists = false;
  int fail_collection_deletes = 0;  // how many deletecollections answer 500 before one succeeds
  int conflict_puts = 0;            // how many PUTs answer 409 Conflict before one succeeds
  bool vanish_on_put = false;       // the next PUT finds its object deleted (a batch sent just before)
  bool put_had_resource_version = false;

 private:
  static kube::KubeConfig config() {
    kube::KubeConfig c;
    c.server = "https://api.test:6443";
    c.token = "tok";
    return c;
  }
  http::Response handle(const http::Request& r) {
    std::lock_guard lock(mu_);
    auto path = path_of(r.url);
    if (path.rfind(kPrefix, 0) != 0) return json_response(404, status_body(404, "NotFound"));
    auto name = path.size() > std::string(kPrefix).size() ? path.substr(std::string(kPrefix).size() + 1) : "";
    if (r.method == "GET" && name.empty()) {
      if (fail_lists) return json_response(500, status_body(500, "InternalError"));
      json items = json::array();
      for (const auto& [n, s] : store_) items.push_back(s);
      return json_response(200, {{"kind", "SecretList"}, {"metadata", {{"resourceVersion", "1"}}}, {"items", items}});
    }
    auto it = store_.find(name);
    if (r.method == "GET") {
      return it == store_.end() ? json_response(404, status_body(404, "NotFound")) : json_response(200, it->second);
    }
    if (r.method == "DELETE" && name.empty()) {
      if (fail_collection_deletes > 0) {
        --fail_collection_deletes;
        return json_response(500, status_body(500, "InternalError"));
      }
      last_selector_ = url_decode(query_param(r.url, "labelSelector"));
      const auto field = url_decode(query_param(r.url, "fieldSelector"));  // only metadata.name=<name>
      json deleted = json::array();
      for (auto i = store_.begin(); i != store_.end();) {
        if (selects(last_selector_, i->second) && (field.empty() || field == "metadata.name=" + i->first)) {
          deleted.push_back(i->second);
          i = store_.erase(i);
        } else {
          ++i;
        }
      }
      return json_response(200, {{"kind", "SecretList"}, {"metadata", json::object()}, {"items", deleted}});
    }
    if (r.method == "DELETE") {
      if (it == store_.end()) return json_response(404, status_body(404, "NotFound"));
      store_.erase(it);
      return json_response(200, status_body(200, "Success"));
    }
    auto body = json::parse(r.body);
    name = body["metadata"]["name"].get<std::string>();
    if (r.method == "POST" && store_.count(name)) return json_response(409, status_body(409, "AlreadyExists"));
    if (r.method == "PUT") {
      put_had_resource_version = body["metadata"].contains("resourceVersion");
      if (conflict_puts > 0) {
        --conflict_puts;
        return json_response(409, status_body(409, "Conflict"));
      }
      if (vanish_on_put) {
        vanish_on_put = false;
        store_.erase(name);
      }
      if (!store_.count(name)) return json_response(404, status_body(404, "NotFound"));  // Secrets: no create on update
    }
    body["metadata"]["resourceVersion"] = "2";
    store_[name] = body;
    return json_response(r.method == "POST" ? 201 : 200, body);
  }

  static std::string query_param(const std::string& url, const std::string& key) {
    auto at = url.find(key + "=");
    if (at == std::string::npos) return "";
    auto end = url.find('&', at);
    return url.substr(at + key.size() + 1, end == std::string::npos ? std::string::npos : end - at - key.size() - 1);
  }
  static std::string url_decode(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '%' && i + 2 < s.size()) {
        out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += s[i];
      }
    }
    return out;
  }
  // The two forms the store sends: "k=v" and "k in (a,b)", comma-separated.
  static bool selects(const std::string& selector, const json& object) {
    const json labels = object["metadata"].value("labels", json::object());
    std::size_t pos = 0;
    while (pos < selector.size()) {
      std::size_t end = selector.find(',', pos);
      if (auto paren = selector.find('(', pos); paren != std::string::npos && paren < end) end = selector.find(')', paren) + 1;
      const std::string term = selector.substr(pos, end - pos);
      pos = end == std::string::npos ? selector.size() : end + 1;
      if (auto in = term.find(" in ("); in != std::string::npos) {
        const std::string key = term.substr(0, in);
        const std::string values = "," + term.substr(in + 5, term.size() - in - 6) + ",";
        if (!labels.contains(key) || values.find("," + labels[key].get<std::string>() + ",") == std::string::npos)
          return false;
      } else {
        const auto eq = term.find('=');
        const std::string key = term.substr(0, eq);
        if (labels.value(key, "") != term.substr(eq + 1)) return false;
      }
    }
    return true;
  }

  mutable std::mutex mu_;
  std::string last_selector_;
  std::map<std::string, json> store_;
  FakeHttp http_;
  kube::Client client_;
  std::map<std::string, std::size_t> counted_;
};

app::OrderState state(const std::string& key, const std::string& order = "1") {
  return app::OrderState{key, "https://ca.test/order/" + key + "/" + order, {"a.example"}, "-----BEGIN PRIVATE KEY-----"};
}

}  // namespace

constexpr app::OrderStateOptions kUnbatched{std::chrono::milliseconds(0), 50};
constexpr app::OrderStateOptions kManualBatches{std::chrono::hours(1), 50};  // sent by flush() only

TEST_CASE("order state: a first issuance costs one LIST per term, no GET, and a DELETE only of what was saved") {
  FakeSecrets api;
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kUnbatched);
  CHECK_FALSE(orders.load("ns/a"));
  CHECK_FALSE(orders.load("ns/b"));
  CHECK(api.count("LIST") == 1);
  CHECK(api.count("GET") == 0);

  orders.save(state("ns/a"));
  CHECK(api.count("POST") == 1);
  auto loaded = orders.load("ns/a");  // saved in this term: read back
  REQUIRE(loaded);
  CHECK(loaded->order_url == "https://ca.test/order/ns/a/1");
  CHECK(api.count("GET") == 1);

  orders.remove("ns/a");
  orders.remove("ns/b");  // never saved: nothing to delete
  CHECK(api.count("DELETECOLLECTION") == 1);  // selecting ns/a's state by name
  CHECK(api.count("DELETE") == 0);             // the Role grants no plain delete on Secrets
  CHECK(api.size() == 0);
  CHECK_FALSE(orders.load("ns/a"));
  CHECK(api.count("GET") == 1);
  CHECK(api.count("LIST") == 1);
}

TEST_CASE("order state: a new term lists again and resumes what another leader left") {
  FakeSecrets api;
  app::OrderStateStore mine(api.client(), "own", core::Logger::discard());
  app::OrderStateStore other(api.client(), "own", core::Logger::discard());
  CHECK_FALSE(mine.load("ns/a"));  // listed: nothing stored
  other.save(state("ns/a"));       // the other leader's order, then it dies
  mine.begin_term();
  auto loaded = mine.load("ns/a");
  REQUIRE(loaded);
  CHECK(loaded->certificate_key == "ns/a");
  CHECK(api.count("LIST") == 2);
}

TEST_CASE("order state: a restarted process finds the state on its first load") {
  FakeSecrets api;
  {
    app::OrderStateStore before_crash(api.client(), "own", core::Logger::discard());
    before_crash.save(state("ns/a"));
  }
  app::OrderStateStore after(api.client(), "own", core::Logger::discard());
  REQUIRE(after.load("ns/a"));
  CHECK_FALSE(after.load("ns/b"));
  CHECK(api.count("GET") == 1);
}

TEST_CASE("order state: when the LIST fails every load asks with a GET") {
  FakeSecrets api;
  api.fail_lists = true;
  app::OrderStateStore writer(api.client(), "own", core::Logger::discard(), kUnbatched);
  writer.save(state("ns/a"));
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kUnbatched);
  REQUIRE(orders.load("ns/a"));
  CHECK_FALSE(orders.load("ns/b"));
  CHECK(api.count("GET") == 2);
  orders.remove("ns/a");
  CHECK(api.count("DELETECOLLECTION") == 1);
  CHECK(api.size() == 0);
}

TEST_CASE("order state: finished orders' states go in one deletecollection that selects their order ids") {
  FakeSecrets api;
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
  for (const char* key : {"ns/a", "ns/b", "ns/c", "ns/d"}) orders.save(state(key));
  const auto id_of = [&](const char* key) {
    return api.get(orders.object_name(key))["metadata"]["labels"][app::kOrderIdLabel].get<std::string>();
  };
  const std::string id_a = id_of("ns/a"), id_b = id_of("ns/b"), id_c = id_of("ns/c");
  CHECK(id_a.size() == 16);
  CHECK(id_a != id_b);
  for (const char* key : {"ns/a", "ns/b", "ns/c"}) orders.remove(key);
  CHECK(api.count("DELETE") + api.count("DELETECOLLECTION") == 0);  // waiting for the batch
  CHECK_FALSE(orders.load("ns/a"));  // a finished order is not resumed while its delete waits
  CHECK(api.count("GET") == 0);

  orders.flush();
  CHECK(api.count("DELETECOLLECTION") == 1);
  CHECK(api.count("DELETE") == 0);
  const auto selector = api.last_collection_selector();
  CHECK(selector.find("app.kubernetes.io/managed-by=acme-sidecar") != std::string::npos);
  CHECK(selector.find("acme-sidecar.io/order=true") != std::string::npos);
  for (const auto& id : {id_a, id_b, id_c}) CHECK(selector.find(id) != std::string::npos);
  CHECK(api.size() == 1);  // ns/d's order is still in flight
  CHECK(api.get(orders.object_name("ns/d")).is_object());
  orders.flush();  // nothing waiting: no request
  CHECK(api.count("DELETECOLLECTION") == 1);
}

TEST_CASE("order state: a batch sent late never deletes a newer order's state for the same certificate") {
  FakeSecrets api;
  SECTION("the same store: the new order's save cancels the waiting delete") {
    app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
    orders.save(state("ns/a", "1"));
    orders.remove("ns/a");            // order 1 finished: its delete waits
    orders.save(state("ns/a", "2"));  // a new order right away (hosts changed): overwrites the state
    CHECK(api.count("PUT") == 1);
    orders.flush();
    CHECK(api.count("DELETECOLLECTION") == 0);
    auto loaded = orders.load("ns/a");
    REQUIRE(loaded);
    CHECK(loaded->order_url == "https://ca.test/order/ns/a/2");
  }
  SECTION("a handover: the old leader's batch selects its own order's id only") {
    app::OrderStateStore old_leader(api.client(), "own", core::Logger::discard(), kManualBatches);
    app::OrderStateStore new_leader(api.client(), "own", core::Logger::discard(), kManualBatches);
    old_leader.save(state("ns/a", "1"));
    old_leader.remove("ns/a");
    new_leader.save(state("ns/a", "2"));  // overwrites order 1's state before the old batch goes
    old_leader.flush();                   // end of the old term
    CHECK(api.count("DELETECOLLECTION") == 1);
    auto loaded = new_leader.load("ns/a");
    REQUIRE(loaded);
    CHECK(loaded->order_url == "https://ca.test/order/ns/a/2");
  }
}

TEST_CASE("order state: a state that exists is overwritten unconditionally, through Conflicts and deletes") {
  // A new order for a certificate whose previous state still waits for its batched delete: the name
  // exists, so the create is answered AlreadyExists and the state is overwritten by an unconditional PUT.
  FakeSecrets api;
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
  orders.save(state("ns/a", "1"));
  orders.remove("ns/a");
  auto check_overwritten = [&] {
    orders.flush();
    CHECK(api.count("DELETECOLLECTION") == 0);  // the waiting delete was for the state now overwritten
    auto loaded = orders.load("ns/a");
    REQUIRE(loaded);
    CHECK(loaded->order_url == "https://ca.test/order/ns/a/2");
  };
  SECTION("a Conflict (an API server under contention) is retried") {
    api.conflict_puts = 2;
    orders.save(state("ns/a", "2"));
    CHECK(api.count("PUT") == 3);
    CHECK(api.count("GET") == 0);  // no read for a resourceVersion
    CHECK_FALSE(api.put_had_resource_version);
    check_overwritten();
  }
  SECTION("deleted between the create and the PUT: created again") {
    api.vanish_on_put = true;
    orders.save(state("ns/a", "2"));
    CHECK(api.count("PUT") == 1);
    CHECK(api.count("POST") == 3);
    check_overwritten();
  }
  SECTION("Conflicts without end: the error, after five attempts") {
    api.conflict_puts = 100;
    CHECK_THROWS_AS(orders.save(state("ns/a", "2")), core::Error);
    CHECK(api.count("PUT") == 4);  // the create was the first attempt
  }
}

TEST_CASE("order state: a failed batch is sent again with the next one") {
  FakeSecrets api;
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
  orders.save(state("ns/a"));
  orders.remove("ns/a");
  api.fail_collection_deletes = 1;
  orders.flush();
  CHECK(api.size() == 1);
  orders.save(state("ns/b"));
  orders.remove("ns/b");
  orders.flush();
  CHECK(api.count("DELETECOLLECTION") == 2);
  CHECK(api.size() == 0);
}

TEST_CASE("order state: batches go on their own, when full or after the delay, and at destruction") {
  using namespace std::chrono_literals;
  const auto wait_for = [](auto done) {
    for (auto deadline = std::chrono::steady_clock::now() + 10s; !done();) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(5ms);  // polling interval, not synchronisation: the deadline decides
    }
  };
  SECTION("after the delay") {
    FakeSecrets api;
    app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), {20ms, 50});
    orders.save(state("ns/a"));
    orders.remove("ns/a");
    wait_for([&] { return api.size() == 0; });
    CHECK(api.count("DELETECOLLECTION") == 1);
  }
  SECTION("when full") {
    FakeSecrets api;
    app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), {std::chrono::hours(1), 2});
    for (const char* key : {"ns/a", "ns/b", "ns/c"}) orders.save(state(key));
    orders.remove("ns/a");
    orders.remove("ns/b");
    wait_for([&] { return api.size() == 1; });
    CHECK(api.count("DELETECOLLECTION") == 1);
  }
  SECTION("after a failed batch, again later on its own") {
    FakeSecrets api;
    api.fail_collection_deletes = 1;
    app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), {20ms, 50});
    orders.save(state("ns/a"));
    orders.remove("ns/a");
    wait_for([&] { return api.size() == 0; });
    CHECK(api.count("DELETECOLLECTION") == 2);  // the refused one, then the retry
  }
  SECTION("at destruction") {
    FakeSecrets api;
    {
      app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
      orders.save(state("ns/a"));
      orders.remove("ns/a");
      CHECK(api.size() == 1);
    }
    CHECK(api.size() == 0);
  }
}

TEST_CASE("order state: a state without an order id (an older version's) is deleted by name") {
  FakeSecrets api;
  {
    app::OrderStateStore old(api.client(), "own", core::Logger::discard(), kUnbatched);
    old.save(state("ns/a"));
  }
  auto legacy = api.get(app::OrderStateStore(api.client(), "own", core::Logger::discard(), kUnbatched).object_name("ns/a"));
  legacy["metadata"]["labels"].erase(app::kOrderIdLabel);
  api.put(legacy);
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard(), kManualBatches);
  REQUIRE(orders.load("ns/a"));
  orders.save(state("ns/b"));  // another state that must survive
  orders.remove("ns/a");
  CHECK(api.count("DELETECOLLECTION") == 1);  // at once, by name (no id to batch on)
  CHECK(api.last_collection_selector().find(app::kOrderIdLabel) == std::string::npos);
  CHECK(api.size() == 1);
  CHECK(api.get(orders.object_name("ns/b")).is_object());
}
