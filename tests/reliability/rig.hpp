#pragma once
// The reliability rig is the e2e Stack (tests/e2e/stack.hpp): it takes every knob the fault scenarios
// need (Pebble options such as the badNonce rate and the domain blocklist, per-replica sidecar
// arguments, a directory override, roots remembered across Pebble restarts, Pebble counts summed over
// every generation, the current leader). Here, on top of it: SecretWatcher (a real watch over HTTPS that
// checks every event of every managed Secret) and small helpers. Runs inside the test's own network
// namespace (netns-run): fixed ports.
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/stack.hpp"

namespace acme_sidecar::reliability {

using namespace std::chrono_literals;

using Rig = e2e::Stack;
using RigOptions = e2e::StackOptions;
using e2e::ingress_yaml;

// A real watch (HTTPS, bearer token, chunked JSON lines) on every Secret of the fake API server,
// re-watching from the last resourceVersion when the stream ends and relisting after 410. Every
// ADDED/MODIFIED event of a managed TLS Secret is checked at once: tls.crt parses, tls.key matches the
// leaf and the chain verifies against a known Pebble root. Counts what it saw.
class SecretWatcher {
 public:
  explicit SecretWatcher(Rig& rig);
  ~SecretWatcher();
  SecretWatcher(const SecretWatcher&) = delete;
  SecretWatcher& operator=(const SecretWatcher&) = delete;

  struct Stats {
    std::size_t events = 0;          // ADDED/MODIFIED of managed TLS Secrets
    std::size_t invalid = 0;         // versions (events or relisted) whose pair was not valid
    std::size_t streams = 0;         // watch connections made
    std::size_t relists = 0;         // after 410
    std::set<std::string> fingerprints;  // distinct leaves seen
    std::vector<std::string> problems;   // first few invalid events, explained
  };
  Stats stats() const;

 private:
  void run();
  // Checks a Secret version; `event`: it came from the stream (else from a relist after 410).
  void check(const nlohmann::json& secret, bool event);
  Rig& rig_;
  mutable std::mutex mu_;
  Stats stats_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Integer from the environment (for scaling loops), else `fallback`.
int env_int(const char* name, int fallback);
// VmRSS of a process in KiB (0 when unreadable).
long rss_kib(pid_t pid);

}  // namespace acme_sidecar::reliability
