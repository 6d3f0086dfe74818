#pragma once
// HttpClient on libcurl. Thread-safe: every send() borrows an easy handle from a small pool, so
// connections (and TLS sessions) are reused across calls and threads. Streams report each chunk as
// it arrives, end on the handler's request, and honour an idle limit and cancellation.
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "http/client.hpp"
#include "http/curl_ptr.hpp"

namespace acme_sidecar::http {

struct CurlOptions {
  std::string user_agent = "acme-sidecar";
  // Idle easy handles kept for reuse (each holds its own connection cache).
  std::size_t max_idle_handles = 8;
};

class CurlClient final : public HttpClient {
 public:
  // Throws core::Error(Config) when TLS material cannot be read.
  explicit CurlClient(TlsOptions tls = {}, CurlOptions options = {});
  ~CurlClient() override;
  CurlClient(const CurlClient&) = delete;
  CurlClient& operator=(const CurlClient&) = delete;

  Response send(const Request& request) override;
  Response stream(const Request& request, const ChunkHandler& on_chunk) override;

  // Aborts every transfer in flight (they throw core::Error(Cancelled) within about a second) and
  // refuses new ones. For process shutdown: a parked watch must not hold it up.
  void shutdown();

 private:
  Response perform(const Request& request, const ChunkHandler* on_chunk);
  CurlEasyPtr acquire();
  void release(CurlEasyPtr handle);

  TlsOptions tls_;
  CurlOptions options_;
  std::string ca_blob_;  // inline PEM trust anchors (plus ca_file's content when both are given)
  std::atomic<bool> shutdown_{false};
  std::mutex mu_;
  std::vector<CurlEasyPtr> idle_;
};

}  // namespace acme_sidecar::http
