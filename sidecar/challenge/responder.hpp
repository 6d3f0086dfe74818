#pragma once
// The HTTP-01 responder: GET/HEAD /.well-known/acme-challenge/<token> -> 200 text/plain key
// authorization, 404 for unknown tokens, 4xx for anything else. Built on libmicrohttpd with one
// epoll thread (event-driven: idle or slow connections cost a socket and a small buffer, never a
// thread), bounded connections, per-connection memory and an idle timeout. Listens on loopback only
// unless explicitly allowed: the ingress controller proxies /.well-known/acme-challenge/ to it.
// microhttpd.h stays out of this header.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "challenge/path.hpp"
#include "challenge/store.hpp"
#include "core/log.hpp"

namespace acme_sidecar::challenge {

struct ListenAddress {
  std::string host;  // an IP literal, without brackets
  std::uint16_t port = 0;
  bool ipv6 = false;
  bool loopback = false;
};
// "127.0.0.1:8089", "[::1]:8089" (IP literals only: no resolver involved). Throws core::Error(Config).
ListenAddress parse_listen_address(std::string_view address);

struct ResponderOptions {
  std::string listen = "127.0.0.1:8089";
  bool allow_non_loopback = false;  // the product promise is loopback only; tests and odd setups opt out
  unsigned connection_limit = 4096;
  std::size_t connection_memory_limit = 16 * 1024;  // request line + headers; larger requests get 4xx
  // Idle connections are closed after this; longer than the shipped upstream keepalive_timeout (30 s;
  // nginx's default is 60 s) so nginx, not us, closes pooled keep-alive connections.
  std::chrono::seconds idle_timeout{90};
  // Misses that go to the store's read-through run on one worker; beyond this many waiting, answer 503.
  std::size_t max_pending_lookups = 256;
  // Called for every request that reaches the handler (challenge_requests_total{result}).
  std::function<void(Result)> observer;
};

class Responder {
 public:
  // Starts serving (throws core::Error(Config) for a bad or non-loopback address, Transport when the
  // socket cannot be bound). `store` must outlive the responder.
  Responder(ChallengeStore& store, ResponderOptions options, core::Logger logger = core::Logger::discard());
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  std::uint16_t port() const;  // the bound port (ephemeral when 0 was asked for)
  const std::string& host() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace acme_sidecar::challenge
