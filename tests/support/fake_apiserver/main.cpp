// fake-apiserver: the in-process FakeApiServer as a standalone program for the demo, kubectl and e2e.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "fake_apiserver.hpp"

namespace {

std::atomic<bool> g_stop{false};  // signal handlers can only reach a global
void on_signal(int) { g_stop = true; }

// "127.0.0.1:6443" -> host, port; a bare port means 127.0.0.1.
bool split_host_port(const std::string& s, std::string& host, int& port) {
  auto colon = s.rfind(':');
  std::string p = colon == std::string::npos ? s : s.substr(colon + 1);
  if (colon != std::string::npos) host = s.substr(0, colon);
  if (host.empty()) host = "127.0.0.1";
  try {
    std::size_t pos = 0;
    port = std::stoi(p, &pos);
    return pos == p.size() && port >= 0 && port < 65536;
  } catch (...) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using acme_sidecar::fake_apiserver::FakeApiServer;
  using acme_sidecar::fake_apiserver::Options;
  CLI::App app{"fake Kubernetes API server for tests (HTTPS, tokens, CRUD, watch, fault injection)"};
  std::string listen = "127.0.0.1:0", control_listen, dir, policy_file, admin_token, policy_namespace = "default";
  std::vector<std::string> tokens;
  std::size_t window = 1000, queue_limit = 1000;
  double bookmark_seconds = 60;
  int threads = 96;
  app.add_option("--listen", listen, "HTTPS address HOST:PORT (port 0: any)");
  app.add_option("--control-listen", control_listen, "fault-control HTTP address HOST:PORT (loopback)");
  app.add_option("--dir", dir, "write ca.crt, tls.crt, tls.key, kubeconfig[-USER] and ready here")->required();
  app.add_option("--token", tokens, "NAME=TOKEN: accept TOKEN as user NAME (repeatable)");
  app.add_option("--admin-token", admin_token, "token of the unrestricted admin user (default: random)");
  app.add_option("--policy", policy_file, "JSON/YAML rules per user (see README.md)")->check(CLI::ExistingFile);
  app.add_option("--policy-namespace", policy_namespace,
                 "namespace of RBAC Roles/RoleBindings in --policy that name none (as kubectl apply -n would)");
  app.add_option("--watch-window", window, "events retained for resuming watches")->check(CLI::PositiveNumber);
  app.add_option("--bookmark-interval", bookmark_seconds, "seconds between BOOKMARK events")->check(CLI::PositiveNumber);
  app.add_option("--watch-queue-limit", queue_limit, "events buffered per watcher before it is closed as too slow")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "HTTP worker threads (each open watch holds one)")->check(CLI::Range(8, 4096));
  CLI11_PARSE(app, argc, argv);

  Options o;
  if (!split_host_port(listen, o.host, o.port)) {
    std::cerr << "fake-apiserver: bad --listen " << listen << "\n";
    return 2;
  }
  if (!control_listen.empty()) {
    std::string chost;
    if (!split_host_port(control_listen, chost, o.control_port) || chost != o.host) {
      std::cerr << "fake-apiserver: bad --control-listen " << control_listen << " (must be on " << o.host << ")\n";
      return 2;
    }
  }
  for (const auto& t : tokens) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == t.size()) {
      std::cerr << "fake-apiserver: bad --token " << t << " (want NAME=TOKEN)\n";
      return 2;
    }
    o.tokens[t.substr(0, eq)] = t.substr(eq + 1);
  }
  if (!policy_file.empty()) {
    std::ifstream f(policy_file);
    std::stringstream ss;
    ss << f.rdbuf();
    o.policy = ss.str();
  }
  o.admin_token = admin_token;
  o.policy_namespace = policy_namespace;
  o.watch_window = window;
  o.watch_queue_limit = queue_limit;
  o.bookmark_interval = std::chrono::milliseconds(static_cast<long long>(bookmark_seconds * 1000));
  o.threads = threads;

  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  try {
    FakeApiServer server(o);
    server.start();
    server.write_files(dir);
    std::cout << "{\"msg\":\"fake-apiserver ready\",\"url\":\"" << server.url() << "\",\"control_port\":"
              << server.control_port() << ",\"dir\":\"" << dir << "\"}" << std::endl;
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  } catch (const std::exception& e) {
    std::cerr << "fake-apiserver: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
