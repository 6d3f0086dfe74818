#include "challenge/responder.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <charconv>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "core/error.hpp"

namespace acme_sidecar::challenge {

using core::Error;
using core::ErrorKind;

ListenAddress parse_listen_address(std::string_view address) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::Config, "invalid challenge listen address: " + why, {{"address", std::string(address)}});
  };
  ListenAddress out;
  std::string_view host, port;
  if (!address.empty() && address.front() == '[') {
    auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      throw bad("expected [ipv6]:port");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
    out.ipv6 = true;
  } else {
    auto colon = address.rfind(':');
    if (colon == std::string_view::npos) throw bad("expected ip:port, e.g. 127.0.0.1:8089");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
    throw bad("port must be a number 0-65535");
  out.port = static_cast<std::uint16_t>(value);
  out.host = std::string(host);
  if (out.ipv6) {
    in6_addr a{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a) != 1) throw bad("not an IPv6 address");
    out.loopback = IN6_IS_ADDR_LOOPBACK(&a);
  } else {
    in_addr a{};
    if (inet_pton(AF_INET, out.host.c_str(), &a) != 1) throw bad("host must be an IP address (no names)");
    out.loopback = (ntohl(a.s_addr) >> 24) == 127;
  }
  return out;
}

namespace {

struct DaemonDeleter {
  void operator()(MHD_Daemon* d) const { MHD_stop_daemon(d); }
};
struct ResponseDeleter {
  void operator()(MHD_Response* r) const { MHD_destroy_response(r); }
};
using DaemonPtr = std::unique_ptr<MHD_Daemon, DaemonDeleter>;
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDeleter>;

// A canned response, reused for every request (MHD reference-counts queued responses).
ResponsePtr canned(const char* body, bool allow = false) {
  ResponsePtr r(MHD_create_response_from_buffer(std::strlen(body), const_cast<char*>(body), MHD_RESPMEM_PERSISTENT));
  if (!r) throw Error(ErrorKind::Internal, "cannot create an HTTP response");
  MHD_add_response_header(r.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
  MHD_add_response_header(r.get(), MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (allow) MHD_add_response_header(r.get(), MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  return r;
}

// Per-request state, from the first call of the access handler until MHD completes the request.
struct Pending {
  enum class Stage { Headers, Parked, Resumed } stage = Stage::Headers;
  std::string token;
  std::optional<std::string> answer;
  bool unavailable = false;  // shutting down: answered 503
};

}  // namespace

struct Responder::Impl {
  ChallengeStore& store;
  ResponderOptions options;
  core::Logger logger;
  std::string host;
  std::uint16_t port = 0;

  // Declared before the daemon so they outlive it.
  ResponsePtr not_found = canned("not found\n");
  ResponsePtr bad_request = canned("bad request\n");
  ResponsePtr method_not_allowed = canned("method not allowed\n", true);
  ResponsePtr unavailable = canned("unavailable\n");

  // Read-through worker (only used when store.reads_through()).
  std::mutex mu;
  std::condition_variable_any cv;
  std::deque<std::pair<MHD_Connection*, Pending*>> queue;
  bool stopping = false;
  std::jthread worker;

  DaemonPtr daemon;

  Impl(ChallengeStore& s, ResponderOptions o, core::Logger l)
      : store(s), options(std::move(o)), logger(std::move(l)) {}

  void observe(Result r) const {
    if (options.observer) options.observer(r);
  }

  MHD_Result send(MHD_Connection* c, unsigned status, MHD_Response* r, Result result) const {
    observe(result);
    return MHD_queue_response(c, status, r);
  }

  MHD_Result answer(MHD_Connection* c, const std::optional<std::string>& key_authorization) const {
    if (!key_authorization) return send(c, MHD_HTTP_NOT_FOUND, not_found.get(), Result::Miss);
    ResponsePtr r(MHD_create_response_from_buffer(key_authorization->size(),
                                                  const_cast<char*>(key_authorization->data()),
                                                  MHD_RESPMEM_MUST_COPY));
    if (!r) return MHD_NO;  // out of memory: MHD closes the connection
    MHD_add_response_header(r.get(), MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
    MHD_add_response_header(r.get(), MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return send(c, MHD_HTTP_OK, r.get(), Result::Hit);
  }

  static bool has_body(MHD_Connection* c) {
    const char* length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length != nullptr && std::strcmp(length, "0") != 0) return true;
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != nullptr;
  }

  MHD_Result handle(MHD_Connection* c, const char* url, const char* method, void** state) {
    auto* p = static_cast<Pending*>(*state);
    if (p == nullptr) {
      // First call (headers only). Answering here makes MHD close the connection, which is right for
      // junk but would break keep-alive for good requests: those are answered on the next call.
      auto classified = classify_request(method != nullptr ? method : "", url != nullptr ? url : "", has_body(c));
      switch (classified.action) {
        case Action::MethodNotAllowed:
          return send(c, MHD_HTTP_METHOD_NOT_ALLOWED, method_not_allowed.get(), Result::Invalid);
        case Action::BadRequest:
          return send(c, MHD_HTTP_BAD_REQUEST, bad_request.get(), Result::Invalid);
        case Action::NotFound:  // answered on the next call too, so nginx keeps its upstream connection
        case Action::Lookup:
          break;
      }
      *state = new Pending{Pending::Stage::Headers, std::string(classified.token), std::nullopt, false};
      return MHD_YES;
    }
    if (p->token.empty()) return send(c, MHD_HTTP_NOT_FOUND, not_found.get(), Result::Invalid);
    if (p->stage == Pending::Stage::Resumed) {
      if (p->unavailable) return send(c, MHD_HTTP_SERVICE_UNAVAILABLE, unavailable.get(), Result::Miss);
      return answer(c, p->answer);
    }
    if (p->stage == Pending::Stage::Parked) return MHD_YES;  // not expected: MHD does not call suspended ones

    if (auto hit = store.lookup_cached(p->token)) return answer(c, hit);
    if (!store.reads_through()) return answer(c, std::nullopt);

    // A miss that may be answered by the read-through: park the connection (the event thread keeps
    // serving everyone else) and let the worker do the blocking call.
    std::unique_lock lock(mu);
    if (stopping || queue.size() >= options.max_pending_lookups) {
      lock.unlock();
      return send(c, MHD_HTTP_SERVICE_UNAVAILABLE, unavailable.get(), Result::Miss);
    }
    p->stage = Pending::Stage::Parked;
    // Suspend before the worker can see it, so resume can never precede suspend.
    MHD_suspend_connection(c);
    queue.emplace_back(c, p);
    lock.unlock();
    cv.notify_one();
    return MHD_YES;
  }

  void work(std::stop_token stop) {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, stop, [&] { return !queue.empty(); });
      if (stop.stop_requested()) {
        // Shutting down: release every parked connection with a 503 so the daemon can stop.
        for (auto& [c, p] : queue) {
          p->unavailable = true;
          p->stage = Pending::Stage::Resumed;
          MHD_resume_connection(c);
        }
        queue.clear();
        return;
      }
      auto [c, p] = queue.front();
      queue.pop_front();
      lock.unlock();
      try {
        p->answer = store.lookup(p->token);
      } catch (...) {
        p->answer.reset();  // a failing read-through is a miss, never a dead worker
      }
      p->stage = Pending::Stage::Resumed;
      MHD_resume_connection(c);
      lock.lock();
    }
  }
};

namespace {

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* /*upload_data*/, size_t* upload_data_size, void** state) {
  auto* impl = static_cast<Responder::Impl*>(cls);
  if (*upload_data_size != 0) {
    // Only reached when a body arrives after we answered 400 early; drop it.
    *upload_data_size = 0;
    return MHD_YES;
  }
  try {
    return impl->handle(connection, url, method, state);
  } catch (...) {
    return MHD_NO;  // closes this connection; the daemon keeps running
  }
}

void on_completed(void* /*cls*/, MHD_Connection* /*connection*/, void** state,
                  MHD_RequestTerminationCode /*code*/) {
  delete static_cast<Pending*>(*state);
  *state = nullptr;
}

// No percent-decoding: the raw path is matched exactly, so "%2F" stays "%2F" and is rejected.
size_t keep_escaped(void* /*cls*/, MHD_Connection* /*connection*/, char* uri) { return std::strlen(uri); }

void on_log(void* cls, const char* format, va_list args) {
  char buf[512];
  std::vsnprintf(buf, sizeof buf, format, args);
  std::string line(buf);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  static_cast<const core::Logger*>(cls)->debug("microhttpd", {{"detail", line}});
}

}  // namespace

Responder::Responder(ChallengeStore& store, ResponderOptions options, core::Logger logger)
    : impl_(std::make_unique<Impl>(store, std::move(options), std::move(logger))) {
  auto& m = *impl_;
  auto addr = parse_listen_address(m.options.listen);
  if (!addr.loopback && !m.options.allow_non_loopback)
    throw Error(ErrorKind::Config,
                "the challenge responder listens on loopback only (127.0.0.0/8 or [::1]); the ingress "
                "controller proxies to it",
                {{"address", m.options.listen}});

  sockaddr_storage ss{};
  if (addr.ipv6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(addr.port);
    inet_pton(AF_INET6, addr.host.c_str(), &sa->sin6_addr);
  } else {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(addr.port);
    inet_pton(AF_INET, addr.host.c_str(), &sa->sin_addr);
  }

  if (store.reads_through()) m.worker = std::jthread([&m](std::stop_token st) { m.work(st); });

  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (addr.ipv6) flags |= MHD_USE_IPv6;
  auto idle = static_cast<unsigned>(m.options.idle_timeout.count());
  m.daemon.reset(MHD_start_daemon(
      flags, addr.port, nullptr, nullptr, &on_request, &m,                                   //
      MHD_OPTION_EXTERNAL_LOGGER, &on_log, static_cast<const void*>(&m.logger),              //
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&ss),                                //
      MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(m.options.connection_limit),       //
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<size_t>(m.options.connection_memory_limit),
      MHD_OPTION_CONNECTION_TIMEOUT, idle,                                                   //
      MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,                                                 //
      MHD_OPTION_NOTIFY_COMPLETED, &on_completed, nullptr,                                   //
      MHD_OPTION_UNESCAPE_CALLBACK, &keep_escaped, nullptr,                                  //
      MHD_OPTION_END));
  if (!m.daemon) {
    if (m.worker.joinable()) {
      m.worker.request_stop();
      m.worker.join();
    }
    throw Error(ErrorKind::Transport, "cannot start the challenge responder (address in use?)",
                {{"address", m.options.listen}});
  }
  const auto* info = MHD_get_daemon_info(m.daemon.get(), MHD_DAEMON_INFO_BIND_PORT);
  m.port = info != nullptr ? info->port : addr.port;
  m.host = addr.host;
  m.logger.info("challenge responder listening", {{"address", m.host}, {"port", std::to_string(m.port)}});
}

Responder::~Responder() {
  auto& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    m.stopping = true;  // no new parked connections from here on
  }
  if (m.worker.joinable()) {
    m.worker.request_stop();
    m.worker.join();  // resumes whatever was still parked
  }
  m.daemon.reset();
}

std::uint16_t Responder::port() const { return impl_->port; }
const std::string& Responder::host() const { return impl_->host; }

}  // namespace acme_sidecar::challenge
