#pragma once
// A small ACME CA stand-in for what Pebble 2.4 lacks: Retry-After on polls, rateLimited with
// Retry-After, ARI (RFC 9773) and profiles, plus hostile answers (garbage JSON, truncated chain,
// certificate for other names, certificate for another key). It checks the client's JWS, nonces and
// key authorizations like a real CA.
//
// CaStandin::handle() is the whole CA as a function (use it directly as a fake http::HttpClient in
// unit tests, with a ManualClock); CaStandinServer puts it behind cpp-httplib on 127.0.0.1 for
// integration tests.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "http/client.hpp"

namespace acme_sidecar::testing {

enum class Hostile { None, GarbageOrderJson, GarbageChain, TruncatedChain, WrongNames, WrongKey };

struct CaStandinOptions {
  std::string base_url = "https://ca.test";  // prefix of every URL it hands out
  std::map<std::string, std::string> profiles;  // offered profiles (meta.profiles)
  bool offer_ari = true;
  bool external_account_required = false;
  // Authorizations stay pending for this many polls after the challenge POST, each answer carrying
  // Retry-After: authz_retry_after (when set).
  int authz_pending_polls = 0;
  std::optional<int> authz_retry_after;
  // The order stays processing for this many polls after finalize (Retry-After: order_retry_after).
  int order_processing_polls = 0;
  std::optional<int> order_retry_after;
  // The first N newOrder requests get 429 rateLimited with Retry-After: rate_limit_retry_after.
  int rate_limited_new_orders = 0;
  int rate_limit_retry_after = 30;
  // The first finalize answers serverInternal (the order stays ready: resume must finalize it).
  bool fail_first_finalize = false;
  // Every N-th signed request gets badNonce (0 = never).
  int bad_nonce_every = 0;
  Hostile hostile = Hostile::None;
  // Decides whether a challenge validates; gets (domain, token, expected key authorization).
  // Unset = always valid.
  std::function<bool(const std::string&, const std::string&, const std::string&)> validator;
  // ARI answer.
  std::string ari_window_start = "2030-01-01T00:00:00Z";
  std::string ari_window_end = "2030-01-02T00:00:00Z";
  std::optional<int> ari_retry_after;
  // Offer an alternate chain (Link rel="alternate") that leads to "Standin Alt Root".
  bool alternate_chain = true;
};

struct StandinRequest {
  std::string method;
  std::string path;
  core::TimePoint at;  // by the stand-in's clock
};

class CaStandin {
 public:
  CaStandin(CaStandinOptions options, core::Clock& clock);
  ~CaStandin();
  http::Response handle(const http::Request& request);

  std::string directory_url() const;
  std::string root_pem() const;      // "Standin Root"
  std::string alt_root_pem() const;  // "Standin Alt Root"
  std::vector<StandinRequest> requests() const;
  // Paths like "/order/" count by prefix.
  std::size_t count(const std::string& method, const std::string& path_prefix) const;
  // The last newOrder payload (JSON text), for checking profile/replaces.
  std::string last_new_order_payload() const;
  void set_hostile(Hostile h);
  // Every processing order becomes valid at its next poll.
  void finish_processing();
  // Forget every account (like a restarted CA).
  void forget_accounts();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// HttpClient adapter calling CaStandin::handle directly (no sockets).
class InProcessHttp final : public http::HttpClient {
 public:
  explicit InProcessHttp(CaStandin& ca) : ca_(ca) {}
  http::Response send(const http::Request& r) override { return ca_.handle(r); }
  http::Response stream(const http::Request& r, const http::ChunkHandler& h) override {
    auto resp = ca_.handle(r);
    h(resp.body);
    resp.body.clear();
    return resp;
  }

 private:
  CaStandin& ca_;
};

// cpp-httplib server on 127.0.0.1:<port> (plain HTTP) serving a CaStandin.
class CaStandinServer {
 public:
  // `port` 0 picks a free one. options.base_url is overwritten with http://127.0.0.1:<port>.
  CaStandinServer(CaStandinOptions options, core::Clock& clock, int port = 0);
  ~CaStandinServer();
  int port() const { return port_; }
  CaStandin& ca() { return *ca_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<CaStandin> ca_;
  int port_ = 0;
};

}  // namespace acme_sidecar::testing
