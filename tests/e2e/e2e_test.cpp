// End to end: Ingresses in (kubectl against the fake API server), certificates out (Pebble validating
// through nginx with the shipped snippet, to the real acme-sidecar process), Secrets written.
// Counts come from the other side: Pebble's log, nginx's access log, the fake API server's store.
#include <catch2/catch.hpp>

#include <map>
#include <sstream>

#include "crypto/x509.hpp"
#include "tests/e2e/stack.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::e2e;
using nlohmann::json;

namespace {
bool has_event(const Stack& s, const std::string& ns, const std::string& ingress, const std::string& reason) {
  for (const auto& e : s.events_for(ns, ingress))
    if (e.value("reason", "") == reason) return true;
  return false;
}
std::string annotation(const json& secret, const std::string& key) {
  return secret["metadata"].value("annotations", json::object()).value(key, "");
}
}  // namespace

TEST_CASE("an Ingress applied with kubectl gets a verified certificate with exactly its names") {
  Stack stack;
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example", "WWW.demo.example"}, "web-tls"));
  auto secret = stack.wait_secret("demo", "web-tls");
  CHECK(secret.value("type", "") == "kubernetes.io/tls");
  CHECK(Stack::leaf_names(secret) == std::vector<std::string>{"web.demo.example", "www.demo.example"});
  CHECK(stack.chain_verifies(secret));
  CHECK(secret["metadata"]["labels"].value("app.kubernetes.io/managed-by", "") == "acme-sidecar");
  CHECK(annotation(secret, "acme-sidecar.io/issuer") == stack.pebble().directory_url());
  CHECK_FALSE(annotation(secret, "acme-sidecar.io/not-after").empty());
  CHECK(Stack::tls_key(secret).find("BEGIN PRIVATE KEY") != std::string::npos);
  // Pebble validated through nginx: every validation GET reached the sidecar, none was redirected.
  CHECK(stack.pebble_count("POST /order-plz") == 1);
  auto access = stack.nginx_access_log();
  CHECK(access.find("/.well-known/acme-challenge/") != std::string::npos);
  CHECK(access.find("upstream=127.0.0.1:8089") != std::string::npos);
  CHECK(testing::poll_until([&] { return stack.metric(0, "acme_sidecar_certificate_ready",
                                                      {{"secret_namespace", "demo"}, {"secret_name", "web-tls"}}) == 1.0; },
                            30s));
  // The Event is posted after the Secret write and the readiness report, so it may still be on its way.
  CHECK(testing::poll_until([&] { return has_event(stack, "demo", "web", "Issued"); }, 30s));
  // The private key never reaches the logs.
  auto key_body = Stack::tls_key(secret).substr(40, 40);
  CHECK(stack.sidecar_log(0).find(key_body) == std::string::npos);
}

TEST_CASE("changes re-issue: hosts added, a second Ingress merged, the Secret deleted") {
  Stack stack;
  stack.apply(ingress_yaml("demo", "web", {"a.demo.example"}, "shared-tls"));
  auto first = stack.wait_secret("demo", "shared-tls");
  CHECK(Stack::leaf_names(first) == std::vector<std::string>{"a.demo.example"});

  SECTION("hosts added to the Ingress") {
    stack.apply(ingress_yaml("demo", "web", {"a.demo.example", "b.demo.example"}, "shared-tls"));
    auto s = stack.wait_secret("demo", "shared-tls", [](const json& s) { return Stack::leaf_names(s).size() == 2; });
    CHECK(Stack::leaf_names(s) == std::vector<std::string>{"a.demo.example", "b.demo.example"});
    CHECK(stack.chain_verifies(s));
    CHECK(stack.pebble_count("POST /order-plz") == 2);
  }
  SECTION("a second Ingress adds hosts to the same Secret") {
    stack.apply(ingress_yaml("demo", "api", {"api.demo.example"}, "shared-tls"));
    auto s = stack.wait_secret("demo", "shared-tls", [](const json& s) { return Stack::leaf_names(s).size() == 2; });
    CHECK(Stack::leaf_names(s) == std::vector<std::string>{"a.demo.example", "api.demo.example"});
    CHECK(annotation(s, "acme-sidecar.io/ingresses").find("demo/api") != std::string::npos);
    CHECK(annotation(s, "acme-sidecar.io/ingresses").find("demo/web") != std::string::npos);
  }
  SECTION("the Secret deleted by hand") {
    auto fp = Stack::leaf_fingerprint(first);
    auto r = stack.kubectl({"-n", "demo", "delete", "secret", "shared-tls"});
    REQUIRE(r.status == 0);
    auto s = stack.wait_secret("demo", "shared-tls",
                               [&](const json& s) { return Stack::leaf_fingerprint(s) != fp; });
    CHECK(stack.chain_verifies(s));
  }
}

TEST_CASE("a foreign Secret of the same name is never touched, and an Event says why") {
  Stack stack;
  stack.apply(
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: theirs-tls\n  namespace: demo\ntype: kubernetes.io/tls\n"
      "data:\n  tls.crt: Zm9yZWlnbg==\n  tls.key: Zm9yZWlnbg==\n");
  auto before = *stack.secret("demo", "theirs-tls");
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example"}, "theirs-tls"));
  REQUIRE(testing::poll_until([&] { return has_event(stack, "demo", "web", "Skipped"); }, 60s));
  auto after = *stack.secret("demo", "theirs-tls");
  CHECK(after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]);
  CHECK(after["data"] == before["data"]);
  CHECK(stack.pebble_count("POST /order-plz") == 0);
}

TEST_CASE("one issuance costs four Kubernetes requests as counted by the API server") {
  // Per certificate: the order state's create and delete (a deletecollection by order id, batched with
  // other orders finishing within a second: one here, where a certificate is issued alone), the Secret's
  // create, the Issued Event. Not: a GET of the target Secret (the metadata-only informer of every
  // Secret knows no Secret of that name exists; a foreign one is still read first, see the test above),
  // a GET of an order state that cannot exist (the states are listed once per term), an Issuing Event
  // the Issued one follows within its delay.
  StackOptions o;
  o.sidecar_user = "sidecar";
  // A rescan while the certificate is issued reconciles it again right after; if that comes before the
  // watch has delivered the new Secret, it is read from the API (one GET more, rightly): not counted here.
  o.rescan_interval = "1h";
  Stack stack(o);
  auto order_states_left = [&] {
    for (const auto& s : stack.api().list("secrets", "acme-sidecar"))
      if (s["metadata"].value("labels", json::object()).contains("acme-sidecar.io/order")) return true;
    return false;
  };
  // The server logs a request after it has handled it: a state already gone may not be logged yet.
  auto order_state_deletes_logged = [&] {
    int n = 0;
    for (const auto& e : stack.api().request_log())
      if (e.user == "sidecar" && e.method == "DELETE" && e.status == 200 &&
          e.path == "/api/v1/namespaces/acme-sidecar/secrets")
        ++n;
    return n;
  };
  auto order_finished = [&](const std::string& ingress) {
    return has_event(stack, "demo", ingress, "Issued") && !order_states_left() && order_state_deletes_logged() > 0;
  };
  // Warm-up: the account Secret, the informers' lists and the order-state LIST are start-up costs.
  stack.apply(ingress_yaml("demo", "warm", {"warm.demo.example"}, "warm-tls"));
  stack.wait_secret("demo", "warm-tls");
  REQUIRE(testing::poll_until([&] { return order_finished("warm"); }, 60s));
  stack.api().clear_request_log();
  auto t0 = std::chrono::steady_clock::now();
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example"}, "web-tls"));
  stack.wait_secret("demo", "web-tls");
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(testing::poll_until([&] { return order_finished("web"); }, 60s));
  std::map<std::string, int> seen;  // "METHOD resource status", the sidecar's requests only
  int total = 0;
  std::string requests;  // shown with any failure below
  for (const auto& e : stack.api().request_log()) {
    if (e.user != "sidecar" || e.watch) continue;
    auto resource = e.path.find("/secrets") != std::string::npos  ? "secrets"
                    : e.path.find("/events") != std::string::npos ? "events"
                                                                  : e.path;
    ++seen[e.method + " " + resource + " " + std::to_string(e.status)];
    ++total;
    requests += e.time + " " + e.method + " " + e.path + "?" + e.query + " " + std::to_string(e.status) + "\n";
  }
  INFO(requests);
  CHECK(seen["GET secrets 404"] == 0);
  CHECK(seen["POST secrets 201"] == 2);
  CHECK(seen["DELETE secrets 200"] == 1);
  // An issuance slower than the Issuing Event's delay (10 s) shows it: then it is written too.
  bool issuing_shown = has_event(stack, "demo", "web", "Issuing");
  if (took < 8s) CHECK_FALSE(issuing_shown);
  CHECK(seen["POST events 201"] == (issuing_shown ? 2 : 1));
  CHECK(total == (issuing_shown ? 5 : 4));
  // The order-state Secret carries our label but is not watched: never decoded, cached or reconciled.
  CHECK(stack.sidecar_log(0).find("\"secret\":\"acme-sidecar/acme-sidecar-order-") == std::string::npos);
}

TEST_CASE("a restart with every certificate valid sends nothing to the CA") {
  Stack stack;
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example"}, "web-tls"));
  stack.apply(ingress_yaml("demo", "api", {"api.demo.example"}, "api-tls"));
  auto web = stack.wait_secret("demo", "web-tls");
  auto api = stack.wait_secret("demo", "api-tls");
  auto orders = stack.pebble_count("POST /order-plz");
  CHECK(orders == 2);
  stack.stop_sidecar(0);
  // Every request Pebble handled (GET /dir included), counted from its own log.
  auto requests_before = stack.pebble_count("calling handler()");
  stack.start_sidecar(0);
  // Synced and decided: the certificates are reported ready again by the new process.
  REQUIRE(testing::poll_until([&] {
    return stack.metric(0, "acme_sidecar_certificate_ready", {{"secret_name", "web-tls"}}) == 1.0 &&
           stack.metric(0, "acme_sidecar_certificate_ready", {{"secret_name", "api-tls"}}) == 1.0;
  }, 60s));
  CHECK(stack.pebble_count("POST /order-plz") == orders);
  CHECK(stack.pebble_count("calling handler()") == requests_before);
  CHECK(stack.secret("demo", "web-tls")->at("metadata").at("resourceVersion") == web["metadata"]["resourceVersion"]);
  CHECK(stack.secret("demo", "api-tls")->at("metadata").at("resourceVersion") == api["metadata"]["resourceVersion"]);
}

TEST_CASE("short-lived certificates are renewed before they expire and the probe sees the reload") {
  StackOptions o;
  o.pebble.certificate_validity_seconds = 40;  // lifetime < 10 days: renewed with half of it left, i.e. after ~20 s
  Stack stack(o);
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example"}, "web-tls"));
  auto first = stack.wait_secret("demo", "web-tls");
  auto first_fp = Stack::leaf_fingerprint(first);
  auto first_not_after = crypto::parse_pem_chain(Stack::tls_crt(first)).front().not_after();
  stack.load_certificates();
  REQUIRE(testing::poll_until([&] {
    return stack.metric(0, "acme_sidecar_served_certificate_matches_secret", {{"host", "web.demo.example"}}) == 1.0;
  }, 30s));

  auto renewed = stack.wait_secret("demo", "web-tls",
                                   [&](const json& s) { return Stack::leaf_fingerprint(s) != first_fp; }, 90s);
  // Replaced in place, before the old one expired.
  CHECK(std::chrono::system_clock::now() < first_not_after + std::chrono::seconds(2));
  CHECK(renewed["metadata"]["uid"] == first["metadata"]["uid"]);
  CHECK(stack.chain_verifies(renewed));
  CHECK(stack.pebble_count("POST /order-plz") >= 2);
  // Renewed Secret, nginx not reloaded yet: the served certificate differs.
  REQUIRE(testing::poll_until([&] {
    return stack.metric(0, "acme_sidecar_served_certificate_matches_secret", {{"host", "web.demo.example"}}) == 0.0;
  }, 30s));
  stack.load_certificates();
  CHECK(testing::poll_until([&] {
    return stack.metric(0, "acme_sidecar_served_certificate_matches_secret", {{"host", "web.demo.example"}}) == 1.0;
  }, 30s));
}

TEST_CASE("a misrouted controller fails fast with an Event and no validation attempt at the CA") {
  StackOptions o;
  o.acme_snippet = false;
  Stack stack(o);
  stack.apply(ingress_yaml("demo", "web", {"web.demo.example"}, "web-tls"));
  REQUIRE(testing::poll_until([&] { return has_event(stack, "demo", "web", "Failed"); }, 60s));
  bool names_fix = false;
  for (const auto& e : stack.events_for("demo", "web"))
    if (e.value("message", "").find("acme-challenge") != std::string::npos) names_fix = true;
  CHECK(names_fix);
  CHECK(stack.pebble_count("POST /chalZ/") == 0);  // the CA was never asked to validate
  CHECK_FALSE(stack.secret("demo", "web-tls").has_value());
}

TEST_CASE("malformed Ingresses are survived while a good one in the same batch is issued") {
  Stack stack;
  auto& api = stack.api();
  auto ing = [](const std::string& name, json spec) {
    return json{{"apiVersion", "networking.k8s.io/v1"},
                {"kind", "Ingress"},
                {"metadata", {{"name", name}, {"namespace", "demo"}}},
                {"spec", std::move(spec)}};
  };
  std::vector<std::string> many;
  for (int i = 0; i < 300; ++i) many.push_back("h" + std::to_string(i) + ".demo.example");
  // Seeded straight into the store: the API would reject some of these, old clusters hold them anyway.
  api.put("ingresses", ing("no-spec-tls", {{"ingressClassName", "nginx"}}));
  api.put("ingresses", ing("tls-not-array", {{"ingressClassName", "nginx"}, {"tls", "oops"}}));
  api.put("ingresses", ing("hosts-wrong-type", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", 42}, {"secretName", "x-tls"}}}}}));
  api.put("ingresses", ing("host-number", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", {1, true, nullptr}}, {"secretName", "y-tls"}}}}}));
  api.put("ingresses", ing("wildcard-ip", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", {"*.demo.example", "10.0.0.1"}}, {"secretName", "w-tls"}}}}}));
  api.put("ingresses", ing("unicode", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", {"bücher.demo.example", ""}}, {"secretName", "u-tls"}}}}}));
  api.put("ingresses", ing("too-many", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", many}, {"secretName", "many-tls"}}}}}));
  api.put("ingresses", ing("no-secret", {{"ingressClassName", "nginx"}, {"tls", {{{"hosts", {"n.demo.example"}}}}}}));
  api.put("ingresses", ing("class-number", {{"ingressClassName", 7}, {"tls", {{{"hosts", {"c.demo.example"}}, {"secretName", "c-tls"}}}}}));
  stack.apply(ingress_yaml("demo", "good", {"good.demo.example"}, "good-tls"));

  auto good = stack.wait_secret("demo", "good-tls");
  CHECK(stack.chain_verifies(good));
  CHECK(stack.sidecar(0).running());
  for (const char* s : {"x-tls", "y-tls", "w-tls", "u-tls", "many-tls", "c-tls"}) {
    CAPTURE(s);
    CHECK_FALSE(stack.secret("demo", s).has_value());
  }
  // Dropped names are reported, never sent to the CA; 300 names are refused, not truncated.
  REQUIRE(testing::poll_until([&] { return has_event(stack, "demo", "wildcard-ip", "NameRejected"); }, 30s));
  CHECK(testing::poll_until([&] { return has_event(stack, "demo", "too-many", "Failed"); }, 30s));
  CHECK(stack.pebble_count("POST /order-plz") == 1);  // only the good certificate went to the CA
}

TEST_CASE("two replicas: one leader, both answer challenges, and a killed leader's order is resumed") {
  StackOptions o;
  o.replicas = 2;
  o.leader_elect = true;
  Stack stack(o);
  std::string leader;
  REQUIRE(testing::poll_until([&] {
    auto lease = stack.api().get("leases", "acme-sidecar", "acme-sidecar");
    if (!lease) return false;
    leader = lease->at("spec").value("holderIdentity", "");
    return !leader.empty();
  }, 60s));
  const int leader_index = leader == "sidecar-0" ? 0 : 1;
  const int follower_index = 1 - leader_index;
  // The Lease is written before the elector's callback sets the gauge: poll, as for the follower.
  CHECK(testing::poll_until([&] { return stack.metric(leader_index, "acme_sidecar_leader") == 1.0; }, 30s));
  CHECK(testing::poll_until([&] { return stack.metric(follower_index, "acme_sidecar_leader") == 0.0; }, 30s));

  stack.apply(ingress_yaml("demo", "web", {"web.demo.example", "www.demo.example", "api.demo.example"}, "web-tls"));
  // Kill the leader in the window between finalize and the Secret write.
  REQUIRE(testing::poll_until(
      [&] { return stack.sidecar_log(leader_index).find("finalized ACME order") != std::string::npos; }, 90s));
  stack.kill_sidecar(leader_index);
  INFO("killed " << leader << "; Secret already written: " << stack.secret("demo", "web-tls").has_value());

  auto secret = stack.wait_secret("demo", "web-tls", {}, 120s);
  CHECK(stack.chain_verifies(secret));
  // One order, one finalize: the survivor resumed the order instead of starting another.
  CHECK(stack.pebble_count("POST /order-plz") == 1);
  CHECK(stack.pebble_count("POST /finalize-order/") == 1);
  auto survivor_log = stack.sidecar_log(follower_index);
  if (stack.secret("demo", "web-tls") && survivor_log.find("resuming order") == std::string::npos) {
    WARN("the leader wrote the Secret before it was killed; resume not exercised this run");
  } else {
    CHECK(survivor_log.find("resuming order") != std::string::npos);
  }
  // Pebble validated each token several times through nginx, which spread the requests over both replicas.
  auto access = stack.nginx_access_log();
  std::size_t to0 = 0, to1 = 0;
  std::istringstream in(access);
  for (std::string line; std::getline(in, line);) {
    if (line.find("/.well-known/acme-challenge/") == std::string::npos) continue;
    if (line.find("upstream=127.0.0.1:8089") != std::string::npos) ++to0;
    if (line.find("upstream=127.0.0.1:8090") != std::string::npos) ++to1;
  }
  INFO("challenge requests answered: sidecar-0 " << to0 << ", sidecar-1 " << to1);
  CHECK(to0 > 0);
  CHECK(to1 > 0);
}
