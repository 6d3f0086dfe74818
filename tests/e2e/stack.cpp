#include "tests/e2e/stack.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "crypto/encoding.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"
#include "http/curl_client.hpp"

namespace acme_sidecar::e2e {

using nlohmann::json;
using testing::read_file;
using testing::write_file;

namespace {
constexpr int kHttpPort = 80;
constexpr int kHttpsPort = 443;
constexpr int kApiPort = 6443;

std::string sidecar_binary() { return (testing::binary_dir() / "sidecar" / "acme-sidecar").string(); }

std::string run_checked(const std::vector<std::string>& argv) {
  auto r = testing::run(argv, 60s);
  if (r.status != 0) FAIL("command failed: " << argv.front() << " → " << r.output);
  return r.output;
}

std::filesystem::path sidecar_log_path(const std::filesystem::path& dir, int i) {
  return dir / ("sidecar-" + std::to_string(i) + ".log");
}
}  // namespace

bool is_managed_tls(const json& s) {
  if (!s.contains("metadata")) return false;
  auto labels = s["metadata"].value("labels", json::object());
  return labels.value("app.kubernetes.io/managed-by", "") == "acme-sidecar" &&
         s.value("type", "") == "kubernetes.io/tls";
}

std::string ingress_yaml(const std::string& ns, const std::string& name, const std::vector<std::string>& hosts,
                         const std::string& secret, const std::string& ingress_class) {
  std::ostringstream y;
  y << "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: " << name << "\n  namespace: " << ns
    << "\nspec:\n  ingressClassName: " << ingress_class << "\n  tls:\n  - secretName: " << secret << "\n    hosts:\n";
  for (const auto& h : hosts) y << "    - " << h << "\n";
  y << "  rules:\n";
  for (auto h : hosts) {
    // Rule hosts must be lower-case RFC 1123 names; TLS hosts are taken as written.
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
    y << "  - host: " << h
      << "\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend:\n"
         "          service:\n            name: web\n            port:\n              number: 80\n";
  }
  return y.str();
}

Stack::Stack(StackOptions options) : options_(std::move(options)) {
  dir_ = std::make_unique<testing::TempDir>("acme-sidecar-e2e");
  testing::PebbleOptions po = options_.pebble;
  po.http_port = kHttpPort;  // Pebble validates through nginx, like a CA through the controller
  pebble_ = std::make_unique<testing::PebbleRig>(po);
  remember_root();

  fake_apiserver::Options ao;
  ao.port = kApiPort;
  ao.control_port = 0;
  ao.bookmark_interval = 5s;
  ao.policy = options_.policy;
  if (!options_.sidecar_user.empty()) ao.tokens = {{options_.sidecar_user, "sidecar-token"}};
  api_ = std::make_unique<fake_apiserver::FakeApiServer>(ao);
  api_->start();
  api_->write_files((dir() / "kube").string());
  create_namespaces();

  start_nginx();
  sidecars_.resize(static_cast<std::size_t>(options_.replicas));
  if (options_.start_sidecars)
    for (int i = 0; i < options_.replicas; ++i) start_sidecar(i);
}

Stack::~Stack() {
  for (auto& s : sidecars_)
    if (s) s->stop(3000ms);
  if (nginx_) nginx_->stop(3000ms);
  if (api_) api_->stop();
}

void Stack::create_namespaces() const {
  for (const auto& ns : std::set<std::string>{"acme-sidecar", "demo", options_.namespace_name}) {
    if (!api_->get("namespaces", "", ns))
      api_->put("namespaces", json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  }
}

void Stack::remember_root() {
  std::string root;
  testing::poll_until(
      [&] {
        try {
          root = pebble_->root_pem();
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      20s);
  REQUIRE_FALSE(root.empty());
  roots_.push_back(root);
}

void Stack::pebble_restart() {
  pebble_->restart();
  remember_root();
}

std::size_t Stack::pebble_count(const std::string& needle) const {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(pebble_->work_dir())) {
    auto name = e.path().filename().string();
    if (name.rfind("pebble-", 0) == 0 && e.path().extension() == ".log") n += testing::count_in_file(e.path(), needle);
  }
  return n;
}

std::string Stack::directory_url() const {
  return directory_override_.empty() ? pebble_->directory_url() : directory_override_;
}

void Stack::start_nginx() {
  auto nd = dir() / "nginx";
  for (auto sub : {"tmp", "certs", "servers"}) std::filesystem::create_directories(nd / sub);
  run_checked({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days",
               "2", "-subj", "/CN=default", "-keyout", (nd / "certs/default.key").string(), "-out",
               (nd / "certs/default.crt").string()});
  // The routing snippet exactly as the ingress-nginx overlay ships it (rendered once per process: tests
  // that start many stacks would otherwise spend most of their time in kubectl kustomize).
  static const testing::RunResult snippet =
      testing::run({(testing::source_dir() / "tests/manifests/extract-snippet").string(), "ingress-nginx"}, 60s);
  REQUIRE(snippet.status == 0);
  std::string snippet_text = snippet.output;
  // ...and its http-block part: the kept-alive upstream the location proxies to.
  static const testing::RunResult http_snippet = testing::run(
      {(testing::source_dir() / "tests/manifests/extract-snippet").string(), "ingress-nginx", "--http"}, 60s);
  REQUIRE(http_snippet.status == 0);
  std::string upstream = http_snippet.output;
  if (options_.replicas > 1) {
    // Several replicas behind one nginx: spread challenge requests over all of them.
    std::string servers;
    for (int i = 0; i < options_.replicas; ++i) servers += "server 127.0.0.1:" + std::to_string(8089 + i) + "; ";
    REQUIRE(upstream.find("server 127.0.0.1:8089;") != std::string::npos);
    upstream = std::regex_replace(upstream, std::regex("server 127\\.0\\.0\\.1:8089;"), servers);
  }
  write_file(nd / "acme-snippet.conf", options_.acme_snippet ? snippet_text : std::string("# snippet removed\n"));
  std::string conf = read_file(testing::source_dir() / "tests/e2e/nginx.conf.in");
  auto subst = [&](const std::string& key, const std::string& value) {
    for (auto pos = conf.find(key); pos != std::string::npos; pos = conf.find(key, pos + value.size()))
      conf.replace(pos, key.size(), value);
  };
  subst("@DIR@", nd.string());
  subst("@HTTP_PORT@", std::to_string(kHttpPort));
  subst("@HTTPS_PORT@", std::to_string(kHttpsPort));
  subst("@UPSTREAM@", upstream);
  subst("@SNIPPET@", "include " + (nd / "acme-snippet.conf").string() + ";");
  write_file(nd / "nginx.conf", conf);
  testing::Subprocess::Options o;
  o.argv = {"nginx", "-c", (nd / "nginx.conf").string(), "-g", "daemon off;"};
  o.log_file = nd / "nginx.out";
  nginx_ = std::make_unique<testing::Subprocess>(o);
  REQUIRE(testing::wait_for_port("127.0.0.1", kHttpPort, 20s));
}

std::vector<std::string> Stack::sidecar_args(int i) const {
  std::vector<std::string> a = {
      sidecar_binary(),
      "--acme-directory", directory_url(),
      "--acme-ca-bundle", pebble_->ca_bundle_path(),
      "--acme-email", "e2e@example.org",
      "--kubeconfig", (dir() / "kube" / (options_.sidecar_user.empty() ? std::string("kubeconfig")
                                                                        : "kubeconfig-" + options_.sidecar_user)).string(),
      "--namespace", options_.namespace_name,
      "--pod-name", "sidecar-" + std::to_string(i),
      "--challenge-listen", "127.0.0.1:" + std::to_string(8089 + i),
      "--metrics-listen", "127.0.0.1:" + std::to_string(9402 + i),
      "--controller-http", "127.0.0.1:" + std::to_string(kHttpPort),
      "--controller-https", "127.0.0.1:" + std::to_string(kHttpsPort),
      "--served-probe-interval", "1s",
      "--failure-backoff", "2s,4s,8s",
      "--rescan-interval", options_.rescan_interval,
      "--log-level", "debug",
  };
  if (options_.leader_elect) {
    for (const char* s : {"--leader-elect", "--lease-duration", "6s", "--lease-renew-deadline", "4s",
                          "--lease-retry-period", "1s"})
      a.emplace_back(s);
  } else {
    a.emplace_back("--no-leader-elect");
  }
  a.insert(a.end(), options_.extra_args.begin(), options_.extra_args.end());
  if (auto it = options_.replica_args.find(i); it != options_.replica_args.end())
    a.insert(a.end(), it->second.begin(), it->second.end());
  return a;
}

void Stack::start_sidecar(int i) {
  testing::Subprocess::Options o;
  o.argv = sidecar_args(i);
  o.log_file = sidecar_log_path(dir(), i);
  // Sanitizer builds: leaks at SIGKILL are not leaks.
  o.env = {{"ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1"}};
  sidecars_.at(static_cast<std::size_t>(i)) = std::make_unique<testing::Subprocess>(o);
  if (!testing::wait_for_port("127.0.0.1", 9402 + i, 60s)) {
    FAIL("sidecar-" << i << " did not listen on 127.0.0.1:" << 9402 + i << " within 60 s (running: "
                    << sidecar(i).running() << "); log tail:\n"
                    << log_tail(i, 4000));
  }
}

void Stack::stop_sidecar(int i) { sidecars_.at(static_cast<std::size_t>(i))->stop(15000ms); }
void Stack::kill_sidecar(int i) { sidecars_.at(static_cast<std::size_t>(i))->kill(); }

std::string Stack::sidecar_log(int i) const { return read_file(sidecar_log_path(dir(), i)); }

std::size_t Stack::sidecar_log_size(int i) const {
  std::error_code ec;
  auto n = std::filesystem::file_size(sidecar_log_path(dir(), i), ec);
  return ec ? 0 : static_cast<std::size_t>(n);
}

std::string Stack::sidecar_log_from(int i, std::size_t offset) const {
  std::ifstream in(sidecar_log_path(dir(), i), std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Stack::log_tail(int i, std::size_t bytes) const {
  auto log = sidecar_log(i);
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

std::string Stack::metrics(int i) const {
  try {
    http::CurlClient client;
    http::Request r;
    r.url = "http://127.0.0.1:" + std::to_string(9402 + i) + "/metrics";
    r.timeout = 5s;
    auto resp = client.send(r);
    return resp.status == 200 ? resp.body : std::string();
  } catch (const std::exception&) {
    return {};
  }
}

std::optional<double> Stack::metric(int i, const std::string& name,
                                    const std::map<std::string, std::string>& labels) const {
  std::istringstream in(metrics(i));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.compare(0, name.size(), name) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : ' ';
    if (next != '{' && next != ' ') continue;
    bool ok = true;
    for (const auto& [k, v] : labels)
      if (line.find(k + "=\"" + v + "\"") == std::string::npos) ok = false;
    if (!ok) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

int Stack::leader() const {
  if (!options_.leader_elect) return 0;
  auto lease = api_->get("leases", options_.namespace_name, "acme-sidecar");
  if (!lease) return -1;
  auto holder = (*lease)["spec"].value("holderIdentity", "");
  for (int i = 0; i < options_.replicas; ++i)
    if (holder == "sidecar-" + std::to_string(i)) return i;
  return -1;
}

testing::RunResult Stack::kubectl(const std::vector<std::string>& args, const std::string& stdin_data) const {
  std::vector<std::string> argv = {"kubectl", "--kubeconfig", (dir() / "kube" / "kubeconfig").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return testing::run(argv, 60s, {}, stdin_data);
}

void Stack::apply(const std::string& yaml) const {
  auto r = kubectl({"apply", "-f", "-"}, yaml);
  INFO(r.output);
  REQUIRE(r.status == 0);
}

std::optional<json> Stack::secret(const std::string& ns, const std::string& name) const {
  return api_->get("secrets", ns, name);
}

std::vector<json> Stack::managed_secrets() const {
  std::vector<json> out;
  for (const auto& s : api_->list("secrets"))
    if (is_managed_tls(s)) out.push_back(s);
  return out;
}

json Stack::wait_secret(const std::string& ns, const std::string& name, const std::function<bool(const json&)>& pred,
                        std::chrono::milliseconds timeout) const {
  std::optional<json> found;
  bool ok = testing::poll_until(
      [&] {
        found = secret(ns, name);
        return found && found->contains("data") && (*found)["data"].contains("tls.crt") && (!pred || pred(*found));
      },
      timeout);
  if (!ok) {
    FAIL("Secret " << ns << "/" << name << " not as expected within the deadline; sidecar log tail:\n"
                   << log_tail(0));
  }
  return *found;
}

std::vector<json> Stack::events_for(const std::string& ns, const std::string& ingress) const {
  std::vector<json> out;
  for (const auto& e : api_->list("events", ns)) {
    if (e.contains("involvedObject") && e["involvedObject"].value("name", "") == ingress) out.push_back(e);
  }
  return out;
}

std::string Stack::tls_crt(const json& s) {
  auto b = crypto::base64_decode(s["data"]["tls.crt"].get<std::string>());
  return std::string(b.begin(), b.end());
}
std::string Stack::tls_key(const json& s) {
  auto b = crypto::base64_decode(s["data"]["tls.key"].get<std::string>());
  return std::string(b.begin(), b.end());
}
std::vector<std::string> Stack::leaf_names(const json& s) {
  auto names = crypto::parse_pem_chain(tls_crt(s)).front().dns_names();
  std::sort(names.begin(), names.end());
  return names;
}
std::string Stack::leaf_fingerprint(const json& s) {
  return crypto::parse_pem_chain(tls_crt(s)).front().sha256_fingerprint_hex();
}

bool Stack::valid(const json& s, std::string* why) const {
  try {
    auto chain = crypto::parse_pem_chain(tls_crt(s));
    auto key = crypto::PrivateKey::from_pem(tls_key(s));
    if (!crypto::key_matches_certificate(key, chain.front())) {
      if (why) *why = "key does not match the leaf";
      return false;
    }
    std::string last;
    for (const auto& root : roots_) {
      auto v = crypto::verify_chain(chain, {root}, std::chrono::system_clock::now());
      if (v.ok) return true;
      last = v.error;
    }
    if (why) *why = "chain: " + last;
    return false;
  } catch (const std::exception& e) {
    if (why) *why = e.what();
    return false;
  }
}

bool Stack::chain_verifies(const json& s) const {
  std::string why;
  bool ok = valid(s, &why);
  if (!ok) UNSCOPED_INFO("chain verification: " << why);
  return ok;
}

json Stack::wait_valid(const std::string& ns, const std::string& name, std::vector<std::string> names,
                       std::chrono::milliseconds timeout) const {
  std::sort(names.begin(), names.end());
  std::optional<json> found;
  bool ok = testing::poll_until(
      [&] {
        found = secret(ns, name);
        if (!found || !found->contains("data") || !(*found)["data"].contains("tls.crt")) return false;
        try {
          return leaf_names(*found) == names && valid(*found);
        } catch (const std::exception&) {
          return false;
        }
      },
      timeout);
  if (!ok) {
    FAIL("Secret " << ns << "/" << name << " not valid within the deadline; sidecar log tail:\n" << log_tail(0));
  }
  return *found;
}

void Stack::load_certificates() {
  auto nd = dir() / "nginx";
  for (const auto& entry : std::filesystem::directory_iterator(nd / "servers")) std::filesystem::remove(entry.path());
  for (const auto& s : managed_secrets()) {
    auto base = s["metadata"].value("namespace", "") + "_" + s["metadata"].value("name", "");
    write_file(nd / "certs" / (base + ".crt"), tls_crt(s));
    write_file(nd / "certs" / (base + ".key"), tls_key(s));
    for (const auto& host : leaf_names(s)) {
      write_file(nd / "servers" / (host + ".conf"),
                 "server {\n  listen 127.0.0.1:" + std::to_string(kHttpsPort) + " ssl;\n  server_name " + host +
                     ";\n  ssl_certificate " + (nd / "certs" / (base + ".crt")).string() + ";\n  ssl_certificate_key " +
                     (nd / "certs" / (base + ".key")).string() + ";\n  include " + (nd / "acme-snippet.conf").string() +
                     ";\n  location / { return 200 \"" + host + "\\n\"; }\n}\n");
    }
  }
  reload_nginx();
}

void Stack::break_challenge_route(const std::string& host) {
  write_file(dir() / "nginx" / "servers" / (host + ".broken.conf"),
             "server {\n  listen 127.0.0.1:" + std::to_string(kHttpPort) + ";\n  server_name " + host +
                 ";\n  location /.well-known/acme-challenge/ { return 404; }\n}\n");
  reload_nginx();
}

void Stack::reload_nginx() { run_checked({"nginx", "-c", (dir() / "nginx" / "nginx.conf").string(), "-s", "reload"}); }

std::string Stack::nginx_access_log() const { return read_file(dir() / "nginx" / "nginx-upstream.log"); }

}  // namespace acme_sidecar::e2e
