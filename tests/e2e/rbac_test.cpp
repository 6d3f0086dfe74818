// RBAC proof: the fake API server enforces exactly the Role/ClusterRole/bindings that the manifests
// ship (rendered with `kubectl kustomize` at test time by tests/e2e/rbac-policy), and the sidecar runs
// as the bound ServiceAccount with leader election on.
//   1. With every rule, the whole scenario passes and the API server answered no request of the
//      sidecar with 403, and every granted verb was used by some step.
//   2. With any one piece (one verb on one resource of one rule) removed, some step fails, and the
//      failure is clear: the API server refused exactly that verb/resource, the sidecar's log has a
//      warn/error line with the Forbidden message, and kube_requests_total{code="403"} counts it.
// Which rendering proves what: see tests/e2e/rbac-policy and docs/install.md ("RBAC").
#include <catch2/catch.hpp>

#include <random>
#include <sstream>

#include "http/curl_client.hpp"
#include "tests/e2e/stack.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::e2e;
using nlohmann::json;

namespace {

constexpr const char* kOwnNamespace = "ingress-nginx";  // the overlay's namespace: Role, Lease, account
constexpr const char* kIngressNamespace = "default";    // the namespaced component's watched namespace
constexpr int kShards = 4;

json run_script(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {(testing::source_dir() / "tests/e2e/rbac-policy").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = testing::run(argv, 120s);
  INFO(r.output);
  REQUIRE(r.status == 0);
  return json::parse(r.output);
}

const json& plan() {
  static const json p = run_script({"plan"});
  return p;
}

std::string sidecar_user() {
  const auto& users = plan().at("users");
  REQUIRE(users.size() == 1);
  return users[0].get<std::string>();
}

// `policy`: the rendered RBAC objects (a List), as the plan carries them.
StackOptions rbac_stack(const std::string& source, const json& policy) {
  StackOptions o;
  o.leader_elect = true;
  o.namespace_name = kOwnNamespace;
  o.sidecar_user = sidecar_user();
  o.policy = policy.dump();
  REQUIRE(o.policy.find("rbac.authorization.k8s.io") != std::string::npos);
  if (source == "namespaced") o.extra_args = {"--watch-namespace", kIngressNamespace};
  return o;
}

// A request of the fake API server's log, as RBAC sees it.
struct ApiRequest {
  std::string verb, group, resource, ns;
};

ApiRequest classify(const fake_apiserver::RequestLogEntry& e) {
  std::vector<std::string> seg;
  std::stringstream in(e.path);
  for (std::string s; std::getline(in, s, '/');)
    if (!s.empty()) seg.push_back(s);
  ApiRequest r;
  std::size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    r.group = seg[1];
    i = 3;
  } else {
    return r;  // discovery, /version
  }
  if (i < seg.size() && seg[i] == "watch") ++i;  // legacy prefix
  if (i + 2 < seg.size() && seg[i] == "namespaces") {
    r.ns = seg[i + 1];
    i += 2;
  }
  if (i >= seg.size()) return r;
  r.resource = seg[i];
  bool named = i + 1 < seg.size();
  if (i + 2 < seg.size()) r.resource += "/" + seg[i + 2];
  bool watch = e.watch || e.query.find("watch=1") != std::string::npos || e.query.find("watch=true") != std::string::npos;
  if (e.method == "GET") r.verb = watch ? "watch" : (named ? "get" : "list");
  if (e.method == "POST") r.verb = "create";
  if (e.method == "PUT") r.verb = "update";
  if (e.method == "PATCH") r.verb = "patch";
  if (e.method == "DELETE") r.verb = named ? "delete" : "deletecollection";
  return r;
}

// The piece's verb/resource, in its namespace when it comes from a Role.
bool matches(const ApiRequest& r, const json& piece) {
  return r.verb == piece.at("verb") && r.group == piece.at("group") && r.resource == piece.at("resource") &&
         (piece.at("namespace") == "" || r.ns == piece.at("namespace"));
}

std::vector<fake_apiserver::RequestLogEntry> requests_of(Stack& s, const std::string& user) {
  std::vector<fake_apiserver::RequestLogEntry> out;
  for (auto& e : s.api().request_log())
    if (e.user == user) out.push_back(std::move(e));
  return out;
}

std::string describe(const fake_apiserver::RequestLogEntry& e) {
  return e.method + " " + e.path + (e.query.empty() ? "" : "?" + e.query) + " -> " + std::to_string(e.status);
}

bool has_event(const Stack& s, const std::string& ingress, const std::string& reason, int min_count = 1) {
  for (const auto& e : s.events_for(kIngressNamespace, ingress))
    if (e.value("reason", "") == reason && e.value("count", 1) >= min_count) return true;
  return false;
}

// GET a challenge token nobody published, straight at the sidecar's responder.
int probe_unknown_token(const std::string& token) {
  http::CurlClient client;
  http::Request r;
  r.url = "http://127.0.0.1:8089/.well-known/acme-challenge/" + token;
  r.timeout = 10s;
  return static_cast<int>(client.send(r).status);
}

// The end-to-end scenario, step by step. Every wait also ends when `abort` holds (a removed permission
// was refused): run() then returns false and names the step it stopped in.
class Scenario {
 public:
  Scenario(Stack& s, std::function<bool()> abort) : s_(s), abort_(std::move(abort)) {}

  std::string step;  // the current step, for messages

  bool run() {
    const std::string user = s_.options().sidecar_user;
    step = "the sidecar takes the Lease (get, create, update leases)";
    std::string renew_time;
    if (!wait([&] {
          auto lease = s_.api().get("leases", kOwnNamespace, "acme-sidecar");
          if (!lease || lease->at("spec").value("holderIdentity", "") != "sidecar-0") return false;
          renew_time = lease->at("spec").value("renewTime", "");
          return s_.metric(0, "acme_sidecar_leader") == 1.0;
        }))
      return false;

    step = "an Ingress applied with kubectl gets a certificate, through two failed Secret writes";
    // Two refused writes of the certificate Secret: the second attempt repeats the Issuing Event (patched;
    // a failure releases the Issuing Event the sidecar holds back while an issuance may still end well).
    s_.api().fail_next({.method = "POST",
                        .path = std::string("^/api/v1/namespaces/") + kIngressNamespace + "/secrets$",
                        .count = 2,
                        .status = 503});
    s_.apply(ingress_yaml(kIngressNamespace, "web", {"web.rbac.example"}, "web-tls"));
    if (!wait([&] {
          auto sec = s_.secret(kIngressNamespace, "web-tls");
          return sec && sec->contains("data") && s_.chain_verifies(*sec);
        }, 120s))
      return false;

    step = "Events on the Ingress: Issued, and the repeated Issuing Event counted (create, patch events)";
    if (!wait([&] { return has_event(s_, "web", "Issued") && has_event(s_, "web", "Issuing", 2); })) return false;

    step = "the order state Secret is removed once the certificate is written (deletecollection secrets)";
    if (!wait([&] {
          for (const auto& sec : s_.api().list("secrets", kOwnNamespace))
            if (sec["metadata"].value("labels", json::object()).contains("acme-sidecar.io/order")) return false;
          return true;
        }))
      return false;

    step = "a challenge token not in the cache is read through from the API (get configmaps)";
    std::string token(43, 'A');
    std::mt19937 rng(std::random_device{}());
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (auto& c : token) c = alphabet[rng() % alphabet.size()];
    CHECK(probe_unknown_token(token) == 404);
    if (!wait([&] {
          for (const auto& e : requests_of(s_, user))
            if (e.method == "GET" && e.path.find("/configmaps/acme-sidecar-challenge-") != std::string::npos) return true;
          return false;
        }))
      return false;

    step = "a host added to the Ingress re-issues into the same Secret (update secrets)";
    // The next deletes of order states fail (each failed batch is retried with the next, a second
    // later): this order's state outlives it, and the next order has to overwrite it (the fallback that
    // keeps a transient API error from blocking a certificate).
    s_.api().fail_next({.method = "DELETE",
                        .path = std::string("^/api/v1/namespaces/") + kOwnNamespace + "/secrets$",
                        .count = 30,
                        .status = 503});
    s_.apply(ingress_yaml(kIngressNamespace, "web", {"web.rbac.example", "www.rbac.example"}, "web-tls"));
    if (!wait([&] {
          auto sec = s_.secret(kIngressNamespace, "web-tls");
          return sec && sec->contains("data") && Stack::leaf_names(*sec).size() == 2 && s_.chain_verifies(*sec);
        }, 120s))
      return false;

    step = "an order state left behind is overwritten by the next order (update secrets, own namespace)";
    s_.apply(ingress_yaml(kIngressNamespace, "web", {"web.rbac.example", "www.rbac.example", "api.rbac.example"},
                          "web-tls"));
    if (!wait([&] {
          auto sec = s_.secret(kIngressNamespace, "web-tls");
          if (!sec || !sec->contains("data") || Stack::leaf_names(*sec).size() != 3 || !s_.chain_verifies(*sec))
            return false;
          for (const auto& e : requests_of(s_, user))
            if (e.method == "PUT" && e.path.find("/secrets/acme-sidecar-order-") != std::string::npos) return true;
          return false;
        }, 120s))
      return false;

    step = "the Lease is renewed (update leases)";
    if (!wait([&] {
          auto lease = s_.api().get("leases", kOwnNamespace, "acme-sidecar");
          return lease && lease->at("spec").value("renewTime", "") != renew_time;
        }))
      return false;
    step = "done";
    return true;
  }

 private:
  bool wait(const std::function<bool()>& done, std::chrono::milliseconds timeout = 60s) {
    bool aborted = false;
    bool ok = testing::poll_until([&] { return (aborted = abort_()) || done(); }, timeout);
    if (aborted) return false;
    if (!ok) {
      auto log = s_.sidecar_log(0);
      FAIL("step did not complete: " << step << "\nsidecar log tail:\n" << log.substr(log.size() > 8000 ? log.size() - 8000 : 0));
    }
    return true;
  }

  Stack& s_;
  std::function<bool()> abort_;
};

void run_full(const std::string& source) {
  const std::string user = sidecar_user();
  Stack stack(rbac_stack(source, plan().at("policies").at(source)));
  Scenario scenario(stack, [] { return false; });
  bool completed = scenario.run();  // FAILs itself, naming the step, when one does not complete
  REQUIRE(completed);

  // Pebble validated through nginx and the shipped snippet, which routed to the sidecar.
  CHECK(stack.nginx_access_log().find("upstream=127.0.0.1:8089") != std::string::npos);

  auto mine = requests_of(stack, user);
  std::string refused;
  for (const auto& e : mine)
    if (e.status == 403 || e.status == 401) refused += "\n  " + describe(e);
  INFO("requests of " << user << " refused:" << refused);
  CHECK(refused.empty());
  CHECK(stack.metric(0, "acme_sidecar_kube_requests_total", {{"code", "403"}}) == std::nullopt);

  // Every piece this rendering grants (and that is proved here) was used by some step.
  for (const auto& piece : plan().at("runs")) {
    if (piece.at("source") != source) continue;
    bool used = false;
    for (const auto& e : mine)
      if (e.status != 403 && matches(classify(e), piece)) used = true;
    CAPTURE(piece.at("id").get<std::string>());
    CHECK(used);
  }
}

bool clear_log_line(const std::string& log, const json& piece) {
  const std::string verb = piece.at("verb"), res = piece.at("resource");
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    bool level = line.find("\"level\":\"warn\"") != std::string::npos || line.find("\"level\":\"error\"") != std::string::npos;
    bool names = line.find("cannot " + verb + " resource \\\"" + res + "\\\"") != std::string::npos;
    if (level && names && line.find("forbidden") != std::string::npos) return true;
  }
  return false;
}

void run_without(const json& piece) {
  const std::string user = sidecar_user();
  const std::string id = piece.at("id");
  INFO("removed: " << id << " (rendering " << piece.at("source").get<std::string>() << ")");
  Stack stack(rbac_stack(piece.at("source"), piece.at("policy")));
  auto refused = [&] {
    for (const auto& e : requests_of(stack, user))
      if (e.status == 403 && matches(classify(e), piece)) return true;
    return false;
  };
  Scenario scenario(stack, refused);
  bool completed = scenario.run();
  if (completed) {
    FAIL("removing " << id << " broke no step: the rule is unnecessary, or the scenario misses the step that needs it");
  }
  INFO("stopped in step: " << scenario.step);
  // Clear in the sidecar's log (warn/error, the API server's Forbidden message naming verb and resource)...
  CHECK(testing::poll_until([&] { return clear_log_line(stack.sidecar_log(0), piece); }, 30s));
  // ...and in its metrics.
  const std::string verb = piece.at("verb"), res = piece.at("resource");
  CHECK(testing::poll_until([&] {
    auto v = stack.metric(0, "acme_sidecar_kube_requests_total", {{"verb", verb}, {"resource", res}, {"code", "403"}});
    return v && *v >= 1.0;
  }, 30s));
  if (!clear_log_line(stack.sidecar_log(0), piece)) {
    auto log = stack.sidecar_log(0);
    UNSCOPED_INFO("sidecar log tail:\n" << log.substr(log.size() > 6000 ? log.size() - 6000 : 0));
  }
}

void run_shard(int shard) {
  const auto& p = plan();
  INFO("pieces implied by another rule and proved in another rendering: " << p.at("implied").dump());
  CHECK(p.at("unprovable").empty());
  const auto& runs = p.at("runs");
  REQUIRE(runs.size() >= static_cast<std::size_t>(kShards));
  for (std::size_t i = static_cast<std::size_t>(shard); i < runs.size(); i += kShards) {
    DYNAMIC_SECTION(runs[i].at("id").get<std::string>() << " in " << runs[i].at("source").get<std::string>()) {
      run_without(runs[i]);
    }
  }
}

}  // namespace

TEST_CASE("with exactly the RBAC of the ingress-nginx overlay the whole scenario passes without a 403") {
  run_full("ingress-nginx");
}

TEST_CASE("with the RBAC of the namespaced component the whole scenario passes without a 403") {
  run_full("namespaced");
}

// Each shard is its own ctest, so `ctest -j` spreads them over the cores.
TEST_CASE("removing any one piece of the shipped RBAC fails a step with a clear Forbidden (part 1 of 4)") { run_shard(0); }
TEST_CASE("removing any one piece of the shipped RBAC fails a step with a clear Forbidden (part 2 of 4)") { run_shard(1); }
TEST_CASE("removing any one piece of the shipped RBAC fails a step with a clear Forbidden (part 3 of 4)") { run_shard(2); }
TEST_CASE("removing any one piece of the shipped RBAC fails a step with a clear Forbidden (part 4 of 4)") { run_shard(3); }
