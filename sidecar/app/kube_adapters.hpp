#pragma once
// Adapters from the controller's narrow interfaces to the Kubernetes API: Secrets (cache first, one
// read-through GET), the ACME account key Secret, the resumable-order state, and the challenge store
// shared by replicas through labelled ConfigMaps. Only app/ combines kube with the other modules.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "acme/account_store.hpp"
#include "acme/client.hpp"
#include "challenge/store.hpp"
#include "controller/interfaces.hpp"
#include "core/log.hpp"
#include "kube/client.hpp"
#include "kube/informer.hpp"

namespace acme_sidecar::app {

inline constexpr const char* kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr const char* kManagedByValue = "acme-sidecar";
inline constexpr const char* kChallengeLabel = "acme-sidecar.io/challenge";
inline constexpr const char* kOrderLabel = "acme-sidecar.io/order";
inline constexpr const char* kOrderIdLabel = "acme-sidecar.io/order-id";

controller::SecretData secret_from_json(const nlohmann::json& object);
nlohmann::json secret_to_json(const controller::SecretData& secret);
// Lower-case hex SHA-256 prefix, used to derive DNS-1123 object names from arbitrary strings.
std::string short_hash(const std::string& text, std::size_t hex_chars = 16);

// Managed Secrets as the reconciler needs them, fed by the label-selected informer's handlers: what
// tls.crt/tls.key say, inspected once per resourceVersion (the PEM bytes, the key above all, are not
// kept), and the metadata decisions read — the managed-by label and the acme-sidecar.io/ annotations,
// flattened into one string. Anything else (foreign annotations, kubectl's last-applied copy) is left
// to the API: a writer reads the whole object with get_fresh first. 10,000 Secrets cost ~5 MiB.
class SecretCache {
 public:
  explicit SecretCache(const controller::CertificateInspector& inspector);
  // Returns true when this version is the echo of a write noted by note_own_write: the reconcile that
  // wrote it already decided on exactly these bytes, so the informer need not enqueue it again.
  bool upsert(const nlohmann::json& secret);
  void erase(const nlohmann::json& secret);  // by its namespace/name
  // This process wrote `key` ("namespace/name") and the API server stored it as `resource_version`.
  void note_own_write(const std::string& key, const std::string& resource_version);
  // This process wrote `key` and the watch has not delivered that version yet: what the cache holds (or
  // lacks) for it is older than the API server's.
  bool awaiting_echo(const std::string& key) const;
  // The cached Secret with `inspected` set, the kept metadata and no data.
  std::optional<controller::SecretData> get(const std::string& namespace_name, const std::string& name) const;
  std::size_t size() const;

  // What the served-certificate probe needs of each managed TLS Secret with an inspected certificate:
  // a few strings per Secret instead of a full copy of the cache every round.
  struct ServedTarget {
    std::string namespace_name, name;
    std::string names;  // annotation acme-sidecar.io/names (comma-separated)
    std::array<std::uint8_t, 32> leaf_sha256{};
  };
  std::vector<ServedTarget> served_targets() const;

 private:
  struct Entry {
    std::string resource_version;
    std::string type;
    std::string metadata;  // each kept label / annotation: kind byte, then key and value with their lengths
    std::vector<controller::OwnerReference> owner_references;
    std::shared_ptr<const controller::InspectedTls> inspected;
  };
  static controller::SecretData expand(const std::string& key, const Entry& e);

  const controller::CertificateInspector& inspector_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry> by_key_;  // namespace/name
  std::map<std::string, std::string> own_writes_;  // namespace/name → resourceVersion not yet echoed
};

// Secrets: managed ones come from the SecretCache; anything else (a foreign Secret of the same name, or
// one the cache has not seen yet) costs one GET — unless `existing` says no Secret of that name exists.
// `existing` is the metadata-only informer of every Secret (names and resourceVersions, no data): the
// cache holds only Secrets with our label, and a foreign Secret of the name must be seen before the CA
// is asked — ordering for a name that is then never written would waste an order (and rate limit).
// While that informer is not synced, or it knows the name, the GET decides. One created by someone else
// in the watch's latency is the only miss: our create then fails with AlreadyExists, the reconciler
// reads it and leaves it alone — one order wasted, as before this informer existed for any create race.
// The write after the issuance is a create without another read; AlreadyExists re-reads (reconciler).
class KubeSecretStore final : public controller::SecretStore {
 public:
  // Writes are noted in `managed_cache` (SecretCache::note_own_write).
  KubeSecretStore(kube::Client& client, SecretCache* managed_cache,
                  std::function<void(const std::string& key)> on_written = {},
                  const kube::Informer* existing = nullptr);
  std::optional<controller::SecretData> get(const std::string& namespace_name, const std::string& name) override;
  // After a Conflict the cache may still hold the losing version: read from the API.
  std::optional<controller::SecretData> get_fresh(const std::string& namespace_name, const std::string& name) override;
  controller::SecretData create(const controller::SecretData& secret) override;
  controller::SecretData update(const controller::SecretData& secret) override;

 private:
  controller::SecretData written(const controller::SecretData& secret, const nlohmann::json& stored);

  kube::Client& client_;
  SecretCache* cache_;
  std::function<void(const std::string&)> on_written_;
  const kube::Informer* existing_;
};

// The ACME account key in Secret `acme-sidecar-account-<hash of directory>` of the own namespace, so
// every replica and every restart use the same account.
class SecretAccountKeyStore final : public acme::AccountKeyStore {
 public:
  SecretAccountKeyStore(kube::Client& client, std::string namespace_name, const std::string& directory_url);
  std::optional<std::string> load() override;
  void save(const std::string& pem) override;
  const std::string& name() const { return name_; }

 private:
  kube::Client& client_;
  std::string namespace_;
  std::string name_;
  std::string directory_;
};

// In-flight order of one certificate (the order URL and the certificate key whose CSR the CA signs),
// in Secret `acme-sidecar-order-<hash>` of the own namespace, so a new leader resumes it.
struct OrderState {
  std::string certificate_key;  // namespace/secretName
  std::string order_url;
  std::vector<std::string> names;
  std::string key_pem;
};

// Why both writes exist: the state is saved once the order exists, before its CSR is finalized, because
// after finalize the CA signs for this key only — a crash that lost the key would cost a second
// certificate (and a second order) instead of a resume. It is deleted once the Secret holds the
// certificate, because a state left behind would be resumed on the next renewal (the CA hands back the
// old certificate: wasted requests) and would keep a private key around that no longer serves anything.
//
// What is not needed is the GET before a first issuance: the names of the stored states are listed once
// per leadership term (begin_term(), or the first load()), and within a term only this leader writes
// them, so a key without a stored state is known without asking. A stale leader that wrote one during a
// handover is the only miss: the new order then overwrites it (save() after AlreadyExists) and at most
// one order is wasted, as with a crash.
//
// The deletes are batched: each state carries its order's id as a label (acme-sidecar.io/order-id, a
// hash of the order URL), and finished orders' states are deleted together by one deletecollection
// whose selector names their ids — at most `batch_delay` after the first, or once `batch_max` wait.
// Selecting by order id instead of by name makes the delay safe: a new order's state for the same
// certificate has another id and is never caught by a batch sent late. Within the term a state waiting
// for its batch already counts as gone (load() does not resume a finished order). A state without an id
// (left by an older version) goes alone, selected by its name: deletecollection is the only delete verb
// the Role grants on Secrets.
struct OrderStateOptions {
  std::chrono::milliseconds batch_delay{1000};  // zero: each state is deleted at once
  std::size_t batch_max = 50;                   // ids per deletecollection (bounds the URL too)
};

class OrderStateStore {
 public:
  OrderStateStore(kube::Client& client, std::string namespace_name, core::Logger log, OrderStateOptions options = {});
  ~OrderStateStore();  // sends the deletes still waiting
  OrderStateStore(const OrderStateStore&) = delete;
  OrderStateStore& operator=(const OrderStateStore&) = delete;

  std::optional<OrderState> load(const std::string& certificate_key);
  void save(const OrderState& state);
  void remove(const std::string& certificate_key);
  // Sends the waiting deletes now (end of a term, shutdown). A failed batch waits for the next one.
  void flush();
  std::string object_name(const std::string& certificate_key) const;
  // Forgets the listed names: the next load() lists them again (a previous leader may have left some).
  void begin_term();

 private:
  // False when the state may exist (listed, or the list failed: then the GET decides).
  bool known_absent(const std::string& object_name);
  void delete_by_name(const std::string& object_name, const std::string& certificate_key);
  void run_batches(std::stop_token stop);

  kube::Client& client_;
  std::string namespace_;
  core::Logger log_;
  OrderStateOptions options_;
  std::mutex mu_;
  bool listed_ = false;
  std::set<std::string> stored_;                   // object names of stored states, while listed_
  std::map<std::string, std::string> order_ids_;   // object name → order id of the state saved or loaded
  std::map<std::string, std::string> pending_;     // object name → order id, waiting for the batch
  std::chrono::steady_clock::time_point first_pending_;
  std::chrono::milliseconds retry_delay_{0};  // after failed batches: the wait before the next one
  std::condition_variable_any wake_;
  std::mutex flush_mu_;  // one batch in flight at a time
  std::jthread batcher_;  // last: stopped and joined before the members it uses go
};

// Challenge tokens for every replica: the leader publishes each as a labelled ConfigMap; every replica's
// informer feeds the local map the responder reads; a miss does one read-through GET.
class KubeChallengeStore final : public challenge::ChallengeStore, public acme::ChallengePublisher {
 public:
  KubeChallengeStore(kube::Client& client, std::string namespace_name, core::Logger log);
  // challenge::ChallengeStore (responder side)
  void put(std::string token, std::string key_authorization) override;
  void remove(std::string_view token) override;
  std::optional<std::string> lookup(std::string_view token) override;
  std::optional<std::string> lookup_cached(std::string_view token) const override;
  bool reads_through() const override { return true; }
  // acme::ChallengePublisher (leader side)
  void publish(const std::string& token, const std::string& key_authorization,
               const acme::ChallengeContext& context) override;
  void unpublish(const std::string& token) override;
  // Informer handlers for the challenge ConfigMaps.
  kube::InformerHandlers handlers();
  // Deletes challenge ConfigMaps older than `max_age` (left behind by a crashed leader).
  void clean_stale(core::TimePoint now, core::Duration max_age);
  std::string object_name(std::string_view token) const;

 private:
  kube::Client& client_;
  std::string namespace_;
  core::Logger log_;
  challenge::InMemoryChallengeStore local_;
};

// Ingresses decoded once per change (fed by the informer's handlers) and indexed by the Secrets they
// name, so a reconcile reads only its own Ingresses instead of copying and decoding the whole cache.
class InformerIngressLister final : public controller::IngressLister {
 public:
  InformerIngressLister(const kube::Informer* classes, core::Logger log);
  struct Change {
    std::optional<core::IngressView> before;  // what the lister held (its certificates need a look too)
    std::optional<core::IngressView> after;
  };
  Change upsert(const nlohmann::json& ingress);
  std::optional<core::IngressView> erase(const nlohmann::json& ingress);  // the removed view
  std::vector<core::IngressView> list(std::string_view namespace_name) const override;
  std::vector<core::IngressView> list_for_secret(std::string_view namespace_name,
                                                 std::string_view secret_name) const override;
  std::vector<std::string> secret_keys() const override;
  std::vector<core::IngressClassView> classes() const override;
  std::size_t size() const;

 private:
  std::optional<core::IngressView> erase_locked(const std::string& key);

  const kube::Informer* classes_;
  core::Logger log_;
  mutable std::shared_mutex mu_;
  std::map<std::string, core::IngressView> by_key_;                 // namespace/name
  std::map<std::string, std::set<std::string>> by_secret_;          // namespace/secret -> Ingress keys
  std::map<std::string, std::set<std::string>> without_secret_;     // namespace -> Ingress keys
};

}  // namespace acme_sidecar::app
