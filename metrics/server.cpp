#include "metrics/server.hpp"

#include <atomic>
#include <charconv>
#include <sstream>
#include <thread>

#include <sys/socket.h>

#include <httplib.h>
#include <prometheus/collectable.h>

#include "core/error.hpp"
#include "metrics/text.hpp"

namespace acme_sidecar::metrics {

using core::Error;
using core::ErrorKind;

HostPort parse_listen_address(std::string_view address) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Config, "invalid listen address: " + why, {{"address", std::string(address)}});
  };
  std::string_view host, port;
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      throw bad("expected [ipv6]:port");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    if (host.empty()) throw bad("empty IPv6 address");
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) throw bad("expected host:port or :port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) throw bad("IPv6 addresses need brackets: [::1]:port");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    throw bad("port must be a number 0-65535");
  return HostPort{host.empty() ? std::string("0.0.0.0") : std::string(host), static_cast<std::uint16_t>(value)};
}

std::string render_readiness(const std::vector<ReadinessCheck>& checks, bool& ready) {
  ready = true;
  std::string body;
  for (const auto& c : checks) {
    if (c.ok) {
      body += "[+]" + c.name + " ok\n";
    } else {
      ready = false;
      body += "[-]" + c.name + " failed";
      if (!c.detail.empty()) body += ": " + c.detail;
      body += "\n";
    }
  }
  body += ready ? "readyz check passed\n" : "readyz check failed\n";
  return body;
}

struct Server::Impl {
  Exposition exposition;
  ServerOptions options;
  HostPort bound;
  httplib::Server http;
  std::thread thread;
  bool stopped = false;
  std::atomic<std::size_t> last_size{4096};

  Impl(Exposition e, ServerOptions o) : exposition(std::move(e)), options(std::move(o)) {}

  void routes() {
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      std::string out;
      out.reserve(last_size);  // one allocation for a body of the usual size
      exposition(out);
      last_size = out.size() + out.size() / 8;
      res.set_content(std::move(out), "text/plain; version=0.0.4; charset=utf-8");
    });
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain; charset=utf-8");
    });
    http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<ReadinessCheck> checks;
      bool ready = true;
      std::string body;
      try {
        if (options.readiness) checks = options.readiness();
        body = render_readiness(checks, ready);
      } catch (const std::exception& e) {
        ready = false;
        body = render_readiness({{"readiness", false, e.what()}}, ready);
      }
      res.status = ready ? 200 : 503;
      res.set_content(body, "text/plain; charset=utf-8");
    });
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      res.status = 500;
      res.set_content("internal error\n", "text/plain; charset=utf-8");
    });
  }
};

Server::Server(const prometheus::Collectable& registry, ServerOptions options)
    : Server([&registry](std::string& out) { append_text(out, registry.Collect()); }, std::move(options)) {}

Server::Server(Exposition exposition, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(exposition), std::move(options))) {
  auto& m = *impl_;
  auto where = parse_listen_address(m.options.listen);
  auto threads = m.options.threads == 0 ? std::size_t{1} : m.options.threads;
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  m.http.set_read_timeout(m.options.read_timeout);
  m.http.set_write_timeout(m.options.write_timeout);
  m.http.set_payload_max_length(m.options.payload_max);
  // httplib's default adds SO_REUSEPORT, which would let a second process silently share the port.
  m.http.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.http.set_keep_alive_max_count(m.options.keep_alive_max_count);
  m.http.set_keep_alive_timeout(m.options.keep_alive_timeout.count());
  m.routes();

  int port = 0;
  if (where.port == 0) {
    port = m.http.bind_to_any_port(where.host);
  } else if (m.http.bind_to_port(where.host, where.port)) {
    port = where.port;
  }
  if (port <= 0)
    throw Error(ErrorKind::Transport, "cannot bind the metrics listener", {{"address", m.options.listen}});
  m.bound = HostPort{where.host, static_cast<std::uint16_t>(port)};
  m.thread = std::thread([&m] { m.http.listen_after_bind(); });
  // httplib::Server::stop() is a no-op until the loop runs: wait for it so stop() cannot be lost.
  for (int i = 0; i < 5000 && !m.http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

Server::~Server() { stop(); }

void Server::stop() {
  auto& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  m.http.stop();
  if (m.thread.joinable()) m.thread.join();
}

std::uint16_t Server::port() const { return impl_->bound.port; }
const std::string& Server::host() const { return impl_->bound.host; }

}  // namespace acme_sidecar::metrics
