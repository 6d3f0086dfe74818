#include "tests/support/ca_standin/ca_standin.hpp"

#include <httplib.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "acme/jws.hpp"
#include "core/error.hpp"
#include "crypto/csr.hpp"
#include "crypto/jwk.hpp"
#include "crypto/mint.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::testing {

using nlohmann::json;

namespace {

const char* kUrn = "urn:ietf:params:acme:error:";

struct AuthzRec {
  std::string domain;
  std::string status = "pending";
  std::string chall_status = "pending";
  std::string token;
  std::optional<json> error;
  int polls_left = 0;
};

struct OrderRec {
  std::string account;
  std::vector<std::string> names;
  std::vector<int> authzs;
  std::string status = "pending";
  int polls_left = 0;
  int cert = -1;
  std::optional<std::string> profile;
};

}  // namespace

struct CaStandin::State {
  CaStandinOptions opt;
  core::Clock& clock;
  mutable std::mutex mu;
  std::vector<StandinRequest> log;
  std::set<std::string> nonces;
  int nonce_seq = 0;
  int signed_count = 0;
  int rate_limited_left = 0;
  std::map<std::string, crypto::PublicKey> accounts;  // account URL -> key
  int account_seq = 0;
  std::map<int, OrderRec> orders;
  std::map<int, AuthzRec> authzs;
  std::map<int, std::vector<crypto::Certificate>> certs;      // default chain
  std::map<int, std::vector<crypto::Certificate>> alt_certs;  // alternate chain
  std::set<std::string> issued_ids;                          // ARI cert ids
  std::string last_new_order;
  crypto::PrivateKey root_key, int_key, alt_root_key;
  crypto::Certificate root, intermediate, alt_root, alt_intermediate;

  static crypto::CertificateSpec ca_spec(const std::string& cn, core::TimePoint now) {
    crypto::CertificateSpec s;
    s.common_name = cn;
    s.is_ca = true;
    s.not_before = now - std::chrono::hours(1);
    s.not_after = now + std::chrono::hours(24 * 365);
    return s;
  }

  State(CaStandinOptions o, core::Clock& c)
      : opt(std::move(o)),
        clock(c),
        root_key(crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256)),
        int_key(crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256)),
        alt_root_key(crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256)),
        root(crypto::make_self_signed(root_key, ca_spec("Standin Root", c.now()))),
        intermediate(crypto::issue_certificate(root_key, root, int_key.public_key(), ca_spec("Standin Intermediate", c.now()))),
        alt_root(crypto::make_self_signed(alt_root_key, ca_spec("Standin Alt Root", c.now()))),
        alt_intermediate(
            crypto::issue_certificate(alt_root_key, alt_root, int_key.public_key(), ca_spec("Standin Intermediate", c.now()))) {
    rate_limited_left = opt.rate_limited_new_orders;
  }

  std::string url(const std::string& path) const { return opt.base_url + path; }

  std::string new_nonce() {
    std::string n = "nonce" + std::to_string(++nonce_seq) + "x" + std::to_string(reinterpret_cast<std::uintptr_t>(this) % 9973);
    nonces.insert(n);
    return n;
  }

  http::Response reply(long status, const json& body, const std::string& ct = "application/json") {
    http::Response r;
    r.status = status;
    r.headers.emplace_back("Replay-Nonce", new_nonce());
    r.headers.emplace_back("Content-Type", ct);
    r.body = body.dump();
    return r;
  }

  http::Response problem(long status, const std::string& type, const std::string& detail,
                         std::optional<int> retry_after = std::nullopt) {
    auto r = reply(status, json{{"type", kUrn + type}, {"detail", detail}, {"status", status}},
                   "application/problem+json");
    if (retry_after) r.headers.emplace_back("Retry-After", std::to_string(*retry_after));
    return r;
  }

  json order_json(int id) {
    const OrderRec& o = orders.at(id);
    json j{{"status", o.status}, {"finalize", url("/order/" + std::to_string(id) + "/finalize")}};
    j["identifiers"] = json::array();
    for (const auto& n : o.names) j["identifiers"].push_back({{"type", "dns"}, {"value", n}});
    j["authorizations"] = json::array();
    for (int a : o.authzs) j["authorizations"].push_back(url("/authz/" + std::to_string(a)));
    if (o.cert >= 0) j["certificate"] = url("/cert/" + std::to_string(o.cert));
    if (o.profile) j["profile"] = *o.profile;
    if (o.status == "invalid") {
      for (int a : o.authzs)
        if (authzs.at(a).error) j["error"] = *authzs.at(a).error;
    }
    return j;
  }

  json authz_json(int id) {
    const AuthzRec& a = authzs.at(id);
    json ch{{"type", "http-01"}, {"url", url("/chall/" + std::to_string(id))}, {"token", a.token}, {"status", a.chall_status}};
    if (a.error) ch["error"] = *a.error;
    return json{{"identifier", {{"type", "dns"}, {"value", a.domain}}}, {"status", a.status}, {"challenges", json::array({ch})}};
  }

  // A validation in progress finishes after opt.authz_pending_polls polls of its authorization or
  // of its order (clients may poll either). Returns the Retry-After to send while it is pending.
  std::optional<int> advance_validation(AuthzRec& a) {
    if (a.status != "pending" || a.chall_status != "processing") return std::nullopt;
    if (a.polls_left > 0) {
      --a.polls_left;
      return opt.authz_retry_after;
    }
    a.status = a.error ? "invalid" : "valid";
    a.chall_status = a.error ? "invalid" : "valid";
    return std::nullopt;
  }

  // Orders become ready when every authorization is valid.
  void update_order(OrderRec& o) {
    if (o.status != "pending") return;
    bool all_valid = true;
    for (int a : o.authzs) {
      if (authzs.at(a).status == "invalid") {
        o.status = "invalid";
        return;
      }
      if (authzs.at(a).status != "valid") all_valid = false;
    }
    if (all_valid) o.status = "ready";
  }

  void issue(int order_id, const crypto::Bytes& csr_der) {
    OrderRec& o = orders.at(order_id);
    auto now = clock.now();
    crypto::CsrInfo info = crypto::parse_csr(crypto::ByteView(csr_der));
    crypto::PublicKey subject = info.public_key;
    std::vector<std::string> names = o.names;
    if (opt.hostile == Hostile::WrongNames) names.push_back("evil.example");
    if (opt.hostile == Hostile::WrongKey)
      subject = crypto::PrivateKey::generate(crypto::KeyAlgorithm::EcdsaP256).public_key();
    crypto::CertificateSpec spec;
    spec.dns_names = names;
    spec.not_before = now - std::chrono::minutes(1);
    spec.not_after = now + std::chrono::hours(24 * 90);
    crypto::Certificate leaf = crypto::issue_certificate(int_key, intermediate, subject, spec);
    int id = static_cast<int>(certs.size()) + 1;
    certs[id] = {leaf, intermediate};
    alt_certs[id] = {leaf, alt_intermediate};
    issued_ids.insert(crypto::ari_cert_id(leaf));
    o.cert = id;
  }

  http::Response handle(const http::Request& req) {
    std::lock_guard l(mu);
    std::string path = req.url.substr(std::min(req.url.size(), opt.base_url.size()));
    log.push_back({req.method, path, clock.now()});
    if (path == "/directory" && req.method == "GET") {
      json meta{{"termsOfService", url("/terms")}, {"website", "https://ca.test/"}};
      if (opt.external_account_required) meta["externalAccountRequired"] = true;
      if (!opt.profiles.empty()) meta["profiles"] = opt.profiles;
      json d{{"newNonce", url("/nonce")}, {"newAccount", url("/new-account")}, {"newOrder", url("/new-order")},
             {"revokeCert", url("/revoke")}, {"keyChange", url("/key-change")}, {"meta", meta}};
      if (opt.offer_ari) d["renewalInfo"] = url("/renewal-info");
      http::Response r;  // no Replay-Nonce here, as Boulder: the client must HEAD newNonce once
      r.status = 200;
      r.headers.emplace_back("Content-Type", "application/json");
      r.body = d.dump();
      return r;
    }
    if (path == "/nonce") {
      http::Response r;
      r.status = req.method == "HEAD" ? 200 : 204;
      r.headers.emplace_back("Replay-Nonce", new_nonce());
      r.headers.emplace_back("Cache-Control", "no-store");
      return r;
    }
    if (path.rfind("/renewal-info/", 0) == 0 && req.method == "GET") {
      std::string id = path.substr(14);
      if (!issued_ids.count(id)) return problem(404, "malformed", "unknown certificate id");
      auto r = reply(200, json{{"suggestedWindow", {{"start", opt.ari_window_start}, {"end", opt.ari_window_end}}}});
      if (opt.ari_retry_after) r.headers.emplace_back("Retry-After", std::to_string(*opt.ari_retry_after));
      return r;
    }
    if (req.method != "POST") return problem(405, "malformed", "method not allowed");

    // Every POST is a JWS: check it as a CA would.
    acme::JwsMessage m;
    try {
      m = acme::parse_jws(req.body);
    } catch (const std::exception& e) {
      return problem(400, "malformed", std::string("bad JWS: ") + e.what());
    }
    if (m.url != req.url) return problem(400, "unauthorized", "JWS url does not match the request URL");
    if (!nonces.erase(m.nonce)) return problem(400, "badNonce", "unknown nonce");
    ++signed_count;
    if (opt.bad_nonce_every > 0 && signed_count % opt.bad_nonce_every == 0)
      return problem(400, "badNonce", "injected bad nonce");
    std::optional<crypto::PublicKey> key;
    std::string account;
    if (path == "/new-account") {
      if (!m.jwk || !m.kid.empty()) return problem(400, "malformed", "newAccount needs jwk, not kid");
      key = m.jwk;
    } else {
      if (m.jwk || m.kid.empty()) return problem(400, "malformed", "kid required");
      auto it = accounts.find(m.kid);
      if (it == accounts.end()) return problem(400, "accountDoesNotExist", "no such account");
      key = it->second;
      account = m.kid;
    }
    if (!acme::verify_jws(m, *key)) return problem(400, "malformed", "JWS signature does not verify");
    json payload;
    if (!m.payload.empty()) {
      payload = json::parse(m.payload, nullptr, false);
      if (payload.is_discarded()) return problem(400, "malformed", "payload is not JSON");
    }

    if (path == "/new-account") {
      std::string jwk = crypto::jwk_json(*key);
      for (const auto& [u, k] : accounts) {
        if (crypto::jwk_json(k) == jwk) {
          auto r = reply(200, json{{"status", "valid"}});
          r.headers.emplace_back("Location", u);
          return r;
        }
      }
      if (payload.value("onlyReturnExisting", false)) return problem(400, "accountDoesNotExist", "no account for this key");
      if (opt.external_account_required && !payload.contains("externalAccountBinding"))
        return problem(400, "externalAccountRequired", "EAB required");
      std::string u = url("/acct/" + std::to_string(++account_seq));
      accounts.emplace(u, *key);
      auto r = reply(201, json{{"status", "valid"}, {"contact", payload.value("contact", json::array())}});
      r.headers.emplace_back("Location", u);
      return r;
    }
    if (path == "/new-order") {
      last_new_order = m.payload;
      if (rate_limited_left > 0) {
        --rate_limited_left;
        return problem(429, "rateLimited", "too many new orders", opt.rate_limit_retry_after);
      }
      OrderRec o;
      o.account = account;
      if (!payload.contains("identifiers") || !payload["identifiers"].is_array() || payload["identifiers"].empty())
        return problem(400, "malformed", "no identifiers");
      for (const auto& id : payload["identifiers"]) o.names.push_back(id.value("value", ""));
      if (payload.contains("profile")) {
        std::string p = payload["profile"].get<std::string>();
        if (!opt.profiles.count(p)) return problem(400, "invalidProfile", "unknown profile");
        o.profile = p;
      }
      for (const auto& n : o.names) {
        int aid = static_cast<int>(authzs.size()) + 1;
        AuthzRec a;
        a.domain = n;
        a.token = "tok" + std::to_string(aid) + "_" + std::to_string(nonce_seq);
        authzs[aid] = a;
        o.authzs.push_back(aid);
      }
      int oid = static_cast<int>(orders.size()) + 1;
      orders[oid] = o;
      auto r = reply(201, order_json(oid));
      r.headers.emplace_back("Location", url("/order/" + std::to_string(oid)));
      return r;
    }
    auto id_after = [&](const std::string& prefix) -> int {
      if (path.rfind(prefix, 0) != 0) return -1;
      try {
        return std::stoi(path.substr(prefix.size()));
      } catch (...) {
        return -1;
      }
    };
    if (int id = id_after("/authz/"); id >= 0) {
      auto it = authzs.find(id);
      if (it == authzs.end()) return problem(404, "malformed", "no such authorization");
      AuthzRec& a = it->second;
      if (payload.is_object() && payload.value("status", "") == "deactivated") {
        a.status = "deactivated";
        return reply(200, authz_json(id));
      }
      std::optional<int> ra = advance_validation(a);
      auto r = reply(200, authz_json(id));
      if (ra) r.headers.emplace_back("Retry-After", std::to_string(*ra));
      return r;
    }
    if (int id = id_after("/chall/"); id >= 0) {
      auto it = authzs.find(id);
      if (it == authzs.end()) return problem(404, "malformed", "no such challenge");
      AuthzRec& a = it->second;
      if (a.chall_status == "pending") {
        std::string ka = a.token + "." + crypto::jwk_thumbprint(*key);
        bool ok = !opt.validator || opt.validator(a.domain, a.token, ka);
        if (!ok)
          a.error = json{{"type", std::string(kUrn) + "incorrectResponse"},
                         {"detail", "The key authorization file from the server did not match this challenge"},
                         {"status", 403}};
        a.chall_status = "processing";
        a.polls_left = opt.authz_pending_polls;
      }
      json ch{{"type", "http-01"}, {"url", url("/chall/" + std::to_string(id))}, {"token", a.token}, {"status", a.chall_status}};
      auto r = reply(200, ch);
      r.headers.emplace_back("Link", "<" + url("/authz/" + std::to_string(id)) + ">;rel=\"up\"");
      return r;
    }
    if (path.size() > 9 && path.rfind("/finalize") == path.size() - 9) {
      int id = id_after("/order/");
      auto it = orders.find(id);
      if (it == orders.end()) return problem(404, "malformed", "no such order");
      OrderRec& o = it->second;
      update_order(o);
      if (o.status != "ready") return problem(403, "orderNotReady", "order is " + o.status);
      if (opt.fail_first_finalize) {
        opt.fail_first_finalize = false;
        return problem(500, "serverInternal", "injected finalize failure");
      }
      std::string csr_b64 = payload.value("csr", "");
      try {
        issue(id, crypto::base64url_decode(csr_b64));
      } catch (const std::exception& e) {
        return problem(400, "badCSR", e.what());
      }
      o.status = opt.order_processing_polls > 0 ? "processing" : "valid";
      o.polls_left = opt.order_processing_polls;
      json j = order_json(id);
      if (o.status == "processing") j.erase("certificate");
      auto r = reply(200, j);
      if (o.status == "processing" && opt.order_retry_after)
        r.headers.emplace_back("Retry-After", std::to_string(*opt.order_retry_after));
      return r;
    }
    if (int id = id_after("/order/"); id >= 0) {
      auto it = orders.find(id);
      if (it == orders.end()) return problem(404, "malformed", "no such order");
      OrderRec& o = it->second;
      if (o.account != account) return problem(403, "unauthorized", "not your order");
      std::optional<int> ra;
      if (o.status == "pending")
        for (int a : o.authzs)
          if (auto r = advance_validation(authzs.at(a))) ra = r;
      update_order(o);
      if (o.status == "processing") {
        if (o.polls_left > 1) {
          --o.polls_left;
          ra = opt.order_retry_after;
        } else {
          o.status = "valid";
        }
      }
      if (opt.hostile == Hostile::GarbageOrderJson) {
        http::Response r;
        r.status = 200;
        r.headers.emplace_back("Replay-Nonce", new_nonce());
        r.headers.emplace_back("Content-Type", "application/json");
        r.body = "{\"status\": \"valid\", \"finalize\": [1,2";
        return r;
      }
      json j = order_json(id);
      if (o.status == "processing") j.erase("certificate");
      auto r = reply(200, j);
      if (ra) r.headers.emplace_back("Retry-After", std::to_string(*ra));
      return r;
    }
    bool alt = path.size() > 4 && path.substr(path.size() - 4) == "/alt";
    if (int id = id_after("/cert/"); id >= 0) {
      auto& store = alt ? alt_certs : certs;
      auto it = store.find(id);
      if (it == store.end()) return problem(404, "malformed", "no such certificate");
      http::Response r;
      r.status = 200;
      r.headers.emplace_back("Replay-Nonce", new_nonce());
      r.headers.emplace_back("Content-Type", "application/pem-certificate-chain");
      if (!alt && opt.alternate_chain)
        r.headers.emplace_back("Link", "<" + url("/cert/" + std::to_string(id) + "/alt") + ">;rel=\"alternate\"");
      auto chain = it->second;
      if (opt.hostile == Hostile::TruncatedChain) chain.erase(chain.begin() + 1, chain.end());
      r.body = crypto::to_pem_chain(chain);
      if (opt.hostile == Hostile::GarbageChain) r.body = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
      return r;
    }
    return problem(404, "malformed", "no such resource");
  }
};

CaStandin::CaStandin(CaStandinOptions options, core::Clock& clock)
    : s_(std::make_unique<State>(std::move(options), clock)) {}
CaStandin::~CaStandin() = default;
http::Response CaStandin::handle(const http::Request& request) { return s_->handle(request); }
std::string CaStandin::directory_url() const { return s_->url("/directory"); }
std::string CaStandin::root_pem() const { return s_->root.to_pem(); }
std::string CaStandin::alt_root_pem() const { return s_->alt_root.to_pem(); }
std::vector<StandinRequest> CaStandin::requests() const {
  std::lock_guard l(s_->mu);
  return s_->log;
}
std::size_t CaStandin::count(const std::string& method, const std::string& prefix) const {
  std::lock_guard l(s_->mu);
  std::size_t n = 0;
  for (const auto& r : s_->log)
    if (r.method == method && r.path.rfind(prefix, 0) == 0) ++n;
  return n;
}
std::string CaStandin::last_new_order_payload() const {
  std::lock_guard l(s_->mu);
  return s_->last_new_order;
}
void CaStandin::set_hostile(Hostile h) {
  std::lock_guard l(s_->mu);
  s_->opt.hostile = h;
}
void CaStandin::finish_processing() {
  std::lock_guard l(s_->mu);
  for (auto& [id, o] : s_->orders) o.polls_left = 0;
}
void CaStandin::forget_accounts() {
  std::lock_guard l(s_->mu);
  s_->accounts.clear();
}

struct CaStandinServer::Impl {
  httplib::Server server;
  std::thread thread;
};

CaStandinServer::CaStandinServer(CaStandinOptions options, core::Clock& clock, int port)
    : impl_(std::make_unique<Impl>()) {
  if (port == 0) {
    port_ = impl_->server.bind_to_any_port("127.0.0.1");
  } else {
    if (!impl_->server.bind_to_port("127.0.0.1", port)) throw std::runtime_error("CA stand-in cannot bind");
    port_ = port;
  }
  if (port_ <= 0) throw std::runtime_error("CA stand-in cannot bind");
  options.base_url = "http://127.0.0.1:" + std::to_string(port_);
  ca_ = std::make_unique<CaStandin>(std::move(options), clock);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    http::Request r;
    r.method = req.method;
    r.url = ca_->directory_url().substr(0, ca_->directory_url().size() - 10) + req.path;
    r.body = req.body;
    http::Response out = ca_->handle(r);
    res.status = static_cast<int>(out.status);
    std::string ct = "text/plain";
    for (const auto& [k, v] : out.headers) {
      if (k == "Content-Type") ct = v;
      else res.set_header(k, v);
    }
    res.set_content(out.body, ct);
  };
  impl_->server.Get(".*", handler);
  impl_->server.Post(".*", handler);
  impl_->server.Options(".*", handler);
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  // Poll until the listener thread is serving (bounded).
  for (int i = 0; i < 500 && !impl_->server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

CaStandinServer::~CaStandinServer() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace acme_sidecar::testing
