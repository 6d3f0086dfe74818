#include "app/served_probe.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>

#include "core/error.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::app {

namespace {
using core::Error;
using core::ErrorKind;

struct SslCtxDeleter {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct SslDeleter {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const noexcept { X509_free(p); }
};

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  Socket& operator=(Socket&&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Socket connect_with_timeout(const HostPort& address, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string host = address.host.empty() ? "127.0.0.1" : address.host;
  if (getaddrinfo(host.c_str(), std::to_string(address.port).c_str(), &hints, &res) != 0 || !res) {
    throw Error(ErrorKind::Transport, "cannot resolve controller address", {{"address", address.str()}});
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  Socket sock(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (sock.get() < 0) throw Error(ErrorKind::Transport, "socket() failed");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  // SO_SNDTIMEO also bounds connect() on Linux.
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (::connect(sock.get(), res->ai_addr, res->ai_addrlen) != 0) {
    throw Error(errno == EINPROGRESS || errno == EAGAIN ? ErrorKind::Timeout : ErrorKind::Transport,
                "cannot connect to the controller's HTTPS port", {{"address", address.str()}});
  }
  return sock;
}
}  // namespace

ServedCertificate fetch_served_certificate(const HostPort& address, const std::string& sni,
                                           std::chrono::milliseconds timeout) {
  Socket sock = connect_with_timeout(address, timeout);
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) throw Error(ErrorKind::Internal, "SSL_CTX_new failed");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(ctx.get()));
  if (!ssl) throw Error(ErrorKind::Internal, "SSL_new failed");
  SSL_set_fd(ssl.get(), sock.get());
  SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
  if (SSL_connect(ssl.get()) != 1) {
    throw Error(ErrorKind::Transport, "TLS handshake with the controller failed",
                {{"address", address.str()}, {"sni", sni}});
  }
  std::unique_ptr<X509, X509Deleter> peer(SSL_get1_peer_certificate(ssl.get()));
  if (!peer) throw Error(ErrorKind::Crypto, "controller presented no certificate", {{"sni", sni}});
  auto cert = crypto::Certificate::from_native(peer.get());
  SSL_shutdown(ssl.get());
  return ServedCertificate{cert.sha256_fingerprint_hex(), cert.not_after()};
}

}  // namespace acme_sidecar::app
