#pragma once
// In-memory fakes of the controller's narrow interfaces. Thread-safe: the Controller tests drive them
// from several workers. Certificates are a readable fake format parsed by FakeInspector:
//   -----BEGIN CERTIFICATE-----\nFAKE names=a,b nb=<unix> na=<unix> key=<id> alg=<alg>\n-----END CERTIFICATE-----
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "controller/interfaces.hpp"
#include "core/error.hpp"

namespace acme_sidecar::controller::testing {

inline std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

inline long long unix_seconds(core::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

inline std::string fake_cert(const std::vector<std::string>& names, core::TimePoint nb, core::TimePoint na,
                             const std::string& key_id, const std::string& alg = "ecdsa-p256") {
  return "-----BEGIN CERTIFICATE-----\nFAKE names=" + join(names) + " nb=" + std::to_string(unix_seconds(nb)) +
         " na=" + std::to_string(unix_seconds(na)) + " key=" + key_id + " alg=" + alg +
         "\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nINTERMEDIATE\n-----END CERTIFICATE-----\n";
}
inline std::string fake_key(const std::string& key_id) {
  return "-----BEGIN PRIVATE KEY-----\n" + key_id + "\n-----END PRIVATE KEY-----\n";
}

class FakeInspector final : public CertificateInspector {
 public:
  Inspection inspect(std::string_view chain, std::string_view key) const override {
    Inspection out;
    auto pos = chain.find("FAKE ");
    if (pos == std::string_view::npos) {
      out.error = "no certificate";
      return out;
    }
    auto line = std::string(chain.substr(pos + 5, chain.find('\n', pos) - pos - 5));
    std::map<std::string, std::string> fields;
    std::istringstream in(line);
    std::string word;
    while (in >> word) {
      auto eq = word.find('=');
      if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
    }
    try {
      core::CertificateFacts f;
      std::string names = fields.at("names");
      std::size_t start = 0;
      while (start < names.size()) {
        auto comma = names.find(',', start);
        f.dns_names.push_back(names.substr(start, comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      f.not_before = core::TimePoint(std::chrono::seconds(std::stoll(fields.at("nb"))));
      f.not_after = core::TimePoint(std::chrono::seconds(std::stoll(fields.at("na"))));
      auto key_id = std::string(key);
      f.key_matches = key.find("\n" + fields.at("key") + "\n") != std::string_view::npos;
      f.key_algorithm = fields.at("alg");
      f.common_name = f.dns_names.empty() ? "" : f.dns_names.front();
      f.issuer_cn = "Fake CA";
      f.ari_id = "fake." + fields.at("key");  // one per issued fake certificate
      for (std::size_t i = 0; i < f.leaf_sha256.size() && i < line.size(); ++i)
        f.leaf_sha256[i] = static_cast<std::uint8_t>(line[i]);
      out.facts = f;
    } catch (const std::exception&) {
      out.error = "malformed fake certificate";
    }
    return out;
  }
};

class FakeLister final : public IngressLister {
 public:
  std::vector<core::IngressView> list(std::string_view ns) const override {
    std::lock_guard lock(mu_);
    std::vector<core::IngressView> out;
    for (const auto& i : items_) {
      if (ns.empty() || i.namespace_name == ns) out.push_back(i);
    }
    return out;
  }
  std::vector<core::IngressClassView> classes() const override {
    std::lock_guard lock(mu_);
    return classes_;
  }
  void upsert(const core::IngressView& v) {
    std::lock_guard lock(mu_);
    for (auto& i : items_) {
      if (i.namespace_name == v.namespace_name && i.name == v.name) {
        i = v;
        return;
      }
    }
    items_.push_back(v);
  }
  void remove(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    std::erase_if(items_, [&](const auto& i) { return i.namespace_name == ns && i.name == name; });
  }
  void set_classes(std::vector<core::IngressClassView> c) {
    std::lock_guard lock(mu_);
    classes_ = std::move(c);
  }

 private:
  mutable std::mutex mu_;
  std::vector<core::IngressView> items_;
  std::vector<core::IngressClassView> classes_;
};

class FakeSecretStore final : public SecretStore {
 public:
  std::optional<SecretData> get(const std::string& ns, const std::string& name) override {
    auto s = get_whole(ns, name);
    // Like app::SecretCache: facts inspected up front, no data.
    if (s && serve_inspected) {
      s->inspected = std::make_shared<const InspectedTls>(inspect_tls(s->data, *serve_inspected));
      s->data.clear();
    }
    return s;
  }
  std::optional<SecretData> get_fresh(const std::string& ns, const std::string& name) override {
    ++fresh_gets;
    return get_whole(ns, name);
  }
  std::optional<SecretData> get_whole(const std::string& ns, const std::string& name) {
    std::lock_guard lock(mu_);
    ++gets;
    auto it = items_.find(ns + "/" + name);
    if (it == items_.end()) return std::nullopt;
    return it->second;
  }
  const CertificateInspector* serve_inspected = nullptr;
  SecretData create(const SecretData& s) override {
    std::lock_guard lock(mu_);
    ++creates;
    auto key = s.namespace_name + "/" + s.name;
    if (items_.count(key)) throw core::Error(core::ErrorKind::AlreadyExists, "secret exists");
    auto stored = s;
    stored.resource_version = std::to_string(++rv_);
    items_[key] = stored;
    return stored;
  }
  SecretData update(const SecretData& s) override {
    std::lock_guard lock(mu_);
    ++updates;
    auto key = s.namespace_name + "/" + s.name;
    auto it = items_.find(key);
    if (it == items_.end()) throw core::Error(core::ErrorKind::NotFound, "secret not found");
    if (conflicts_left > 0) {
      --conflicts_left;
      // Another writer got there first: it bumps the version and adds an annotation we must keep.
      it->second.resource_version = std::to_string(++rv_);
      it->second.annotations["other-writer"] = "was-here";
    }
    if (it->second.resource_version != s.resource_version) {
      throw core::Error(core::ErrorKind::Conflict, "the object has been modified");
    }
    auto stored = s;
    stored.resource_version = std::to_string(++rv_);
    it->second = stored;
    return stored;
  }
  // Test-side access (no counters).
  void put(SecretData s) {
    std::lock_guard lock(mu_);
    s.resource_version = std::to_string(++rv_);
    items_[s.namespace_name + "/" + s.name] = s;
  }
  std::optional<SecretData> peek(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = items_.find(key);
    if (it == items_.end()) return std::nullopt;
    return it->second;
  }
  void erase(const std::string& key) {
    std::lock_guard lock(mu_);
    items_.erase(key);
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return items_.size();
  }

  std::atomic<int> gets{0}, fresh_gets{0}, creates{0}, updates{0};
  std::atomic<int> conflicts_left{0};

 private:
  std::mutex mu_;
  std::map<std::string, SecretData> items_;
  long rv_ = 0;
};

// Issues fake certificates valid [now, now + validity). `behaviour` may throw to simulate CA failures.
class FakeIssuer final : public CertificateIssuer {
 public:
  explicit FakeIssuer(core::Clock& clock) : clock_(clock) {}

  IssuedCertificate issue(const core::DesiredCertificate& d, const IssueContext& ctx) override {
    int inflight = ++in_flight;
    int seen = max_in_flight.load();
    while (inflight > seen && !max_in_flight.compare_exchange_weak(seen, inflight)) {
    }
    struct Leave {
      std::atomic<int>& n;
      ~Leave() { --n; }
    } leave{in_flight};
    {
      std::lock_guard lock(mu_);
      calls.push_back(d);
      replaced_.push_back(ctx.replaces);
    }
    if (hold) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, ctx.stop, [&] { return !hold; });
    }
    if (behaviour) behaviour(d);
    auto now = clock_.now();
    auto id = "k" + std::to_string(++serial_);
    IssuedCertificate out;
    auto names = tamper_names ? std::vector<std::string>{"evil.example"} : d.names;
    out.chain_pem = fake_cert(names, now, now + validity, id, d.key_algorithm);
    out.key_pem = fake_key(wrong_key ? "other" : id);
    out.not_before = now;
    out.not_after = now + validity;
    out.issuer = "https://ca.test/dir";
    return out;
  }
  void release() {
    std::lock_guard lock(mu_);
    hold = false;
    cv_.notify_all();
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return calls.size();
  }
  std::size_t count_for(const std::string& key) {
    std::lock_guard lock(mu_);
    return std::count_if(calls.begin(), calls.end(), [&](const auto& d) { return d.key() == key; });
  }
  std::vector<core::DesiredCertificate> snapshot() {
    std::lock_guard lock(mu_);
    return calls;
  }
  std::vector<std::string> replaced() {
    std::lock_guard lock(mu_);
    return replaced_;
  }

  std::function<void(const core::DesiredCertificate&)> behaviour;
  core::Duration validity = std::chrono::hours(24 * 90);
  std::atomic<bool> hold{false};
  std::atomic<bool> tamper_names{false};
  std::atomic<bool> wrong_key{false};
  std::atomic<int> in_flight{0}, max_in_flight{0};

 private:
  core::Clock& clock_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::vector<core::DesiredCertificate> calls;
  std::vector<std::string> replaced_;  // IssueContext::replaces of each call
  std::atomic<int> serial_{0};
};

struct RecordedEvent {
  std::string ingress;
  EventType type;
  std::string reason;
  std::string message;
  std::string certificate = {};  // set for progress() and outcome()
  std::string via = "event";     // "event", "progress" or "outcome"
};

class RecordingEvents final : public EventSink {
 public:
  void event(const core::IngressRef& ref, EventType type, std::string_view reason, std::string_view message) override {
    std::lock_guard lock(mu_);
    events_.push_back({ref.key(), type, std::string(reason), std::string(message)});
  }
  void progress(const core::IngressRef& ref, std::string_view certificate, std::string_view reason,
                std::string_view message) override {
    std::lock_guard lock(mu_);
    events_.push_back({ref.key(), EventType::Normal, std::string(reason), std::string(message),
                       std::string(certificate), "progress"});
  }
  void outcome(const core::IngressRef& ref, std::string_view certificate, EventType type, std::string_view reason,
               std::string_view message) override {
    std::lock_guard lock(mu_);
    events_.push_back({ref.key(), type, std::string(reason), std::string(message), std::string(certificate),
                       "outcome"});
  }
  std::vector<RecordedEvent> all() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::size_t count(const std::string& reason, const std::string& ingress = "") {
    std::lock_guard lock(mu_);
    return std::count_if(events_.begin(), events_.end(), [&](const auto& e) {
      return e.reason == reason && (ingress.empty() || e.ingress == ingress);
    });
  }

 private:
  std::mutex mu_;
  std::vector<RecordedEvent> events_;
};

class RecordingObserver final : public ControllerObserver {
 public:
  void certificate_status(const CertificateReport& r) override {
    std::lock_guard lock(mu);
    status[r.namespace_name + "/" + r.secret_name] = r;
  }
  void certificate_removed(const std::string& ns, const std::string& name) override {
    std::lock_guard lock(mu);
    status.erase(ns + "/" + name);
    removed.push_back(ns + "/" + name);
  }
  void issuance(std::string_view result, std::string_view reason, std::chrono::duration<double>) override {
    std::lock_guard lock(mu);
    issuances.push_back(std::string(result) + ":" + std::string(reason));
  }
  void managed_certificates(std::size_t n) override { managed = n; }
  void name_rejected(std::string_view reason) override {
    std::lock_guard lock(mu);
    rejected.push_back(std::string(reason));
  }
  std::mutex mu;
  std::map<std::string, CertificateReport> status;
  std::vector<std::string> removed, issuances, rejected;
  std::atomic<std::size_t> managed{0};
};

inline core::IngressView make_ingress(const std::string& name, const std::vector<std::string>& hosts,
                                      const std::string& secret, const std::string& ns = "default") {
  core::IngressView v;
  v.namespace_name = ns;
  v.name = name;
  v.uid = "uid-" + ns + "-" + name;
  v.resource_version = "1";
  v.ingress_class_name = "nginx";
  v.tls.push_back({hosts, secret});
  return v;
}

// Polls `pred` (real time) until it holds or `timeout` passes. For waiting on worker threads only.
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

}  // namespace acme_sidecar::controller::testing
