#pragma once
// List + watch + cache for one resource (client-go's reflector and indexer in one piece):
// paginated list, watch from the list's resourceVersion, resume from the last seen RV (bookmarks
// included) after a disconnect, relist on 410 Expired, backoff with jitter on failures. Handlers see
// each resourceVersion of an object once; on a relist they get the difference only.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/backoff.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "kube/client.hpp"

namespace acme_sidecar::kube {

struct InformerOptions {
  ResourceRef resource;
  std::string namespace_name;  // empty: all namespaces
  std::string label_selector;
  std::string field_selector;
  int page_size = 500;
  core::Duration resync_period{0};  // 0: no periodic resync callback
  core::BackoffPolicy backoff =
      core::BackoffPolicy::exponential(std::chrono::seconds(1), 2.0, std::chrono::seconds(30), 0.2);
  // Each watch asks the server to end it after a random time in [min, max) seconds (as client-go),
  // so many watchers do not reconnect in lockstep.
  int min_watch_timeout_seconds = 300;
  int max_watch_timeout_seconds = 600;
  std::optional<std::chrono::milliseconds> idle_timeout;  // client-side silence limit on a watch
  // What the cache keeps of each object (client-go's TransformFunc), e.g. only the metadata when a
  // handler keeps its own decoded form: the cache then costs a few hundred bytes per object instead of
  // the whole JSON tree. Handlers still see every added/updated object in full; the old object of an
  // update, a relist's deletions and get()/list() are the transformed form. Empty: keep everything.
  std::function<nlohmann::json(const nlohmann::json& object)> transform;
  // Keep nothing but each object's key and resourceVersion (~100 bytes instead of a JSON tree of a few
  // hundred), for handlers that keep their own decoded form. The old object of an update, a relist's
  // deletions and get()/list() are then stubs {"metadata":{name, namespace, resourceVersion}} built on
  // demand. Overrides `transform`.
  bool keys_only = false;
  // List and watch PartialObjectMetadata: the server sends each object's metadata only (a Secret's
  // data never crosses the wire), for an informer that needs to know which objects exist.
  Representation representation = Representation::Full;
};

// Called on the informer's thread, outside its lock; they may call get()/list(). A (re)list hands its
// additions and updates over page by page, as the pages arrive, and its deletions once it is complete;
// synced() turns true only after the handlers have seen the whole first list, so caches built by the
// handlers are complete when the informer says so. Exceptions from handlers are logged and swallowed.
struct InformerHandlers {
  std::function<void(const nlohmann::json& object)> on_add;
  std::function<void(const nlohmann::json& old_object, const nlohmann::json& new_object)> on_update;
  std::function<void(const nlohmann::json& last_state)> on_delete;
  std::function<void()> on_resync;  // every resync_period, on a separate thread (level-based healing)
};

struct InformerMetrics {
  std::function<void(std::string_view reason)> on_watch_restart;  // kube_watch_restarts_total{resource,reason}
  std::function<void(core::TimePoint at)> on_event;               // kube_watch_last_event_timestamp_seconds
};

class Informer {
 public:
  Informer(Client& client, InformerOptions options, InformerHandlers handlers, core::Clock& clock,
           core::RandomSource random, core::Logger log, InformerMetrics metrics = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Blocks until `stop` is requested. Never throws.
  void run(std::stop_token stop);

  bool synced() const;
  // Real-time wait (bounded by `timeout` when given) for the first complete list.
  bool wait_for_sync(std::stop_token stop, std::optional<std::chrono::milliseconds> timeout = std::nullopt) const;

  // Copies out of the cache. `key` is "namespace/name" (or "name" for cluster-scoped objects).
  std::optional<nlohmann::json> get(const std::string& key) const;
  std::optional<nlohmann::json> get(const std::string& ns, const std::string& name) const;
  std::vector<nlohmann::json> list() const;
  // The cached objects themselves (immutable, shared): no deep copy per call.
  std::shared_ptr<const nlohmann::json> get_shared(const std::string& key) const;
  std::vector<std::shared_ptr<const nlohmann::json>> list_shared() const;
  std::vector<std::string> keys() const;
  bool contains(const std::string& key) const;
  std::size_t size() const;
  std::string last_resource_version() const;

  // "namespace/name" of an object (or "name" without a namespace); empty when it has no name.
  static std::string key_of(const nlohmann::json& object);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace acme_sidecar::kube
