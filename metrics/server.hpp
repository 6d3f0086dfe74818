#pragma once
// The metrics and health port (cpp-httplib, a small thread pool): /metrics (Prometheus text format
// 0.0.4), /healthz (200 "ok" while the process runs), /readyz (informational: 200 or 503 with one
// line per check). httplib.h stays out of this header (pimpl).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Collectable;
}

namespace acme_sidecar::metrics {

struct HostPort {
  std::string host;  // without brackets; "0.0.0.0" when the address was ":port"
  std::uint16_t port = 0;
};
// Accepts "host:port", "[v6]:port", ":port" (all IPv4 interfaces). Throws core::Error(Config).
HostPort parse_listen_address(std::string_view address);

struct ReadinessCheck {
  std::string name;
  bool ok = false;
  std::string detail;  // shown when not ok
};
using ReadinessFn = std::function<std::vector<ReadinessCheck>()>;

struct ServerOptions {
  std::string listen = ":9402";
  // Called on every /readyz; empty means "ready". Must not block for long (it runs on a server thread).
  ReadinessFn readiness;
  std::size_t threads = 8;                        // bounds how many slow clients can be served at once
  std::chrono::seconds read_timeout{5};           // per read; drops idle and stalled clients
  std::chrono::seconds write_timeout{5};
  std::size_t payload_max = 64 * 1024;            // request bodies are never needed here
  std::size_t keep_alive_max_count = 10;
  std::chrono::seconds keep_alive_timeout{5};
};

// Renders a readiness report the way the Kubernetes API server does: "[+]name ok" / "[-]name failed: detail".
std::string render_readiness(const std::vector<ReadinessCheck>& checks, bool& ready);

// Writes the whole /metrics body (e.g. Metrics::append_exposition). Called on a server thread per scrape.
using Exposition = std::function<void(std::string& out)>;

class Server {
 public:
  // Binds immediately (throws core::Error(Config) on a bad address, Transport when the bind fails) and
  // serves on a background thread until destroyed. What `exposition` reads must outlive the server.
  Server(Exposition exposition, ServerOptions options);
  // Serves exactly the registry's families.
  Server(const prometheus::Collectable& registry, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::uint16_t port() const;       // the bound port (useful with port 0)
  const std::string& host() const;  // the bound host
  void stop();                      // idempotent; also done by the destructor

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acme_sidecar::metrics
