#include "tests/reliability/rig.hpp"

#include <httplib.h>

#include <fstream>

namespace acme_sidecar::reliability {

using e2e::is_managed_tls;
using nlohmann::json;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  try {
    return std::stoi(v);
  } catch (const std::exception&) {
    return fallback;
  }
}

long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

// --- SecretWatcher ----------------------------------------------------------------------------------

SecretWatcher::SecretWatcher(Rig& rig) : rig_(rig), thread_([this] { run(); }) {}

SecretWatcher::~SecretWatcher() {
  stop_ = true;
  thread_.join();
}

SecretWatcher::Stats SecretWatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void SecretWatcher::check(const json& s, bool event) {
  if (!is_managed_tls(s)) return;
  std::string why;
  bool ok = rig_.valid(s, &why);
  std::string fp;
  try {
    fp = Rig::leaf_fingerprint(s);
  } catch (const std::exception&) {
  }
  std::lock_guard lock(mu_);
  if (event) ++stats_.events;
  if (!fp.empty()) stats_.fingerprints.insert(fp);
  if (!ok) {
    ++stats_.invalid;
    if (stats_.problems.size() < 10)
      stats_.problems.push_back(s["metadata"].value("namespace", "") + "/" + s["metadata"].value("name", "") + " rv " +
                                s["metadata"].value("resourceVersion", "") + ": " + why);
  }
}

void SecretWatcher::run() {
  auto& api = rig_.api();
  // Start from "now": the watcher is created before the scenario acts.
  std::string rv = std::to_string(api.resource_version());
  while (!stop_) {
    httplib::SSLClient client("127.0.0.1", api.port());
    client.set_ca_cert_path((rig_.dir() / "kube" / "ca.crt").c_str());
    client.enable_server_certificate_verification(true);
    client.set_read_timeout(2, 0);  // short so that stop_ is noticed; bookmarks come every 5 s
    client.set_connection_timeout(2, 0);
    httplib::Headers headers = {{"Authorization", "Bearer " + api.admin_token()}};
    std::string path = "/api/v1/secrets?watch=true&allowWatchBookmarks=true";
    if (!rv.empty()) path += "&resourceVersion=" + rv;
    {
      std::lock_guard lock(mu_);
      ++stats_.streams;
    }
    std::string buffer;
    bool expired = false;
    client.Get(path, headers, [&](const char* data, size_t len) {
      buffer.append(data, len);
      for (auto nl = buffer.find('\n'); nl != std::string::npos; nl = buffer.find('\n')) {
        auto line = buffer.substr(0, nl);
        buffer.erase(0, nl + 1);
        auto ev = json::parse(line, nullptr, false);
        if (!ev.is_object()) continue;
        auto type = ev.value("type", "");
        const auto& obj = ev["object"];
        if (type == "ERROR") {
          expired = true;
          return false;
        }
        if (obj.is_object() && obj.contains("metadata")) rv = obj["metadata"].value("resourceVersion", rv);
        if (type == "ADDED" || type == "MODIFIED") check(obj, true);
      }
      return !stop_.load();
    });
    // The read timeout ends idle streams every 2 s: resuming from rv loses nothing. A 410 relists.
    if (expired) {
      {
        std::lock_guard lock(mu_);
        ++stats_.relists;
      }
      rv = std::to_string(api.resource_version());
      for (const auto& s : api.list("secrets")) check(s, false);
    }
    if (!stop_ && !expired) std::this_thread::sleep_for(50ms);  // back-off between reconnects, not a sync
  }
}

}  // namespace acme_sidecar::reliability
