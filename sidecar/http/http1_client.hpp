#pragma once
// HttpClient for the sidecar's traffic (ACME and Kubernetes API calls, watch streams): HTTP/1.1 over
// kept-alive sockets, TLS through OpenSSL directly. Proxied setups go to an embedded CurlClient.
//
// Why not libcurl for everything: per exchange libcurl makes about 8 system calls (a liveness poll
// and a MSG_PEEK on reuse, a read that finds nothing, three more polls, a TLS record header and its
// body read separately); this client makes 2 (one write, one blocking read with OpenSSL read-ahead).
// System calls are expensive on the VMs the sidecar runs on, and a burst of issuances is mostly
// HTTP exchanges: see tests/bench/README.md ("HTTP exchanges") for the measured difference.
//
// Thread-safe: each send() borrows an idle connection to the same origin or opens one; the
// connection returns to the pool only after a complete, kept-alive response.
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "http/curl_client.hpp"

struct ssl_ctx_st;

namespace acme_sidecar::http {

struct Http1Options {
  std::string user_agent = "acme-sidecar";
  // Idle connections kept per origin (scheme, host, port).
  std::size_t max_idle_per_origin = 8;
  // Largest response body accepted (a Kubernetes list of every Secret can be large; a hostile
  // server cannot make the sidecar buffer without bound).
  std::size_t max_body_bytes = std::size_t{1} << 30;
  // Use libcurl for send() too when the environment names a proxy (https_proxy, ALL_PROXY, ...):
  // libcurl implements proxies, CONNECT tunnels and NO_PROXY; this client does not.
  bool proxy_from_environment = true;
};

class Http1Client final : public HttpClient {
 public:
  // Throws core::Error(Config) when TLS material cannot be read or parsed.
  explicit Http1Client(TlsOptions tls = {}, Http1Options options = {});
  ~Http1Client() override;
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  Response send(const Request& request) override;
  // Chunks as they arrive (a Kubernetes watch: one chunk per event); honours idle_timeout.
  Response stream(const Request& request, const ChunkHandler& on_chunk) override;

  // Like CurlClient::shutdown(): requests and streams in flight end with Cancelled within about a
  // second, new ones are refused.
  void shutdown();

  // True when requests go to libcurl because a proxy is configured.
  bool uses_curl_for_requests() const noexcept { return via_curl_; }

  class Connection;

 private:
  Response perform(const Request& request, const ChunkHandler* on_chunk);
  std::unique_ptr<Connection> take_idle(const std::string& origin);
  void release(const std::string& origin, std::unique_ptr<Connection> conn);

  TlsOptions tls_;
  Http1Options options_;
  CurlClient curl_;
  bool via_curl_ = false;
  std::unique_ptr<ssl_ctx_st, void (*)(ssl_ctx_st*)> ctx_;
  bool system_trust_ = false;  // no custom anchors: the system's, loaded at the first TLS connection
  std::once_flag system_trust_once_;
  std::atomic<bool> shutdown_{false};
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Connection>>> idle_;
};

}  // namespace acme_sidecar::http
