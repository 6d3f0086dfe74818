#include "app/kube_adapters.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "controller/decode.hpp"
#include "core/error.hpp"
#include "core/ingress.hpp"
#include "core/names.hpp"
#include "crypto/encoding.hpp"
#include "crypto/sign.hpp"

namespace acme_sidecar::app {

namespace {
// The cached Secret keeps only our own annotations (the ones decisions read).
constexpr std::string_view kAnnotationPrefix = "acme-sidecar.io/";

// SecretCache's flattened metadata: per entry a kind byte ('l' label, 'a' annotation), then the key and
// the value, each behind a 4-byte length (values may contain any byte, NUL included).
void put_sized(std::string& out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>((n >> (8 * i)) & 0xff);
  out += s;
}

std::string_view take_sized(std::string_view& in) {
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  auto s = in.substr(4, n);
  in.remove_prefix(4 + n);
  return s;
}

template <typename Fn>
void for_each_meta(std::string_view meta, Fn fn) {
  while (!meta.empty()) {
    const char kind = meta.front();
    meta.remove_prefix(1);
    auto key = take_sized(meta);
    auto value = take_sized(meta);
    fn(kind, key, value);
  }
}
}  // namespace

using core::Error;
using core::ErrorKind;
using nlohmann::json;


std::string short_hash(const std::string& text, std::size_t hex_chars) {
  return crypto::hex_encode(crypto::sha256(crypto::as_bytes(text))).substr(0, hex_chars);
}

controller::SecretData secret_from_json(const json& object) { return controller::decode_secret(object).value; }

json secret_to_json(const controller::SecretData& secret) { return controller::encode_secret(secret); }

// --- Secrets --------------------------------------------------------------------------------------


SecretCache::SecretCache(const controller::CertificateInspector& inspector) : inspector_(inspector) {}

bool SecretCache::upsert(const json& object) {
  auto secret = secret_from_json(object);
  if (secret.name.empty()) return false;
  Entry e;
  // The expensive part (parsing the chain and the key) runs outside the lock, once per resourceVersion.
  e.inspected = std::make_shared<const controller::InspectedTls>(controller::inspect_tls(secret.data, inspector_));
  e.resource_version = std::move(secret.resource_version);
  e.type = std::move(secret.type);
  e.owner_references = std::move(secret.owner_references);
  auto keep = [&](char kind, const std::string& k, const std::string& v) {
    e.metadata += kind;
    put_sized(e.metadata, k);
    put_sized(e.metadata, v);
  };
  if (auto it = secret.labels.find(std::string(core::names::kManagedByLabel)); it != secret.labels.end())
    keep('l', it->first, it->second);
  for (const auto& [k, v] : secret.annotations)
    if (k.starts_with(kAnnotationPrefix)) keep('a', k, v);
  e.metadata.shrink_to_fit();
  auto key = secret.namespace_name.empty() ? secret.name : secret.namespace_name + "/" + secret.name;
  std::unique_lock lock(mu_);
  bool echo = false;
  if (auto it = own_writes_.find(key); it != own_writes_.end()) {
    echo = it->second == e.resource_version;
    own_writes_.erase(it);  // any later version is someone's change
  }
  by_key_[key] = std::move(e);
  return echo;
}

void SecretCache::erase(const json& object) {
  auto key = kube::Informer::key_of(object);
  std::unique_lock lock(mu_);
  by_key_.erase(key);
  own_writes_.erase(key);
}

void SecretCache::note_own_write(const std::string& key, const std::string& resource_version) {
  if (resource_version.empty()) return;
  std::unique_lock lock(mu_);
  // The watch may have delivered the write before the create call returned: nothing left to skip.
  if (auto it = by_key_.find(key); it != by_key_.end() && it->second.resource_version == resource_version) return;
  // Echoes that never come (a relist that coalesced versions) would pile up; forgetting them only
  // costs a reconcile each.
  if (own_writes_.size() >= 4096) own_writes_.clear();
  own_writes_[key] = resource_version;
}

bool SecretCache::awaiting_echo(const std::string& key) const {
  std::shared_lock lock(mu_);
  return own_writes_.count(key) != 0;
}

controller::SecretData SecretCache::expand(const std::string& key, const Entry& e) {
  controller::SecretData s;
  if (auto slash = key.find('/'); slash != std::string::npos) {
    s.namespace_name = key.substr(0, slash);
    s.name = key.substr(slash + 1);
  } else {
    s.name = key;
  }
  s.resource_version = e.resource_version;
  s.type = e.type;
  s.owner_references = e.owner_references;
  s.inspected = e.inspected;
  for_each_meta(e.metadata, [&](char kind, std::string_view k, std::string_view v) {
    (kind == 'l' ? s.labels : s.annotations).emplace(std::string(k), std::string(v));
  });
  return s;
}

std::optional<controller::SecretData> SecretCache::get(const std::string& ns, const std::string& name) const {
  auto key = ns.empty() ? name : ns + "/" + name;
  std::shared_lock lock(mu_);
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  return expand(key, it->second);
}

std::vector<SecretCache::ServedTarget> SecretCache::served_targets() const {
  std::vector<ServedTarget> out;
  std::shared_lock lock(mu_);
  for (const auto& [k, e] : by_key_) {
    if (e.type != core::names::kTlsSecretType || !e.inspected || !e.inspected->inspection.facts) continue;
    std::optional<std::string> names;
    for_each_meta(e.metadata, [&](char kind, std::string_view k, std::string_view v) {
      if (kind == 'a' && k == core::names::kSecretNames) names = std::string(v);
    });
    if (!names) continue;
    auto slash = k.find('/');
    ServedTarget t;
    t.namespace_name = slash == std::string::npos ? std::string() : k.substr(0, slash);
    t.name = slash == std::string::npos ? k : k.substr(slash + 1);
    t.names = std::move(*names);
    t.leaf_sha256 = e.inspected->inspection.facts->leaf_sha256;
    out.push_back(std::move(t));
  }
  return out;
}

std::size_t SecretCache::size() const {
  std::shared_lock lock(mu_);
  return by_key_.size();
}

KubeSecretStore::KubeSecretStore(kube::Client& client, SecretCache* managed_cache,
                                 std::function<void(const std::string&)> on_written, const kube::Informer* existing)
    : client_(client), cache_(managed_cache), on_written_(std::move(on_written)), existing_(existing) {}

std::optional<controller::SecretData> KubeSecretStore::get(const std::string& ns, const std::string& name) {
  const std::string key = ns.empty() ? name : ns + "/" + name;
  if (cache_) {
    // Reconciled again before the watch echoed our own write (an Ingress event queued meanwhile): the
    // cache would show the version before it, and a renewal just written would be ordered again.
    if (cache_->awaiting_echo(key)) return get_fresh(ns, name);
    if (auto cached = cache_->get(ns, name)) return cached;
  }
  if (existing_ != nullptr && existing_->synced() && !existing_->contains(key)) {
    return std::nullopt;  // no Secret of that name: nothing to read
  }
  return get_fresh(ns, name);
}

std::optional<controller::SecretData> KubeSecretStore::get_fresh(const std::string& ns, const std::string& name) {
  try {
    return secret_from_json(client_.get(kube::resources::secrets(), ns, name));
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::NotFound) return std::nullopt;
    throw;
  }
}

controller::SecretData KubeSecretStore::create(const controller::SecretData& secret) {
  return written(secret, client_.create_text(kube::resources::secrets(), secret.namespace_name,
                                             controller::encode_secret_text(secret, /*with_resource_version=*/false),
                                             kube::Client::Echo::Metadata));
}

controller::SecretData KubeSecretStore::update(const controller::SecretData& secret) {
  return written(secret, client_.update_text(kube::resources::secrets(), secret.namespace_name, secret.name,
                                             controller::encode_secret_text(secret), kube::Client::Echo::Metadata));
}

controller::SecretData KubeSecretStore::written(const controller::SecretData& secret, const json& stored_json) {
  auto stored = secret_from_json(stored_json);
  const std::string key = secret.namespace_name + "/" + secret.name;
  if (cache_ != nullptr) cache_->note_own_write(key, stored.resource_version);
  if (on_written_) on_written_(key);
  return stored;
}

// --- Account key ----------------------------------------------------------------------------------

SecretAccountKeyStore::SecretAccountKeyStore(kube::Client& client, std::string ns, const std::string& directory_url)
    : client_(client),
      namespace_(std::move(ns)),
      name_("acme-sidecar-account-" + short_hash(directory_url, 10)),
      directory_(directory_url) {}

std::optional<std::string> SecretAccountKeyStore::load() {
  try {
    auto s = secret_from_json(client_.get(kube::resources::secrets(), namespace_, name_));
    auto it = s.data.find("account.key");
    if (it == s.data.end() || it->second.empty()) return std::nullopt;
    return it->second;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::NotFound) return std::nullopt;
    throw;
  }
}

void SecretAccountKeyStore::save(const std::string& pem) {
  controller::SecretData s;
  s.namespace_name = namespace_;
  s.name = name_;
  s.type = "Opaque";
  s.labels[kManagedByLabel] = kManagedByValue;
  s.annotations["acme-sidecar.io/issuer"] = directory_;
  s.data["account.key"] = pem;
  // Create only: if another replica won the race, its key is the account key (load() returns it).
  client_.create(kube::resources::secrets(), namespace_, secret_to_json(s));
}

// --- Order state ----------------------------------------------------------------------------------

OrderStateStore::OrderStateStore(kube::Client& client, std::string ns, core::Logger log, OrderStateOptions options)
    : client_(client), namespace_(std::move(ns)), log_(std::move(log)), options_(options) {
  if (options_.batch_max == 0) options_.batch_max = 1;
  if (options_.batch_delay > std::chrono::milliseconds::zero()) {
    batcher_ = std::jthread([this](std::stop_token stop) { run_batches(stop); });
  }
}

OrderStateStore::~OrderStateStore() {
  if (batcher_.joinable()) {
    batcher_.request_stop();
    batcher_.join();
  }
  try {
    flush();
  } catch (...) {
  }
}

void OrderStateStore::run_batches(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    // Until something waits; then until the batch is full or the first one has waited long enough.
    wake_.wait(lock, stop, [&] { return !pending_.empty(); });
    if (stop.stop_requested()) break;
    // After failures the batches wait longer (doubling up to a minute): an API server that refuses them
    // (RBAC, outage) gets a request and a warning now and then, not every second.
    const auto due = first_pending_ + std::max(options_.batch_delay, retry_delay_);
    wake_.wait_until(lock, stop, due, [&] { return pending_.size() >= options_.batch_max; });
    if (stop.stop_requested()) break;
    lock.unlock();
    flush();
    lock.lock();
  }
}

void OrderStateStore::flush() {
  std::lock_guard in_flight(flush_mu_);
  std::map<std::string, std::string> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  while (!batch.empty()) {
    // Only what this store wrote can match: its labels, and the ids of these finished orders.
    std::string ids;
    std::vector<std::pair<std::string, std::string>> chunk;
    for (auto it = batch.begin(); it != batch.end() && chunk.size() < options_.batch_max;) {
      if (!ids.empty()) ids += ',';
      ids += it->second;
      chunk.emplace_back(*it);
      it = batch.erase(it);
    }
    kube::ListOptions opts;
    opts.label_selector = std::string(kManagedByLabel) + "=" + kManagedByValue + "," + kOrderLabel + "=true," +
                          kOrderIdLabel + " in (" + ids + ")";
    try {
      client_.remove_collection(kube::resources::secrets(), namespace_, opts);
      log_.debug("order states deleted", {{"count", std::to_string(chunk.size())}});
      std::lock_guard lock(mu_);
      retry_delay_ = std::chrono::milliseconds::zero();
    } catch (const Error& e) {
      log_.warn("could not delete order states; retrying with the next batch",
                {{"count", std::to_string(chunk.size())}, {"error", e.what()}});
      std::lock_guard lock(mu_);
      retry_delay_ = std::min<std::chrono::milliseconds>(
          std::max(retry_delay_ * 2, options_.batch_delay * 2), std::chrono::minutes(1));
      if (pending_.empty()) first_pending_ = std::chrono::steady_clock::now();
      for (auto& [name, id] : chunk) pending_.emplace(name, id);  // a newer entry for the name wins
    }
  }
}

std::string OrderStateStore::object_name(const std::string& certificate_key) const {
  return "acme-sidecar-order-" + short_hash(certificate_key, 16);
}

void OrderStateStore::begin_term() {
  std::lock_guard lock(mu_);
  listed_ = false;
  stored_.clear();
  order_ids_.clear();  // another leader may have rewritten them; load() reads them again
}

bool OrderStateStore::known_absent(const std::string& name) {
  std::lock_guard lock(mu_);  // held across the one LIST: concurrent first loads wait for it
  if (!listed_) {
    try {
      kube::ListOptions opts;
      opts.label_selector = std::string(kOrderLabel) + "=true";
      auto list = client_.list_all(kube::resources::secrets(), namespace_, opts);
      for (const auto& s : list.value("items", json::array())) {
        if (auto n = s["metadata"].find("name"); n != s["metadata"].end() && n->is_string()) stored_.insert(*n);
      }
      for (const auto& [waiting, id] : pending_) stored_.erase(waiting);  // finished, delete on its way
      listed_ = true;
      log_.debug("order states listed", {{"count", std::to_string(stored_.size())}});
    } catch (const Error& e) {
      log_.warn("could not list order states; reading each one", {{"error", e.what()}});
      return false;
    }
  }
  return stored_.count(name) == 0;
}

std::optional<OrderState> OrderStateStore::load(const std::string& certificate_key) {
  const auto name = object_name(certificate_key);
  {
    std::lock_guard lock(mu_);
    if (pending_.count(name)) return std::nullopt;  // finished: its delete waits for the batch
  }
  if (known_absent(name)) return std::nullopt;
  try {
    auto s = secret_from_json(client_.get(kube::resources::secrets(), namespace_, name));
    if (auto id = s.labels.find(kOrderIdLabel); id != s.labels.end() && !id->second.empty()) {
      std::lock_guard lock(mu_);
      order_ids_[name] = id->second;
    }
    OrderState st;
    st.certificate_key = s.data["certificate"];
    st.order_url = s.data["order"];
    st.key_pem = s.data["key.pem"];
    auto names = json::parse(s.data["names"], nullptr, false);
    if (names.is_array())
      for (const auto& n : names)
        if (n.is_string()) st.names.push_back(n.get<std::string>());
    if (st.certificate_key != certificate_key || st.order_url.empty() || st.key_pem.empty()) return std::nullopt;
    return st;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::NotFound) throw;
    std::lock_guard lock(mu_);
    stored_.erase(name);
    return std::nullopt;
  }
}

void OrderStateStore::save(const OrderState& state) {
  controller::SecretData s;
  s.namespace_name = namespace_;
  s.name = object_name(state.certificate_key);
  s.type = "Opaque";
  s.labels[kManagedByLabel] = kManagedByValue;
  s.labels[kOrderLabel] = "true";
  const std::string order_id = short_hash(state.order_url, 16);
  s.labels[kOrderIdLabel] = order_id;
  s.data["certificate"] = state.certificate_key;
  s.data["order"] = state.order_url;
  s.data["names"] = json(state.names).dump();
  s.data["key.pem"] = state.key_pem;
  {
    // Before the write: a create that failed late (timeout) may still have stored it.
    std::lock_guard lock(mu_);
    stored_.insert(s.name);
    order_ids_[s.name] = order_id;
    // This write replaces whatever state the name had: a delete still waiting for it is moot (and for
    // the same order, resumed, it would be wrong).
    pending_.erase(s.name);
  }
  // The state is ours alone and this write must win: an unconditional PUT (Secrets allow one) when the
  // name exists, no GET for a resourceVersion. A Conflict (an API server under contention) or a delete
  // in between (a batch sent just before) is retried, bounded: a lost state only costs a resume.
  const std::string text = controller::encode_secret_text(s);
  bool exists = false;
  for (int attempt = 1;; ++attempt) {
    try {
      if (exists) {
        client_.update_text(kube::resources::secrets(), namespace_, s.name, text, kube::Client::Echo::Metadata);
      } else {
        client_.create_text(kube::resources::secrets(), namespace_, text, kube::Client::Echo::Metadata);
      }
      return;
    } catch (const Error& e) {
      const bool retry = e.kind() == ErrorKind::Conflict || (e.kind() == ErrorKind::AlreadyExists && !exists) ||
                         (e.kind() == ErrorKind::NotFound && exists);
      if (!retry || attempt >= 5) throw;
      exists = e.kind() == ErrorKind::AlreadyExists || (exists && e.kind() == ErrorKind::Conflict);
    }
  }
}

void OrderStateStore::remove(const std::string& certificate_key) {
  const auto name = object_name(certificate_key);
  {
    std::lock_guard lock(mu_);
    // Nothing stored for this key in this term: no DELETE (e.g. a Secret write after a resumed order
    // that was already removed).
    if (listed_ && stored_.count(name) == 0) return;
    auto id = order_ids_.find(name);
    if (options_.batch_delay > std::chrono::milliseconds::zero() && id != order_ids_.end()) {
      const bool first = pending_.empty();
      if (first) first_pending_ = std::chrono::steady_clock::now();
      pending_[name] = id->second;
      order_ids_.erase(id);
      stored_.erase(name);
      // The batcher needs a wake only to start its timer or to send a full batch (a wake per delete would
      // be a context switch per certificate).
      if (first || pending_.size() >= options_.batch_max) wake_.notify_all();
      return;
    }
  }
  // No batching, or a state whose order id this process never saw (left by an older version): by name.
  delete_by_name(name, certificate_key);
}

void OrderStateStore::delete_by_name(const std::string& name, const std::string& certificate_key) {
  // Also a deletecollection (by name and our labels): the one delete verb RBAC grants on Secrets.
  kube::ListOptions opts;
  opts.label_selector = std::string(kManagedByLabel) + "=" + kManagedByValue + "," + kOrderLabel + "=true";
  opts.field_selector = "metadata.name=" + name;
  try {
    client_.remove_collection(kube::resources::secrets(), namespace_, opts);
  } catch (const Error& e) {
    log_.warn("could not delete order state", {{"certificate", certificate_key}, {"error", e.what()}});
    return;  // still there: a later load() reads it
  }
  std::lock_guard lock(mu_);
  stored_.erase(name);
  order_ids_.erase(name);
}

// --- Challenges -----------------------------------------------------------------------------------

KubeChallengeStore::KubeChallengeStore(kube::Client& client, std::string ns, core::Logger log)
    : client_(client),
      namespace_(std::move(ns)),
      log_(std::move(log)),
      local_([this](std::string_view token) -> std::optional<std::string> {
        // Read-through: the leader may have published a moment ago and our watch not seen it yet.
        try {
          auto cm = client_.get(kube::resources::configmaps(), namespace_, object_name(token));
          const auto& data = cm.at("data");
          if (data.value("token", "") != token) return std::nullopt;
          return data.value("keyAuthorization", "");
        } catch (const Error& e) {
          // Not found is the normal miss; anything else (RBAC, API down) would fail validations
          // silently, so it is said.
          if (e.kind() != ErrorKind::NotFound) {
            log_.warn("challenge read-through failed", {{"name", object_name(token)}, {"error", e.what()}});
          }
          return std::nullopt;
        } catch (const std::exception& e) {
          log_.warn("challenge read-through failed", {{"name", object_name(token)}, {"error", e.what()}});
          return std::nullopt;
        }
      }) {}

std::string KubeChallengeStore::object_name(std::string_view token) const {
  return "acme-sidecar-challenge-" + short_hash(std::string(token), 32);
}

void KubeChallengeStore::put(std::string token, std::string key_authorization) {
  local_.put(std::move(token), std::move(key_authorization));
}
void KubeChallengeStore::remove(std::string_view token) { local_.remove(token); }
std::optional<std::string> KubeChallengeStore::lookup(std::string_view token) { return local_.lookup(token); }
std::optional<std::string> KubeChallengeStore::lookup_cached(std::string_view token) const {
  return local_.lookup_cached(token);
}

void KubeChallengeStore::publish(const std::string& token, const std::string& key_authorization,
                                 const acme::ChallengeContext& context) {
  local_.put(token, key_authorization);
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata",
              {{"name", object_name(token)},
               {"namespace", namespace_},
               {"labels", {{kChallengeLabel, "true"}, {kManagedByLabel, kManagedByValue}}}}},
             {"data",
              {{"token", token},
               {"keyAuthorization", key_authorization},
               {"domain", context.domain},
               {"order", context.order_url}}}};
  try {
    client_.create(kube::resources::configmaps(), namespace_, cm, kube::Client::Echo::Metadata);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::AlreadyExists) throw;
  }
}

void KubeChallengeStore::unpublish(const std::string& token) {
  local_.remove(token);
  try {
    client_.remove(kube::resources::configmaps(), namespace_, object_name(token));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::NotFound) {
      log_.warn("could not delete challenge ConfigMap", {{"name", object_name(token)}, {"error", e.what()}});
    }
  }
}

kube::InformerHandlers KubeChallengeStore::handlers() {
  kube::InformerHandlers h;
  auto apply = [this](const json& cm) {
    if (!cm.contains("data") || !cm["data"].is_object()) return;
    auto token = cm["data"].value("token", "");
    auto ka = cm["data"].value("keyAuthorization", "");
    if (!token.empty() && challenge::is_valid_key_authorization(ka)) local_.put(token, ka);
  };
  h.on_add = apply;
  h.on_update = [apply](const json&, const json& now) { apply(now); };
  h.on_delete = [this](const json& cm) {
    if (cm.contains("data") && cm["data"].is_object()) local_.remove(cm["data"].value("token", ""));
  };
  return h;
}

void KubeChallengeStore::clean_stale(core::TimePoint now, core::Duration max_age) {
  try {
    kube::ListOptions opts;
    opts.label_selector = std::string(kChallengeLabel) + "=true";
    auto list = client_.list_all(kube::resources::configmaps(), namespace_, opts);
    for (const auto& cm : list.value("items", json::array())) {
      auto created = cm["metadata"].value("creationTimestamp", "");
      core::TimePoint t;
      try {
        t = acme::parse_rfc3339(created);
      } catch (const std::exception&) {
        continue;
      }
      if (now - t < max_age) continue;
      auto name = cm["metadata"].value("name", "");
      try {
        client_.remove(kube::resources::configmaps(), namespace_, name);
        log_.info("removed stale challenge ConfigMap", {{"name", name}});
      } catch (const Error&) {
      }
    }
  } catch (const Error& e) {
    log_.warn("could not clean stale challenges", {{"error", e.what()}});
  }
}

// --- Ingresses ------------------------------------------------------------------------------------

InformerIngressLister::InformerIngressLister(const kube::Informer* classes, core::Logger log)
    : classes_(classes), log_(std::move(log)) {}

InformerIngressLister::Change InformerIngressLister::upsert(const json& object) {
  auto decoded = controller::decode_ingress(object);
  auto& view = decoded.value;
  Change change;
  if (view.name.empty() || view.namespace_name.empty()) return change;
  if (!decoded.problems.empty()) {
    log_.debug("ingress has malformed fields", {{"ingress", view.key()}, {"problem", decoded.problems.front()}});
  }
  std::erase_if(view.annotations, [](const auto& a) { return !core::decision_annotation(a.first); });
  change.after = view;
  std::unique_lock lock(mu_);
  const auto key = view.key();
  change.before = erase_locked(key);
  for (const auto& tls : view.tls) {
    if (tls.secret_name.empty()) without_secret_[view.namespace_name].insert(key);
    else by_secret_[view.namespace_name + "/" + tls.secret_name].insert(key);
  }
  by_key_[key] = std::move(view);
  return change;
}

std::optional<core::IngressView> InformerIngressLister::erase(const json& object) {
  auto key = kube::Informer::key_of(object);
  std::unique_lock lock(mu_);
  return erase_locked(key);
}

std::optional<core::IngressView> InformerIngressLister::erase_locked(const std::string& key) {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  for (const auto& tls : it->second.tls) {
    const auto index_key = tls.secret_name.empty() ? it->second.namespace_name
                                                   : it->second.namespace_name + "/" + tls.secret_name;
    auto& index = tls.secret_name.empty() ? without_secret_ : by_secret_;
    if (auto i = index.find(index_key); i != index.end()) {
      i->second.erase(key);
      if (i->second.empty()) index.erase(i);  // no empty sets left behind by Ingresses that came and went
    }
  }
  auto removed = std::move(it->second);
  by_key_.erase(it);
  return removed;
}

std::vector<core::IngressView> InformerIngressLister::list(std::string_view ns) const {
  std::shared_lock lock(mu_);
  std::vector<core::IngressView> out;
  if (ns.empty()) {
    out.reserve(by_key_.size());
    for (const auto& [k, v] : by_key_) out.push_back(v);
    return out;
  }
  // Keys are "namespace/name": the namespace's Ingresses are one contiguous range.
  const std::string prefix = std::string(ns) + "/";
  for (auto it = by_key_.lower_bound(prefix); it != by_key_.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it)
    out.push_back(it->second);
  return out;
}

std::vector<core::IngressView> InformerIngressLister::list_for_secret(std::string_view ns,
                                                                      std::string_view secret) const {
  std::shared_lock lock(mu_);
  std::set<std::string> keys;
  if (auto it = by_secret_.find(std::string(ns) + "/" + std::string(secret)); it != by_secret_.end())
    keys.insert(it->second.begin(), it->second.end());
  if (auto it = without_secret_.find(std::string(ns)); it != without_secret_.end())
    keys.insert(it->second.begin(), it->second.end());
  std::vector<core::IngressView> out;
  for (const auto& k : keys)
    if (auto it = by_key_.find(k); it != by_key_.end()) out.push_back(it->second);
  return out;
}

std::vector<std::string> InformerIngressLister::secret_keys() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(by_secret_.size());
  for (const auto& [key, ingresses] : by_secret_)
    if (!ingresses.empty()) out.push_back(key);
  return out;
}

std::vector<core::IngressClassView> InformerIngressLister::classes() const {
  std::vector<core::IngressClassView> out;
  if (!classes_) return out;
  for (const auto& obj : classes_->list()) out.push_back(controller::decode_ingress_class(obj).value);
  return out;
}

std::size_t InformerIngressLister::size() const {
  std::shared_lock lock(mu_);
  return by_key_.size();
}

}  // namespace acme_sidecar::app
