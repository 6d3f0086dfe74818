// OrderStateStore against a scripted API (tests/unit/kube/fakes.hpp): what it asks the API server for,
// counted per request — a first issuance must not cost a GET, a new term must still find what a
// previous leader left.
#include <catch2/catch.hpp>

#include <map>
#include <mutex>
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
  // "GET", "LIST", "POST", "PUT", "DELETE" made since the last reset_counts().
  std::size_t count(const std::string& verb) const {
    std::size_t n = 0;
    for (const auto& r : http_.requests()) {
      bool named = path_of(r.url).size() > std::string(kPrefix).size();
      std::string v = r.method == "GET" && !named ? "LIST" : r.method;
      n += v == verb;
    }
    return n - (counted_.count(verb) ? counted_.at(verb) : 0);
  }
  void reset_counts() {
    counted_.clear();
    for (const char* v : {"GET", "LIST", "POST", "PUT", "DELETE"}) counted_[v] = 0, counted_[v] = count(v);
  }
  bool fail_lists = false;

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
    if (r.method == "DELETE") {
      if (it == store_.end()) return json_response(404, status_body(404, "NotFound"));
      store_.erase(it);
      return json_response(200, status_body(200, "Success"));
    }
    auto body = json::parse(r.body);
    name = body["metadata"]["name"].get<std::string>();
    if (r.method == "POST" && store_.count(name)) return json_response(409, status_body(409, "AlreadyExists"));
    body["metadata"]["resourceVersion"] = "2";
    store_[name] = body;
    return json_response(r.method == "POST" ? 201 : 200, body);
  }

  mutable std::mutex mu_;
  std::map<std::string, json> store_;
  FakeHttp http_;
  kube::Client client_;
  std::map<std::string, std::size_t> counted_;
};

app::OrderState state(const std::string& key) {
  return app::OrderState{key, "https://ca.test/order/" + key, {"a.example"}, "-----BEGIN PRIVATE KEY-----"};
}

}  // namespace

TEST_CASE("order state: a first issuance costs one LIST per term, no GET, and a DELETE only of what was saved") {
  FakeSecrets api;
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard());
  CHECK_FALSE(orders.load("ns/a"));
  CHECK_FALSE(orders.load("ns/b"));
  CHECK(api.count("LIST") == 1);
  CHECK(api.count("GET") == 0);

  orders.save(state("ns/a"));
  CHECK(api.count("POST") == 1);
  auto loaded = orders.load("ns/a");  // saved in this term: read back
  REQUIRE(loaded);
  CHECK(loaded->order_url == "https://ca.test/order/ns/a");
  CHECK(api.count("GET") == 1);

  orders.remove("ns/a");
  orders.remove("ns/b");  // never saved: nothing to delete
  CHECK(api.count("DELETE") == 1);
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
  app::OrderStateStore writer(api.client(), "own", core::Logger::discard());
  writer.save(state("ns/a"));
  app::OrderStateStore orders(api.client(), "own", core::Logger::discard());
  REQUIRE(orders.load("ns/a"));
  CHECK_FALSE(orders.load("ns/b"));
  CHECK(api.count("GET") == 2);
  orders.remove("ns/a");
  CHECK(api.count("DELETE") == 1);
  CHECK(api.size() == 0);
}
