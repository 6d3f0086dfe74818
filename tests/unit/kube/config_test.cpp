#include "kube/config.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include "core/error.hpp"

using namespace acme_sidecar;
namespace fs = std::filesystem;

namespace {
struct Dir {
  fs::path path;
  Dir() {
    static int n = 0;
    path = fs::temp_directory_path() / ("kube-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    fs::create_directories(path);
  }
  ~Dir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name, std::ios::binary | std::ios::trunc) << content;
    return path / name;
  }
};

kube::Getenv env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

core::ErrorKind kind_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const core::Error& e) {
    return e.kind();
  }
  return core::ErrorKind::Internal;
}

const char* kKubeconfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: Q0EtUEVN
- name: c2
  cluster:
    server: https://10.0.0.2:443
    certificate-authority: ca.pem
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context: {cluster: c1, user: tok, namespace: team}
- name: prod
  context: {cluster: c2, user: cert}
users:
- name: tok
  user: {token: sekret}
- name: cert
  user:
    client-certificate: certs/client.crt
    client-key-data: S0VZ
)";
}  // namespace

TEST_CASE("kubeconfig: current context with token and inline CA", "[kube][config]") {
  Dir d;
  auto c = kube::load_kubeconfig(d.write("config", kKubeconfig));
  CHECK(c.server == "https://127.0.0.1:6443");
  CHECK(c.tls.ca_pem == "CA-PEM");
  CHECK_FALSE(c.tls.insecure_skip_verify);
  CHECK(c.authorization() == "Bearer sekret");
  CHECK(c.namespace_name == "team");
}

TEST_CASE("kubeconfig: named context with files relative to the kubeconfig", "[kube][config]") {
  Dir d;
  d.write("ca.pem", "FILE-CA");
  fs::create_directories(d.path / "certs");
  d.write("certs/client.crt", "CLIENT-CERT");
  auto c = kube::load_kubeconfig(d.write("config", kKubeconfig), "prod");
  CHECK(c.server == "https://10.0.0.2:443");
  CHECK(c.tls.ca_file == (d.path / "ca.pem").string());
  CHECK(c.tls.insecure_skip_verify);
  CHECK(c.tls.client_cert_pem == "CLIENT-CERT");
  CHECK(c.tls.client_key_pem == "KEY");
  CHECK(c.authorization().empty());
}

TEST_CASE("kubeconfig: bad input gives Config errors", "[kube][config]") {
  Dir d;
  using core::ErrorKind;
  CHECK(kind_of([&] { kube::load_kubeconfig(d.path / "missing"); }) == ErrorKind::Config);
  CHECK(kind_of([&] { kube::load_kubeconfig(d.write("a", "::: not yaml [")); }) == ErrorKind::Config);
  CHECK(kind_of([&] { kube::load_kubeconfig(d.write("b", "- a list")); }) == ErrorKind::Config);
  CHECK(kind_of([&] { kube::load_kubeconfig(d.write("c", kKubeconfig), "nope"); }) == ErrorKind::Config);
  // prod's certificate file is missing here.
  CHECK(kind_of([&] { kube::load_kubeconfig(d.write("d", kKubeconfig), "prod"); }) == ErrorKind::Config);
  CHECK(kind_of([&] {
          kube::load_kubeconfig(d.write("e", R"(current-context: x
contexts: [{name: x, context: {cluster: c}}]
clusters: [{name: c, cluster: {server: "ftp://x"}}])"));
        }) == ErrorKind::Config);
  CHECK(kind_of([&] {
          kube::load_kubeconfig(d.write("f", R"(current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://x", certificate-authority-data: "!!!"}}]
users: [{name: u, user: {token: t}}])"));
        }) == ErrorKind::Config);
  CHECK(kind_of([&] {
          kube::load_kubeconfig(d.write("g", R"(current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://x"}}]
users: [{name: u, user: {exec: {command: aws}}}])"));
        }) == ErrorKind::Config);
  CHECK(kind_of([&] {
          kube::load_kubeconfig(d.write("h", R"(current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: {nested: map}}}])"));
        }) == ErrorKind::Config);
}

TEST_CASE("in-cluster config from injected environment and paths", "[kube][config]") {
  Dir d;
  kube::InClusterPaths paths{d.write("token", "tok-1\n"), d.write("ca.crt", "SA-CA"), d.write("namespace", "ingress\n")};
  auto env = env_of({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}});
  auto c = kube::in_cluster_config(env, paths);
  CHECK(c.server == "https://10.96.0.1:443");
  CHECK(c.tls.ca_pem == "SA-CA");
  CHECK(c.namespace_name == "ingress");
  CHECK(c.authorization() == "Bearer tok-1");

  // Bound tokens rotate: the file is re-read when it changes.
  d.write("token", "tok-2-longer\n");
  CHECK(c.authorization() == "Bearer tok-2-longer");
  // A brief gap while the kubelet swaps the file keeps the last token.
  fs::remove(d.path / "token");
  CHECK(c.authorization() == "Bearer tok-2-longer");

  auto v6 = kube::in_cluster_config(
      env_of({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}),
      kube::InClusterPaths{d.write("token", "t"), paths.ca, paths.namespace_file});
  CHECK(v6.server == "https://[fd00::1]:443");

  CHECK_FALSE(kube::in_cluster_available(env_of({})));
  CHECK(kind_of([&] { kube::in_cluster_config(env_of({}), paths); }) == core::ErrorKind::Config);
  CHECK(kind_of([&] {
          kube::in_cluster_config(env, kube::InClusterPaths{d.path / "none", paths.ca, paths.namespace_file});
        }) == core::ErrorKind::Unauthorized);
}

TEST_CASE("default config prefers the flag, then in-cluster, then KUBECONFIG", "[kube][config]") {
  Dir d;
  auto kc = d.write("config", kKubeconfig);
  kube::InClusterPaths paths{d.write("token", "t"), d.write("ca.crt", "CA"), d.write("namespace", "ns")};
  auto incluster = env_of({{"KUBERNETES_SERVICE_HOST", "1.2.3.4"}, {"KUBERNETES_SERVICE_PORT", "6443"},
                           {"KUBECONFIG", kc.string()}});
  CHECK(kube::load_default_config(kc.string(), "", incluster, paths).server == "https://127.0.0.1:6443");
  CHECK(kube::load_default_config("", "", incluster, paths).server == "https://1.2.3.4:6443");
  CHECK(kube::load_default_config("", "", env_of({{"KUBECONFIG", kc.string() + ":/other"}}), paths).server ==
        "https://127.0.0.1:6443");
  CHECK(kind_of([&] { kube::load_default_config("", "", env_of({}), paths); }) == core::ErrorKind::Config);
}

TEST_CASE("base64 decoding", "[kube][config]") {
  CHECK(kube::base64_decode("aGVsbG8=") == "hello");
  CHECK(kube::base64_decode("aGVsbG8") == "hello");
  CHECK(kube::base64_decode("aGVs\nbG8h") == "hello!");
  CHECK(kube::base64_decode("") == "");
  CHECK_THROWS_AS(kube::base64_decode("a$b"), core::Error);
  CHECK_THROWS_AS(kube::base64_decode("aGV=sbG8"), core::Error);
  CHECK_THROWS_AS(kube::base64_decode("a"), core::Error);
}
