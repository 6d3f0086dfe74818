// Conformance: the standalone fake-apiserver binary driven by the real kubectl (v1.32), with validation on.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace {

using json = nlohmann::json;
namespace t = acme_sidecar::testing;
using namespace std::chrono_literals;

const char* kKubectl = "/usr/bin/kubectl";

const char* kPolicy = R"({"users": {"alice": [
  {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["configmaps"], "namespaces": ["default"]}
]}})";

// One fake-apiserver process plus kubectl runs against the kubeconfig it writes.
class Cluster {
 public:
  Cluster() {
    t::write_file(dir / "policy.json", kPolicy);
    server_ = std::make_unique<t::Subprocess>(t::Subprocess::Options{
        {FAKE_APISERVER_BIN, "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0", "--dir",
         (dir / "api").string(), "--token", "alice=alice-token", "--policy", (dir / "policy.json").string(),
         "--bookmark-interval", "1"},
        {},
        dir / "server.log",
        {}});
    REQUIRE(t::poll_until([&] { return std::filesystem::exists(dir / "api" / "ready"); }, 20s));
    ready = json::parse(t::read_file(dir / "api" / "ready"));
    std::filesystem::create_directories(dir / "home");
  }
  ~Cluster() { server_->stop(2000ms); }
  int stop_server() { return server_->stop(5000ms); }

  t::RunResult kubectl(std::vector<std::string> args, const std::string& user = "", const std::string& stdin_data = "") {
    std::vector<std::string> argv = {kKubectl, "--kubeconfig",
                                     (dir / "api" / (user.empty() ? "kubeconfig" : "kubeconfig-" + user)).string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return t::run(argv, 60s, env(), stdin_data);
  }
  std::vector<std::pair<std::string, std::string>> env() const {
    // A private HOME keeps kubectl's discovery cache per test.
    return {{"HOME", (dir / "home").string()}, {"KUBECONFIG", ""}};
  }
  std::string file(const std::string& name, const std::string& content) {
    t::write_file(dir / name, content);
    return (dir / name).string();
  }
  json requests() {
    httplib::Client c("127.0.0.1", ready["control_port"].get<int>());
    auto r = c.Get("/requests");
    REQUIRE(r);
    return json::parse(r->body);
  }

  t::TempDir dir{"fake-apiserver-kubectl"};
  json ready;

 private:
  std::unique_ptr<t::Subprocess> server_;
};

const char* kManifest = R"(apiVersion: v1
kind: Secret
metadata:
  name: s1
  labels:
    app: demo
stringData:
  password: hunter2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: c1
  labels:
    app: other
data:
  a: b
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  labels:
    app: demo
spec:
  ingressClassName: nginx
  tls:
  - hosts: [a.example.com]
    secretName: web-tls
  rules:
  - host: a.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
)";

bool have_kubectl() { return std::filesystem::exists(kKubectl); }

}  // namespace

TEST_CASE("fake_apiserver kubectl: create -f, get, list -o json, label selectors, delete", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) {
    WARN("kubectl not installed; skipped");
    return;
  }
  Cluster c;
  auto r = c.kubectl({"create", "-f", c.file("m.yaml", kManifest)});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("secret/s1 created") != std::string::npos);
  CHECK(r.output.find("ingress.networking.k8s.io/web created") != std::string::npos);
  // Without --validate=false kubectl asked for server-side strict validation.
  bool strict = false;
  for (const auto& e : c.requests()) strict |= e["method"] == "POST" && e["query"].get<std::string>().find("fieldValidation=Strict") != std::string::npos;
  CHECK(strict);

  r = c.kubectl({"get", "secret", "s1", "-o", "json"});
  REQUIRE(r.status == 0);
  auto s = json::parse(r.output);
  CHECK(s["data"]["password"] == "aHVudGVyMg==");
  r = c.kubectl({"get", "secrets,configmaps,ingresses", "-o", "json"});
  REQUIRE(r.status == 0);
  CHECK(json::parse(r.output)["items"].size() == 3);
  r = c.kubectl({"get", "secrets", "-A", "-o", "name"});
  CHECK(r.output.find("secret/s1") != std::string::npos);
  r = c.kubectl({"get", "secrets,configmaps,ingresses", "-l", "app=demo", "-o", "name"});
  REQUIRE(r.status == 0);
  CHECK(r.output.find("secret/s1") != std::string::npos);
  CHECK(r.output.find("ingress.networking.k8s.io/web") != std::string::npos);
  CHECK(r.output.find("configmap/c1") == std::string::npos);
  r = c.kubectl({"get", "configmaps", "-l", "app notin (demo)", "-o", "name"});
  CHECK(r.output.find("configmap/c1") != std::string::npos);
  r = c.kubectl({"get", "secrets"});
  CHECK(r.output.find("s1") != std::string::npos);
  // Server-side printing gives the real columns.
  CHECK(r.output.find("TYPE") != std::string::npos);
  CHECK(r.output.find("DATA") != std::string::npos);
  r = c.kubectl({"get", "ingress"});
  CHECK(r.output.find("CLASS") != std::string::npos);
  CHECK(r.output.find("a.example.com") != std::string::npos);

  r = c.kubectl({"create", "-f", c.file("m2.yaml", kManifest)});
  CHECK(r.status != 0);
  CHECK(r.output.find("AlreadyExists") != std::string::npos);

  r = c.kubectl({"delete", "secret", "s1"});
  CHECK(r.status == 0);
  CHECK(r.output.find("secret \"s1\" deleted") != std::string::npos);
  r = c.kubectl({"get", "secret", "s1"});
  CHECK(r.status != 0);
  CHECK(r.output.find("NotFound") != std::string::npos);
  r = c.kubectl({"delete", "-f", c.file("m3.yaml", kManifest), "--ignore-not-found"});
  CHECK(r.status == 0);
}

TEST_CASE("fake_apiserver kubectl: apply -f twice - the second apply patches", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  std::string path = c.file("m.yaml", kManifest);
  auto r = c.kubectl({"apply", "-f", path});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("secret/s1 created") != std::string::npos);
  std::string changed = kManifest;
  changed.replace(changed.find("hunter2"), 7, "hunter3");
  changed.replace(changed.find("a.example.com\n    http"), 13, "b.example.com");
  r = c.kubectl({"apply", "-f", c.file("m.yaml", changed)});
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("secret/s1 configured") != std::string::npos);
  CHECK(r.output.find("configmap/c1 unchanged") != std::string::npos);
  CHECK(r.output.find("ingress.networking.k8s.io/web configured") != std::string::npos);
  int patches = 0;
  for (const auto& e : c.requests()) {
    if (e["method"] == "PATCH") {
      ++patches;
      CHECK(e["status"] == 200);
      CHECK(e["content_type"] == "application/strategic-merge-patch+json");
    }
  }
  CHECK(patches == 2);
  r = c.kubectl({"get", "ingress", "web", "-o", "json"});
  auto ing = json::parse(r.output);
  CHECK(ing["spec"]["rules"][0]["host"] == "b.example.com");
  CHECK(ing["metadata"]["generation"] == 2);
  CHECK(ing["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
  r = c.kubectl({"get", "secret", "s1", "-o", "jsonpath={.data.password}"});
  CHECK(r.output == "aHVudGVyMw==");
}

TEST_CASE("fake_apiserver kubectl: get -w shows a change as it happens", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  REQUIRE(c.kubectl({"create", "-f", c.file("m.yaml", kManifest)}).status == 0);
  t::Subprocess watch({{kKubectl, "--kubeconfig", (c.dir / "api" / "kubeconfig").string(), "get", "configmaps", "-w",
                        "-o", "custom-columns=NAME:.metadata.name,VALUE:.data.a", "--no-headers"},
                       c.env(),
                       c.dir / "watch.log",
                       {}});
  REQUIRE(t::poll_until([&] { return t::count_in_file(c.dir / "watch.log", "c1") >= 1; }, 30s));
  // Wait until kubectl's watch request is in, so the change is seen as an event.
  REQUIRE(t::poll_until(
      [&] {
        for (const auto& e : c.requests()) {
          if (e["watch"] == true && e["path"].get<std::string>().find("configmaps") != std::string::npos) return true;
        }
        return false;
      },
      30s));
  REQUIRE(c.kubectl({"patch", "configmap", "c1", "--type=merge", "-p", R"({"data":{"a":"changed"}})"}).status == 0);
  CHECK(t::poll_until([&] { return t::count_in_file(c.dir / "watch.log", "changed") >= 1; }, 30s));
  REQUIRE(c.kubectl({"create", "-f", c.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c2\ndata:\n  a: fresh\n")})
              .status == 0);
  CHECK(t::poll_until([&] { return t::count_in_file(c.dir / "watch.log", "fresh") >= 1; }, 30s));
  watch.stop(2000ms);
}

TEST_CASE("fake_apiserver kubectl: replace, and 409 on a stale resourceVersion", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  REQUIRE(c.kubectl({"create", "-f", c.file("m.yaml", kManifest)}).status == 0);
  auto r = c.kubectl({"get", "configmap", "c1", "-o", "json"});
  REQUIRE(r.status == 0);
  json cm = json::parse(r.output);
  cm["data"]["a"] = "replaced";
  r = c.kubectl({"replace", "-f", c.file("cm.json", cm.dump())});
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("configmap/c1 replaced") != std::string::npos);
  cm["data"]["a"] = "stale";  // still the old resourceVersion
  r = c.kubectl({"replace", "-f", c.file("cm2.json", cm.dump())});
  CHECK(r.status != 0);
  CHECK(r.output.find("Conflict") != std::string::npos);
  CHECK(r.output.find("the object has been modified") != std::string::npos);
  r = c.kubectl({"get", "configmap", "c1", "-o", "jsonpath={.data.a}"});
  CHECK(r.output == "replaced");
}

TEST_CASE("fake_apiserver kubectl: patch --type=merge and --type=json", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  REQUIRE(c.kubectl({"create", "-f", c.file("m.yaml", kManifest)}).status == 0);
  auto r = c.kubectl({"patch", "secret", "s1", "--type=merge", "-p", R"({"metadata":{"labels":{"extra":"yes"}}})"});
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("secret/s1 patched") != std::string::npos);
  r = c.kubectl({"get", "secrets", "-l", "extra=yes", "-o", "name"});
  CHECK(r.output.find("secret/s1") != std::string::npos);
  r = c.kubectl({"patch", "configmap", "c1", "--type=json", "-p", R"([{"op":"replace","path":"/data/a","value":"j"}])"});
  CHECK(r.status == 0);
  r = c.kubectl({"label", "configmap", "c1", "tier=x"});
  CHECK(r.status == 0);
  r = c.kubectl({"get", "configmap", "c1", "-o", "json"});
  auto cm = json::parse(r.output);
  CHECK(cm["data"]["a"] == "j");
  CHECK(cm["metadata"]["labels"]["tier"] == "x");
}

TEST_CASE("fake_apiserver kubectl: 403 under a policy", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  REQUIRE(c.kubectl({"create", "-f", c.file("m.yaml", kManifest)}).status == 0);
  auto r = c.kubectl({"get", "secret", "s1"}, "alice");
  CHECK(r.status != 0);
  CHECK(r.output.find("Error from server (Forbidden): secrets \"s1\" is forbidden: User \"alice\" cannot get resource "
                      "\"secrets\" in API group \"\" in the namespace \"default\"") != std::string::npos);
  r = c.kubectl({"get", "configmaps", "-o", "name"}, "alice");
  CHECK(r.status == 0);
  CHECK(r.output.find("configmap/c1") != std::string::npos);
  r = c.kubectl({"delete", "configmap", "c1"}, "alice");
  CHECK(r.status != 0);
  CHECK(r.output.find("cannot delete resource \"configmaps\"") != std::string::npos);
}

TEST_CASE("fake_apiserver kubectl: create secret|configmap|namespace generators (protobuf bodies)",
          "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  auto r = c.kubectl({"create", "namespace", "team"});
  INFO(r.output);
  CHECK(r.status == 0);
  r = c.kubectl({"create", "secret", "generic", "g", "-n", "team", "--from-literal=user=admin", "--type=example.com/x"});
  CHECK(r.status == 0);
  r = c.kubectl({"get", "secret", "g", "-n", "team", "-o", "json"});
  REQUIRE(r.status == 0);
  auto s = json::parse(r.output);
  CHECK(s["data"]["user"] == "YWRtaW4=");
  CHECK(s["type"] == "example.com/x");
  r = c.kubectl({"create", "configmap", "cm", "--from-literal=a=b"});
  CHECK(r.status == 0);
  CHECK(c.kubectl({"get", "configmap", "cm", "-o", "jsonpath={.data.a}"}).output == "b");
  // Kinds without a protobuf decoder get a clear 415 pointing at the -f form.
  r = c.kubectl({"create", "ingress", "web", "--rule=a.example.com/=svc:80"});
  CHECK(r.status != 0);
  CHECK(r.output.find("use kubectl create/apply -f") != std::string::npos);
  r = c.kubectl({"create", "ingress", "web", "--rule=a.example.com/=svc:80", "--dry-run=client", "-o", "yaml"});
  REQUIRE(r.status == 0);
  r = c.kubectl({"create", "-f", c.file("ing.yaml", r.output)});
  CHECK(r.status == 0);
}

TEST_CASE("fake_apiserver kubectl: the shipped RBAC manifest as policy, checked with auth can-i", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  auto rbac = t::source_dir() / "manifests" / "base" / "rbac.yaml";
  if (!std::filesystem::exists(rbac)) {
    WARN("manifests/base/rbac.yaml not present; skipped");
    return;
  }
  // The base manifest leaves the ServiceAccount to the overlays: these are its placeholders.
  const std::string sa = "system:serviceaccount:INGRESS-CONTROLLER-NAMESPACE:INGRESS-CONTROLLER-SERVICE-ACCOUNT";
  t::TempDir dir{"fake-apiserver-rbac"};
  t::Subprocess server({{FAKE_APISERVER_BIN, "--listen", "127.0.0.1:0", "--dir", (dir / "api").string(), "--token",
                         sa + "=sa-token", "--policy", rbac.string(), "--policy-namespace", "kube-system"},
                        {},
                        dir / "server.log",
                        {}});
  REQUIRE(t::poll_until([&] { return std::filesystem::exists(dir / "api" / "ready"); }, 20s));
  std::filesystem::create_directories(dir / "home");
  auto can_i = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {kKubectl, "--kubeconfig", (dir / "api" / ("kubeconfig-" + sa)).string(), "auth", "can-i"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = t::run(argv, 60s, {{"HOME", (dir / "home").string()}});
    INFO(r.output);
    return r.status == 0 && r.output.find("yes") != std::string::npos;  // stderr may carry warnings first
  };
  CHECK(can_i({"watch", "ingresses.networking.k8s.io", "--all-namespaces"}));
  CHECK(can_i({"list", "ingressclasses.networking.k8s.io"}));
  CHECK(can_i({"create", "secrets", "-n", "default"}));
  CHECK(can_i({"update", "secrets", "-n", "team-a"}));
  CHECK(!can_i({"delete", "secrets", "-n", "default"}));
  CHECK(!can_i({"update", "ingresses.networking.k8s.io", "-n", "default"}));
  CHECK(can_i({"update", "leases.coordination.k8s.io", "-n", "kube-system"}));
  CHECK(!can_i({"update", "leases.coordination.k8s.io", "-n", "default"}));
  CHECK(can_i({"create", "events", "-n", "default"}));
  // And the same policy guards real requests.
  auto r = t::run({kKubectl, "--kubeconfig", (dir / "api" / ("kubeconfig-" + sa)).string(), "get", "configmaps", "-n",
                   "default"},
                  60s, {{"HOME", (dir / "home").string()}});
  CHECK(r.status != 0);
  CHECK(r.output.find("Forbidden") != std::string::npos);
  r = t::run({kKubectl, "--kubeconfig", (dir / "api" / ("kubeconfig-" + sa)).string(), "get", "configmaps", "-n",
              "kube-system"},
             60s, {{"HOME", (dir / "home").string()}});
  CHECK(r.status == 0);
  server.stop(2000ms);
}

TEST_CASE("fake_apiserver kubectl: --dry-run=server stores nothing", "[fake_apiserver][kubectl]") {
  if (!have_kubectl()) return;
  Cluster c;
  auto r = c.kubectl({"create", "-f", c.file("m.yaml", kManifest), "--dry-run=server"});
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("secret/s1 created (server dry run)") != std::string::npos);
  r = c.kubectl({"get", "secrets,configmaps,ingresses", "-o", "name"});
  CHECK(r.output.find("s1") == std::string::npos);
}

TEST_CASE("fake_apiserver binary: SIGTERM stops it promptly with watches open", "[fake_apiserver][kubectl]") {
  Cluster c;
  httplib::SSLClient client("127.0.0.1", c.ready["port"].get<int>());
  client.set_ca_cert_path((c.dir / "api" / "ca.crt").c_str());
  client.enable_server_certificate_verification(true);
  client.set_bearer_token_auth(c.ready["admin_token"].get<std::string>().c_str());
  std::atomic<bool> ended{false};
  std::thread watcher([&] {
    client.Get("/api/v1/secrets?watch=true", [](const char*, size_t) { return true; });
    ended = true;
  });
  REQUIRE(t::poll_until(
      [&] {
        for (const auto& e : c.requests()) {
          if (e["watch"] == true) return true;
        }
        return false;
      },
      20s));
  auto t0 = std::chrono::steady_clock::now();
  int status = c.stop_server();
  CHECK(status == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);  // well before the 5 s SIGKILL grace
  CHECK(t::poll_until([&] { return ended.load(); }, 20s));
  watcher.join();
}
