#include "http/curl_client.hpp"

#include <chrono>
#include <exception>
#include <fstream>
#include <sstream>
#include <string_view>

#include "core/error.hpp"

namespace acme_sidecar::http {
namespace {

using core::Error;
using core::ErrorKind;
using SteadyClock = std::chrono::steady_clock;

void global_init_once() {
  // curl_global_init is not guaranteed thread-safe on every build; run it exactly once.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw Error(ErrorKind::Internal, "curl_global_init failed");
    }
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// State shared with libcurl's callbacks for one transfer.
struct Transfer {
  const Request* request = nullptr;
  const ChunkHandler* on_chunk = nullptr;
  const std::atomic<bool>* shutdown = nullptr;
  Response response;
  SteadyClock::time_point last_data = SteadyClock::now();
  bool handler_stopped = false;
  bool idle_expired = false;
  bool cancelled = false;
  std::exception_ptr handler_error;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  t->last_data = SteadyClock::now();
  if (line.starts_with("HTTP/")) {
    // A new header block (after 1xx or a proxy CONNECT): forget the previous one.
    t->response.headers.clear();
    auto sp = line.find(' ');
    t->response.status = 0;
    if (sp != std::string_view::npos) {
      auto rest = line.substr(sp + 1);
      long code = 0;
      for (char c : rest.substr(0, 3)) {
        if (c < '0' || c > '9') break;
        code = code * 10 + (c - '0');
      }
      t->response.status = code;
    }
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response.headers.emplace_back(std::string(trim(line.substr(0, colon))),
                                     std::string(trim(line.substr(colon + 1))));
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  t->last_data = SteadyClock::now();
  const bool success = t->response.status >= 200 && t->response.status < 300;
  if (t->on_chunk != nullptr && success) {
    try {
      if (!(*t->on_chunk)(std::string_view(data, len))) {
        t->handler_stopped = true;
        return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
      }
    } catch (...) {
      t->handler_error = std::current_exception();
      return 0;
    }
    return len;
  }
  t->response.body.append(data, len);
  return len;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  // libcurl calls this at least about once a second even when the line is silent.
  if (t->shutdown->load() || t->request->cancel.stop_requested()) {
    t->cancelled = true;
    return 1;
  }
  if (t->request->idle_timeout && SteadyClock::now() - t->last_data > *t->request->idle_timeout) {
    t->idle_expired = true;
    return 1;
  }
  return 0;
}

template <typename T>
void set(CURL* h, CURLoption opt, T value) {
  if (curl_easy_setopt(h, opt, value) != CURLE_OK) {
    throw Error(ErrorKind::Internal, "curl_easy_setopt failed", {{"option", std::to_string(opt)}});
  }
}

void set_blob(CURL* h, CURLoption opt, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  set(h, opt, &blob);
}

}  // namespace

CurlClient::CurlClient(TlsOptions tls, CurlOptions options) : tls_(std::move(tls)), options_(std::move(options)) {
  global_init_once();
  if (!tls_.ca_pem.empty()) {
    ca_blob_ = tls_.ca_pem;
    if (!tls_.ca_file.empty()) ca_blob_ += "\n" + detail::read_ca_file(tls_.ca_file);
  } else if (!tls_.ca_file.empty()) {
    detail::read_ca_file(tls_.ca_file);  // fail early and clearly on a missing file
  }
  if (tls_.client_cert_pem.empty() != tls_.client_key_pem.empty()) {
    throw Error(ErrorKind::Config, "client certificate and key must be given together");
  }
}

CurlClient::~CurlClient() = default;

void CurlClient::shutdown() { shutdown_.store(true); }

CurlEasyPtr CurlClient::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      CurlEasyPtr h = std::move(idle_.back());
      idle_.pop_back();
      // Reset options but keep live connections, the DNS cache and TLS sessions.
      curl_easy_reset(h.get());
      return h;
    }
  }
  CurlEasyPtr h(curl_easy_init());
  if (!h) throw Error(ErrorKind::Internal, "curl_easy_init failed");
  return h;
}

void CurlClient::release(CurlEasyPtr handle) {
  std::lock_guard lock(mu_);
  if (idle_.size() < options_.max_idle_handles) idle_.push_back(std::move(handle));
}

Response CurlClient::send(const Request& request) { return perform(request, nullptr); }

Response CurlClient::stream(const Request& request, const ChunkHandler& on_chunk) {
  return perform(request, &on_chunk);
}

Response CurlClient::perform(const Request& request, const ChunkHandler* on_chunk) {
  const Error::Context ctx{{"method", request.method}, {"url", request.url}};
  if (shutdown_.load() || request.cancel.stop_requested()) {
    throw Error(ErrorKind::Cancelled, "HTTP request cancelled", ctx);
  }
  // The handle goes back to the pool whatever happens, so its connection can be reused.
  struct Lease {
    CurlClient* self;
    CurlEasyPtr h;
    ~Lease() {
      if (h) self->release(std::move(h));
    }
  } lease{this, acquire()};
  CURL* h = lease.h.get();

  Transfer t;
  t.request = &request;
  t.on_chunk = on_chunk;
  t.shutdown = &shutdown_;
  char errbuf[CURL_ERROR_SIZE] = {0};

  set(h, CURLOPT_URL, request.url.c_str());
  set(h, CURLOPT_PROTOCOLS_STR, "http,https");
  set(h, CURLOPT_NOSIGNAL, 1L);
  set(h, CURLOPT_ERRORBUFFER, errbuf);
  set(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  set(h, CURLOPT_TCP_KEEPALIVE, 1L);
  // HTTP/1.1, not h2 via ALPN: every easy handle has its own connection, so h2's multiplexing buys
  // nothing here, while its framing (nghttp2, SETTINGS/WINDOW_UPDATE frames) costs CPU on every
  // request (~3% of the sidecar's samples while issuing against Pebble, tests/bench --perf).
  set(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  set(h, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  set(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.connect_timeout.count()));
  set(h, CURLOPT_HEADERFUNCTION, &on_header);
  set(h, CURLOPT_HEADERDATA, &t);
  set(h, CURLOPT_WRITEFUNCTION, &on_body);
  set(h, CURLOPT_WRITEDATA, &t);
  set(h, CURLOPT_NOPROGRESS, 0L);
  set(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
  set(h, CURLOPT_XFERINFODATA, &t);

  // TLS: verification stays on unless explicitly disabled.
  if (tls_.insecure_skip_verify) {
    set(h, CURLOPT_SSL_VERIFYPEER, 0L);
    set(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!ca_blob_.empty()) {
    set_blob(h, CURLOPT_CAINFO_BLOB, ca_blob_);
  } else if (!tls_.ca_file.empty()) {
    set(h, CURLOPT_CAINFO, tls_.ca_file.c_str());
  }
  if (!tls_.client_cert_pem.empty()) {
    set_blob(h, CURLOPT_SSLCERT_BLOB, tls_.client_cert_pem);
    set(h, CURLOPT_SSLCERTTYPE, "PEM");
    set_blob(h, CURLOPT_SSLKEY_BLOB, tls_.client_key_pem);
    set(h, CURLOPT_SSLKEYTYPE, "PEM");
  }

  if (request.method == "GET") {
    set(h, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    set(h, CURLOPT_NOBODY, 1L);
  } else {
    if (request.method != "POST") set(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (request.method == "POST" || !request.body.empty() || request.method == "PUT" ||
        request.method == "PATCH") {
      set(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
      set(h, CURLOPT_POSTFIELDS, request.body.data());
    }
  }

  CurlSlistPtr headers;
  auto append = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) throw Error(ErrorKind::Internal, "curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  };
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of(":\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) {
      throw Error(ErrorKind::Invalid, "invalid HTTP header", {{"header", name}});
    }
    append(value.empty() ? name + ";" : name + ": " + value);
  }
  append("Expect:");  // no 100-continue round trip for bodies
  set(h, CURLOPT_HTTPHEADER, headers.get());

  t.last_data = SteadyClock::now();
  const CURLcode rc = curl_easy_perform(h);

  if (t.handler_error) std::rethrow_exception(t.handler_error);
  if (t.cancelled) throw Error(ErrorKind::Cancelled, "HTTP request cancelled", ctx);
  if (t.idle_expired) {
    throw Error(ErrorKind::Timeout, "no data within the idle timeout", ctx);
  }
  if (rc == CURLE_WRITE_ERROR && t.handler_stopped) return std::move(t.response);
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    throw Error(ErrorKind::Timeout, std::string("HTTP request timed out: ") + errbuf, ctx);
  }
  if (rc != CURLE_OK) {
    auto e = Error(ErrorKind::Transport,
                   std::string(curl_easy_strerror(rc)) + (errbuf[0] != 0 ? std::string(": ") + errbuf : ""),
                   ctx);
    throw e;
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  if (code != 0) t.response.status = code;
  return std::move(t.response);
}

}  // namespace acme_sidecar::http
