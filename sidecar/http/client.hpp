#pragma once
// The HTTP boundary shared by the Kubernetes and ACME clients. Code above this interface never sees the
// transport; tests substitute a fake HttpClient. Implementations: http1_client.hpp (what the sidecar
// uses) and curl_client.hpp (libcurl: proxies).
#include <chrono>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace acme_sidecar::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method = "GET";
  std::string url;
  Headers headers;
  std::string body;
  // Whole-request deadline (for streams: the limit on silence between chunks is `idle_timeout`).
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds connect_timeout{10'000};
  std::optional<std::chrono::milliseconds> idle_timeout;
  // Cancels the request (e.g. a watch at shutdown); the call then throws core::Error(Cancelled).
  std::stop_token cancel;
};

struct Response {
  long status = 0;
  Headers headers;  // in arrival order; names as sent
  std::string body;
  // Case-insensitive lookup of the first header with this name.
  std::optional<std::string> header(std::string_view name) const;
  // All values of a header (e.g. several Link headers).
  std::vector<std::string> headers_named(std::string_view name) const;
};

// Called with each chunk of a streamed body as it arrives; return false to stop reading.
using ChunkHandler = std::function<bool(std::string_view chunk)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Throws core::Error(Transport|Timeout) when no HTTP response arrives. Any status is a Response.
  virtual Response send(const Request& request) = 0;
  // Like send(), but the body goes to `on_chunk` instead of Response::body. Returns when the server
  // closes the stream, the handler returns false, or a timeout fires (Timeout error).
  // Bodies of non-2xx responses are not streamed: they arrive whole in Response::body, so callers
  // can decode error documents (Kubernetes Status, ACME problems).
  virtual Response stream(const Request& request, const ChunkHandler& on_chunk) = 0;
};

namespace detail {
// Contents of a trust-anchor file; Config error naming the path when it cannot be read.
std::string read_ca_file(const std::string& path);
}  // namespace detail

struct TlsOptions {
  std::string ca_file;          // extra/alternative trust anchors (PEM file)
  std::string ca_pem;           // same, inline PEM (kubeconfig certificate-authority-data)
  std::string client_cert_pem;  // mTLS (kubeconfig client-certificate[-data])
  std::string client_key_pem;
  bool insecure_skip_verify = false;
};

}  // namespace acme_sidecar::http
