#include "http/http1_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "core/error.hpp"

namespace acme_sidecar::http {
namespace {

using core::Error;
using core::ErrorKind;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Longest a blocking read or write waits before the client re-checks cancellation and deadlines.
constexpr milliseconds kSlice{1000};
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxChunkLine = 4096;
constexpr std::size_t kScratchBytes = 16 * 1024;  // one TLS record

std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110 token characters (methods and header names).
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

// True when a comma-separated header value lists `token` (case-insensitive).
bool lists_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    auto comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

struct Url {
  bool tls = false;
  std::string host;         // without brackets
  std::string port;         // digits
  std::string target;       // path and query
  std::string host_header;  // host[:port] as sent in Host
  std::string origin;       // pool key
};

Url parse_url(const std::string& url) {
  const Error::Context ctx{{"url", url}};
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      throw Error(ErrorKind::Invalid, "URL contains whitespace or control characters", ctx);
    }
  }
  Url u;
  std::string_view rest(url);
  if (rest.starts_with("https://")) {
    u.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    throw Error(ErrorKind::Invalid, "unsupported URL scheme (http and https only)", ctx);
  }
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view tail = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    throw Error(ErrorKind::Invalid, "credentials in URLs are not supported", ctx);
  }
  std::string_view host;
  std::string_view port;
  bool ipv6 = false;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) throw Error(ErrorKind::Invalid, "unterminated IPv6 literal in URL", ctx);
    host = authority.substr(1, close - 1);
    ipv6 = true;
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw Error(ErrorKind::Invalid, "malformed URL authority", ctx);
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host.empty()) throw Error(ErrorKind::Invalid, "URL has no host", ctx);
  const std::string_view default_port = u.tls ? "443" : "80";
  if (port.empty()) port = default_port;
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::atoi(std::string(port).c_str()) < 1 || std::atoi(std::string(port).c_str()) > 65535) {
    throw Error(ErrorKind::Invalid, "invalid port in URL", ctx);
  }
  u.host = std::string(host);
  u.port = std::string(port);
  const auto hash = tail.find('#');
  if (hash != std::string_view::npos) tail = tail.substr(0, hash);
  u.target = tail.empty() || tail.front() != '/' ? "/" + std::string(tail) : std::string(tail);
  u.host_header = ipv6 ? "[" + u.host + "]" : u.host;
  if (port != default_port) u.host_header += ":" + u.port;
  u.origin = (u.tls ? "https://" : "http://") + u.host_header + (port == default_port ? ":" + u.port : "");
  return u;
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr mem_bio(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  if (!bio) throw Error(ErrorKind::Internal, "BIO_new_mem_buf failed");
  return bio;
}

// Adds every certificate in `pem` to the store; returns how many.
int add_anchors(X509_STORE* store, const std::string& pem) {
  auto bio = mem_bio(pem);
  int n = 0;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr cert(raw, &X509_free);
    if (X509_STORE_add_cert(store, cert.get()) != 1) {
      // A duplicate anchor is harmless; anything else is not.
      const unsigned long e = ERR_peek_last_error();
      if (ERR_GET_REASON(e) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        throw Error(ErrorKind::Config, "cannot add a trust anchor: " + openssl_errors());
      }
    }
    ++n;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  return n;
}

void free_ctx(ssl_ctx_st* ctx) { SSL_CTX_free(ctx); }

bool proxy_in_environment() {
  for (const char* name : {"https_proxy", "HTTPS_PROXY", "http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return true;
  }
  return false;
}

// Thrown when a connection failed before any byte of the response arrived: on a reused connection
// the server most likely closed it while idle, so the request is sent again on a fresh one.
struct NoResponse {
  std::string what;
};

}  // namespace

// One TCP connection (plus its TLS session). The socket is blocking with SO_RCVTIMEO/SO_SNDTIMEO set
// to a slice of at most a second: a read that waits for the server costs one system call, and the
// slices let cancellation and deadlines be checked.
class Http1Client::Connection {
 public:
  Connection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl), scratch_(std::make_unique<char[]>(kScratchBytes)) {}
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  struct Io {
    Clock::time_point deadline;
    const std::atomic<bool>* shutdown;
    const std::stop_token* cancel;
    const Error::Context* ctx;
    std::optional<milliseconds> idle;  // longest silence allowed (streams)
    mutable Clock::time_point last_data = Clock::now();
  };

  void check(const Io& io) {
    if (io.shutdown->load() || io.cancel->stop_requested()) {
      throw Error(ErrorKind::Cancelled, "HTTP request cancelled", *io.ctx);
    }
    const auto now = Clock::now();
    if (now >= io.deadline) throw Error(ErrorKind::Timeout, "HTTP request timed out", *io.ctx);
    auto slice = std::min(kSlice, std::chrono::ceil<milliseconds>(io.deadline - now));
    if (io.idle) {
      const auto quiet_until = io.last_data + *io.idle;
      if (now >= quiet_until) throw Error(ErrorKind::Timeout, "no data within the idle timeout", *io.ctx);
      slice = std::min(slice, std::chrono::ceil<milliseconds>(quiet_until - now));
    }
    if (slice != slice_) {
      timeval tv{static_cast<time_t>(slice.count() / 1000), static_cast<suseconds_t>((slice.count() % 1000) * 1000)};
      if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
          ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        throw Error(ErrorKind::Transport, std::string("setsockopt failed: ") + std::strerror(errno), *io.ctx);
      }
      slice_ = slice;
    }
  }

  void handshake(const Io& io) {
    for (;;) {
      check(io);
      ERR_clear_error();
      const int rc = SSL_connect(ssl_);
      if (rc == 1) return;
      const int e = SSL_get_error(ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
      std::string why;
      const long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        why = std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
        ERR_clear_error();
      } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        why = errno != 0 ? std::strerror(errno) : "connection closed during the handshake";
      } else {
        why = openssl_errors();
      }
      throw Error(ErrorKind::Transport, "TLS handshake failed: " + why, *io.ctx);
    }
  }

  // Throws NoResponse when the peer is gone (so a reused connection can be replaced).
  void write_all(const Io& io, std::string_view data) {
    while (!data.empty()) {
      check(io);
      const int want = static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX));
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int n = SSL_write(ssl_, data.data(), want);
        if (n > 0) {
          data.remove_prefix(static_cast<std::size_t>(n));
          continue;
        }
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) continue;
        if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EINTR)) continue;
        throw NoResponse{"TLS write failed: " + (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0
                                                      ? std::string(std::strerror(errno))
                                                      : openssl_errors())};
      }
      const ssize_t n = ::send(fd_, data.data(), static_cast<std::size_t>(want), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        continue;
      } else {
        throw NoResponse{std::string("write failed: ") + std::strerror(errno)};
      }
    }
  }

  // Bytes read (> 0), or 0 when the peer closed the connection. A reset is an error.
  std::size_t read_some(const Io& io, char* buf, std::size_t cap) {
    for (;;) {
      check(io);
      const int want = static_cast<int>(std::min<std::size_t>(cap, INT_MAX));
      if (ssl_ != nullptr) {
        ERR_clear_error();
        const int n = SSL_read(ssl_, buf, want);
        if (n > 0) {
          io.last_data = Clock::now();
          return static_cast<std::size_t>(n);
        }
        const int e = SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
        if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
          if (errno == 0) return 0;
          throw Error(ErrorKind::Transport, std::string("TLS read failed: ") + std::strerror(errno), *io.ctx);
        }
        throw Error(ErrorKind::Transport, "TLS read failed: " + openssl_errors(), *io.ctx);
      }
      const ssize_t n = ::recv(fd_, buf, static_cast<std::size_t>(want), 0);
      if (n > 0) io.last_data = Clock::now();
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      throw Error(ErrorKind::Transport, std::string("read failed: ") + std::strerror(errno), *io.ctx);
    }
  }

  // Read buffer, on the heap: 16 KiB on the stack of every reading frame hides the frames above it
  // from profilers that copy a fixed amount of stack (perf --call-graph dwarf).
  char* scratch() noexcept { return scratch_.get(); }

 private:
  int fd_;
  SSL* ssl_;
  std::unique_ptr<char[]> scratch_;
  milliseconds slice_{0};
};

namespace {

using Connection = Http1Client::Connection;
using Io = Connection::Io;

// Parses one response from a connection, buffering what it has read.
class ResponseReader {
 public:
  ResponseReader(Connection& conn, const Io& io, std::size_t max_body) : conn_(conn), io_(io), max_body_(max_body) {}

  // Fills `out`; returns whether the connection can carry another request. With a `sink`, the body of
  // a 2xx response goes to it as it arrives (false from the sink ends the read: not reusable).
  bool read(Response& out, bool head_request, const ChunkHandler* sink = nullptr) {
    bool http11 = false;
    for (;;) {
      std::string_view head = read_head();
      http11 = parse_head(head, out);
      if (out.status >= 200 || out.status == 101) break;
      out.headers.clear();  // 1xx interim response: the final one follows
    }
    if (out.status == 101) throw Error(ErrorKind::Transport, "unexpected protocol switch (101)", *io_.ctx);
    out_ = &out;
    sink_ = sink != nullptr && out.status >= 200 && out.status < 300 ? sink : nullptr;
    bool reusable = http11;
    bool close_delimited = false;
    for (const auto& [name, value] : out.headers) {
      if (iequals(name, "Connection") && lists_token(value, "close")) reusable = false;
    }
    const auto te = out.header("Transfer-Encoding");
    try {
      if (head_request || out.status == 204 || out.status == 304) {
        // No body, whatever the headers announce.
      } else if (te) {
        // The last coding must be chunked (RFC 9112 §6.3); Content-Length is then ignored and the
        // connection is not reused, as it may have been a smuggling attempt.
        std::string_view v = *te;
        const auto comma = v.rfind(',');
        if (!iequals(trim(comma == std::string_view::npos ? v : v.substr(comma + 1)), "chunked")) {
          throw Error(ErrorKind::Transport, "unsupported Transfer-Encoding: " + *te, *io_.ctx);
        }
        if (out.header("Content-Length")) reusable = false;
        read_chunked();
      } else if (auto length = content_length(out)) {
        read_exact(*length);
      } else {
        close_delimited = true;
        read_to_eof();
      }
    } catch (const Stopped&) {
      return false;
    }
    return reusable && !close_delimited && pos_ == buf_.size();
  }

  bool received_anything() const { return received_; }

 private:
  bool fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    const std::size_t n = conn_.read_some(io_, conn_.scratch(), kScratchBytes);
    if (n == 0) return false;
    received_ = true;
    buf_.append(conn_.scratch(), n);
    return true;
  }

  std::string_view read_head() {
    for (;;) {
      const auto end = buf_.find("\r\n\r\n", pos_);
      if (end != std::string::npos) {
        std::string_view head(buf_.data() + pos_, end + 2 - pos_);
        pos_ = end + 4;
        return head;
      }
      if (buf_.size() - pos_ > kMaxHeaderBytes) {
        throw Error(ErrorKind::Transport, "response header section too large", *io_.ctx);
      }
      if (!fill()) {
        if (!received_) throw NoResponse{"connection closed before a response"};
        throw Error(ErrorKind::Transport, "connection closed in the response header", *io_.ctx);
      }
    }
  }

  // Returns whether the response is HTTP/1.1 (or later 1.x).
  bool parse_head(std::string_view head, Response& out) {
    auto eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    head.remove_prefix(eol + 2);
    // "HTTP/1.1 200 OK"; the reason phrase may be empty.
    if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.") || status_line[8] != ' ' ||
        status_line[7] < '0' || status_line[7] > '9' || (status_line.size() > 12 && status_line[12] != ' ')) {
      throw Error(ErrorKind::Transport, "malformed HTTP status line", *io_.ctx);
    }
    long code = 0;
    for (char c : status_line.substr(9, 3)) {
      if (c < '0' || c > '9') throw Error(ErrorKind::Transport, "malformed HTTP status code", *io_.ctx);
      code = code * 10 + (c - '0');
    }
    if (code < 100) throw Error(ErrorKind::Transport, "malformed HTTP status code", *io_.ctx);
    out.status = code;
    while (!head.empty()) {
      eol = head.find("\r\n");
      std::string_view line = head.substr(0, eol);
      head.remove_prefix(eol + 2);
      const auto colon = line.find(':');
      if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) {
        // Also refuses obsolete line folding (a line starting with whitespace).
        throw Error(ErrorKind::Transport, "malformed HTTP header line", *io_.ctx);
      }
      std::string_view value = trim(line.substr(colon + 1));
      if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\0' || c == '\r' || c == '\n'; })) {
        throw Error(ErrorKind::Transport, "malformed HTTP header value", *io_.ctx);
      }
      out.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    return status_line[7] != '0';
  }

  std::optional<std::size_t> content_length(const Response& out) {
    std::optional<std::size_t> length;
    for (const auto& [name, value] : out.headers) {
      if (!iequals(name, "Content-Length")) continue;
      std::string_view rest(value);
      // Repeated or listed values must agree (RFC 9110 §8.6).
      while (true) {
        const auto comma = rest.find(',');
        std::string_view item = trim(rest.substr(0, comma));
        if (item.empty() || item.size() > 15 ||
            !std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          throw Error(ErrorKind::Transport, "invalid Content-Length", *io_.ctx);
        }
        const std::size_t n = std::stoull(std::string(item));
        if (length && *length != n) throw Error(ErrorKind::Transport, "conflicting Content-Length", *io_.ctx);
        length = n;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
    if (length && *length > max_body_ && sink_ == nullptr) {
      throw Error(ErrorKind::Transport, "response body too large", *io_.ctx);
    }
    return length;
  }

  struct Stopped {};

  // Body bytes to the sink, or to the response (bounded).
  void emit(const char* data, std::size_t n) {
    if (n == 0) return;
    if (sink_ != nullptr) {
      if (!(*sink_)(std::string_view(data, n))) throw Stopped{};
      return;
    }
    if (out_->body.size() + n > max_body_) throw Error(ErrorKind::Transport, "response body too large", *io_.ctx);
    out_->body.append(data, n);
  }

  // Passes on the next `n` body bytes as they arrive.
  void pass(std::size_t n, const char* closed_in) {
    while (n > 0) {
      if (pos_ == buf_.size() && !fill()) throw Error(ErrorKind::Transport, closed_in, *io_.ctx);
      const std::size_t k = std::min(n, buf_.size() - pos_);
      pos_ += k;
      n -= k;
      emit(buf_.data() + pos_ - k, k);
    }
  }

  void read_exact(std::size_t n) {
    if (sink_ == nullptr) out_->body.reserve(n);
    pass(n, "connection closed in the response body");
  }

  std::string_view line() {
    for (;;) {
      const auto end = buf_.find("\r\n", pos_);
      if (end != std::string::npos) {
        std::string_view l(buf_.data() + pos_, end - pos_);
        pos_ = end + 2;
        return l;
      }
      if (buf_.size() - pos_ > kMaxChunkLine) throw Error(ErrorKind::Transport, "chunk line too long", *io_.ctx);
      if (!fill()) throw Error(ErrorKind::Transport, "connection closed in a chunked body", *io_.ctx);
    }
  }

  void read_chunked() {
    for (;;) {
      std::string_view size_line = line();
      size_line = trim(size_line.substr(0, size_line.find(';')));  // chunk extensions are ignored
      if (size_line.empty() || size_line.size() > 15) {
        throw Error(ErrorKind::Transport, "malformed chunk size", *io_.ctx);
      }
      std::size_t size = 0;
      for (char c : size_line) {
        int d = (c >= '0' && c <= '9') ? c - '0' : (lower(c) >= 'a' && lower(c) <= 'f') ? lower(c) - 'a' + 10 : -1;
        if (d < 0) throw Error(ErrorKind::Transport, "malformed chunk size", *io_.ctx);
        size = size * 16 + static_cast<std::size_t>(d);
      }
      if (size == 0) break;
      pass(size, "connection closed in a chunked body");
      if (!line().empty()) throw Error(ErrorKind::Transport, "malformed chunk terminator", *io_.ctx);
    }
    std::size_t trailer = 0;
    while (!line().empty()) {  // trailer fields are not used
      if (++trailer > 100) throw Error(ErrorKind::Transport, "too many trailer fields", *io_.ctx);
    }
  }

  void read_to_eof() {
    for (;;) {
      if (pos_ < buf_.size()) {
        const std::size_t k = buf_.size() - pos_;
        pos_ = buf_.size();
        emit(buf_.data() + pos_ - k, k);
      }
      if (!fill()) return;
    }
  }

  Connection& conn_;
  const Io& io_;
  std::size_t max_body_;
  Response* out_ = nullptr;
  const ChunkHandler* sink_ = nullptr;
  std::string buf_;
  std::size_t pos_ = 0;
  bool received_ = false;
};

// Resolves and connects within the deadline; the returned socket is blocking.
int connect_tcp(const Url& u, Clock::time_point deadline, const Io& io) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &found); rc != 0) {
    throw Error(ErrorKind::Transport, std::string("cannot resolve host: ") + gai_strerror(rc), *io.ctx);
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    bool ok = ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok && errno == EINPROGRESS) {
      for (;;) {
        if (io.shutdown->load() || io.cancel->stop_requested()) {
          ::close(fd);
          throw Error(ErrorKind::Cancelled, "HTTP request cancelled", *io.ctx);
        }
        const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
          ::close(fd);
          throw Error(ErrorKind::Timeout, "connection timed out", *io.ctx);
        }
        pollfd p{fd, POLLOUT, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(std::min(left, kSlice).count()));
        if (rc < 0 && errno != EINTR) break;
        if (rc > 0) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          ok = err == 0;
          errno = err;
          break;
        }
      }
    }
    if (!ok) {
      last_error = std::strerror(errno);
      ::close(fd);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
  }
  throw Error(ErrorKind::Transport, "cannot connect: " + last_error, *io.ctx);
}

}  // namespace

Http1Client::Http1Client(TlsOptions tls, Http1Options options)
    : tls_(std::move(tls)),
      options_(std::move(options)),
      curl_(tls_, CurlOptions{options_.user_agent, options_.max_idle_per_origin}),
      via_curl_(options_.proxy_from_environment && proxy_in_environment()),
      ctx_(SSL_CTX_new(TLS_client_method()), &free_ctx) {
  if (!ctx_) throw Error(ErrorKind::Internal, "SSL_CTX_new failed: " + openssl_errors());
  SSL_CTX* ctx = ctx_.get();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Read whole records (and whatever follows) in one system call instead of header, then body.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_verify(ctx, tls_.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  // Custom anchors replace the system's, as with libcurl's CAINFO.
  if (!tls_.ca_pem.empty() || !tls_.ca_file.empty()) {
    int anchors = 0;
    if (!tls_.ca_pem.empty()) anchors += add_anchors(SSL_CTX_get_cert_store(ctx), tls_.ca_pem);
    if (!tls_.ca_file.empty()) anchors += add_anchors(SSL_CTX_get_cert_store(ctx), detail::read_ca_file(tls_.ca_file));
    if (anchors == 0) throw Error(ErrorKind::Config, "no certificate in the configured CA bundle");
  } else {
    // The system bundle (~150 certificates, ~0.8 MiB parsed) is loaded at the first TLS connection:
    // a sidecar with nothing to issue never talks to its CA.
    system_trust_ = true;
  }
  if (!tls_.client_cert_pem.empty()) {  // CurlClient's constructor already checked key and cert go together
    auto bio = mem_bio(tls_.client_cert_pem);
    X509Ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!leaf || SSL_CTX_use_certificate(ctx, leaf.get()) != 1) {
      throw Error(ErrorKind::Config, "cannot use the client certificate: " + openssl_errors());
    }
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
        X509_free(extra);
        throw Error(ErrorKind::Config, "cannot use the client certificate chain: " + openssl_errors());
      }
    }
    ERR_clear_error();
    auto key_bio = mem_bio(tls_.client_key_pem);
    PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
    if (!key || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
      ERR_clear_error();  // never echo anything about the key
      throw Error(ErrorKind::Config, "the client key cannot be used with the client certificate");
    }
  }
}

Http1Client::~Http1Client() = default;

void Http1Client::shutdown() {
  shutdown_.store(true);
  curl_.shutdown();
}

Response Http1Client::stream(const Request& request, const ChunkHandler& on_chunk) {
  if (via_curl_) return curl_.stream(request, on_chunk);
  return perform(request, &on_chunk);
}

std::unique_ptr<Http1Client::Connection> Http1Client::take_idle(const std::string& origin) {
  std::lock_guard lock(mu_);
  auto it = idle_.find(origin);
  if (it == idle_.end() || it->second.empty()) return nullptr;
  auto conn = std::move(it->second.back());  // the most recently used is the most likely alive
  it->second.pop_back();
  return conn;
}

void Http1Client::release(const std::string& origin, std::unique_ptr<Connection> conn) {
  std::lock_guard lock(mu_);
  auto& list = idle_[origin];
  if (list.size() < options_.max_idle_per_origin && !shutdown_.load()) list.push_back(std::move(conn));
}

Response Http1Client::send(const Request& request) {
  if (via_curl_) return curl_.send(request);
  return perform(request, nullptr);
}

Response Http1Client::perform(const Request& request, const ChunkHandler* on_chunk) {
  const Error::Context ctx{{"method", request.method}, {"url", request.url}};
  if (shutdown_.load() || request.cancel.stop_requested()) {
    throw Error(ErrorKind::Cancelled, "HTTP request cancelled", ctx);
  }
  const Url url = parse_url(request.url);
  if (!is_token(request.method)) throw Error(ErrorKind::Invalid, "invalid HTTP method", ctx);

  // The request head and body in one buffer: one TLS write for small requests.
  std::string out;
  out.reserve(256 + request.body.size());
  out.append(request.method).append(" ").append(url.target).append(" HTTP/1.1\r\n");
  bool own_host = false, own_agent = false, own_accept = false;
  for (const auto& [name, value] : request.headers) {
    if (!is_token(name) || value.find_first_of("\r\n") != std::string::npos || value.find('\0') != std::string::npos) {
      throw Error(ErrorKind::Invalid, "invalid HTTP header", {{"header", name}});
    }
    if (iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") || iequals(name, "Connection")) {
      throw Error(ErrorKind::Invalid, "HTTP header is set by the client itself", {{"header", name}});
    }
    own_host = own_host || iequals(name, "Host");
    own_agent = own_agent || iequals(name, "User-Agent");
    own_accept = own_accept || iequals(name, "Accept");
  }
  if (!own_host) out.append("Host: ").append(url.host_header).append("\r\n");
  if (!own_agent) out.append("User-Agent: ").append(options_.user_agent).append("\r\n");
  if (!own_accept) out.append("Accept: */*\r\n");
  for (const auto& [name, value] : request.headers) out.append(name).append(": ").append(value).append("\r\n");
  const bool head_request = request.method == "HEAD";
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    out.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  }
  out.append("\r\n").append(request.body);

  if (url.tls && system_trust_) {
    std::call_once(system_trust_once_, [this] {  // before the first SSL_new: the SSL_CTX is not yet shared
      if (SSL_CTX_set_default_verify_paths(ctx_.get()) != 1) {
        throw Error(ErrorKind::Config, "cannot load the system trust store: " + openssl_errors());
      }
    });
  }
  const auto deadline = Clock::now() + request.timeout;
  const Io io{deadline, &shutdown_, &request.cancel, &ctx, request.idle_timeout};
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<Connection> conn = attempt == 0 ? take_idle(url.origin) : nullptr;
    const bool reused = conn != nullptr;
    if (!conn) {
      const int fd = connect_tcp(url, std::min(deadline, Clock::now() + request.connect_timeout), io);
      SSL* ssl = nullptr;
      if (url.tls) {
        ssl = SSL_new(ctx_.get());
        if (ssl == nullptr) {
          ::close(fd);
          throw Error(ErrorKind::Internal, "SSL_new failed: " + openssl_errors(), ctx);
        }
      }
      conn = std::make_unique<Connection>(fd, ssl);
      if (ssl != nullptr) {
        SSL_set_fd(ssl, fd);
        const bool ip = is_ip_literal(url.host);
        if (!ip) SSL_set_tlsext_host_name(ssl, url.host.c_str());
        if (!tls_.insecure_skip_verify) {
          const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), url.host.c_str())
                             : SSL_set1_host(ssl, url.host.c_str());
          if (set != 1) throw Error(ErrorKind::Internal, "cannot set the name to verify: " + openssl_errors(), ctx);
        }
        conn->handshake(io);
      }
    }
    try {
      conn->write_all(io, out);
      ResponseReader reader(*conn, io, options_.max_body_bytes);
      Response response;
      try {
        if (reader.read(response, head_request, on_chunk)) release(url.origin, std::move(conn));
      } catch (const Error& e) {
        // A reset before any response byte on a reused connection: the server dropped it while idle.
        if (reused && !reader.received_anything() && e.kind() == ErrorKind::Transport) throw NoResponse{e.what()};
        throw;
      }
      return response;
    } catch (const NoResponse& e) {
      if (!reused) throw Error(ErrorKind::Transport, e.what, ctx);
      // Sent on a connection the server had closed: it never saw the request. Once more, fresh.
    }
  }
}

}  // namespace acme_sidecar::http
