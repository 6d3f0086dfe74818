#include "kube/informer.hpp"

#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.hpp"

namespace acme_sidecar::kube {

using core::Error;
using core::ErrorKind;
using nlohmann::json;

namespace {
std::string rv_of(const json& o) {
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return {};
  auto rv = m->find("resourceVersion");
  return rv != m->end() && rv->is_string() ? rv->get<std::string>() : std::string();
}
}  // namespace

struct Informer::Impl {
  Client& client;
  InformerOptions options;
  InformerHandlers handlers;
  core::Clock& clock;
  core::RandomSource random;
  core::Logger log;
  InformerMetrics metrics;

  // One cached object: its resourceVersion (compared on every event) and the (transformed) object,
  // immutable and shared with readers and pending handler calls instead of copied.
  struct Entry {
    std::string rv;
    std::shared_ptr<const json> object;
  };

  mutable std::mutex mu;
  mutable std::condition_variable_any synced_cv;
  std::map<std::string, Entry> cache;
  std::string rv;
  bool synced = false;

  // A pending handler call, collected under the lock and run after it is released. `new_object` is the
  // object as received, `old_object` the cached form.
  struct Delta {
    enum Kind { Add, Update, Delete } kind;
    std::shared_ptr<const json> old_object;
    std::shared_ptr<const json> new_object;
  };

  void restart(std::string_view reason) {
    log.info("watch restart", {{"reason", std::string(reason)}});
    if (metrics.on_watch_restart) metrics.on_watch_restart(reason);
  }

  // What the cache keeps of `full` (shares `full` when there is no transform; nothing when keys_only).
  std::shared_ptr<const json> cached_form(const std::shared_ptr<const json>& full) const {
    if (options.keys_only) return nullptr;
    if (!options.transform) return full;
    return std::make_shared<const json>(options.transform(*full));
  }

  // The cached object, or for keys_only its metadata stub.
  static std::shared_ptr<const json> object_of(const std::string& key, const Entry& e) {
    if (e.object) return e.object;
    json meta = json::object();
    if (auto slash = key.find('/'); slash != std::string::npos) {
      meta["namespace"] = key.substr(0, slash);
      meta["name"] = key.substr(slash + 1);
    } else {
      meta["name"] = key;
    }
    meta["resourceVersion"] = e.rv;
    return std::make_shared<const json>(json{{"metadata", std::move(meta)}});
  }

  void dispatch(std::vector<Delta>& deltas) {
    for (auto& d : deltas) {
      try {
        switch (d.kind) {
          case Delta::Add:
            if (handlers.on_add) handlers.on_add(*d.new_object);
            break;
          case Delta::Update:
            if (handlers.on_update) handlers.on_update(*d.old_object, *d.new_object);
            break;
          case Delta::Delete:
            if (handlers.on_delete) handlers.on_delete(*d.old_object);
            break;
        }
      } catch (const std::exception& e) {
        log.error("informer handler failed", {{"error", e.what()}});
      }
    }
    deltas.clear();
  }

  // Full list, page by page: each page's additions and updates go into the cache and to the handlers
  // as it arrives (only one page of full objects is ever held), the objects the list no longer has are
  // deleted once it is complete. Yields only the differences.
  void relist(std::stop_token stop) {
    ListOptions lo;
    lo.representation = options.representation;
    lo.label_selector = options.label_selector;
    lo.field_selector = options.field_selector;
    lo.limit = options.page_size;
    std::set<std::string> seen;
    std::string list_rv;
    std::vector<Delta> deltas;
    // Bounded: a server that keeps returning continue tokens cannot keep us here forever.
    for (int page = 0;; ++page) {
      if (page >= 100000) throw Error(ErrorKind::Internal, "list did not terminate");
      json list = client.list(options.resource, options.namespace_name, lo);
      if (stop.stop_requested()) return;
      std::string cont;
      if (auto m = list.find("metadata"); m != list.end() && m->is_object()) {
        list_rv = m->value("resourceVersion", "");
        cont = m->value("continue", "");
      }
      if (auto items = list.find("items"); items != list.end() && items->is_array()) {
        for (auto& item : *items) {
          std::string key = key_of(item);
          if (key.empty() || !seen.insert(key).second) continue;
          auto full = std::make_shared<const json>(std::move(item));
          std::string item_rv = rv_of(*full);
          std::lock_guard lock(mu);
          auto it = cache.find(key);
          if (it == cache.end()) {
            cache.emplace(key, Entry{item_rv, cached_form(full)});
            deltas.push_back({Delta::Add, nullptr, std::move(full)});
          } else if (it->second.rv != item_rv) {
            deltas.push_back({Delta::Update, object_of(key, it->second), full});
            it->second = Entry{item_rv, cached_form(full)};
          }
        }
      }
      list = json();  // the page's full objects live on only in the pending handler calls
      dispatch(deltas);
      if (cont.empty()) break;
      lo.continue_token = cont;
      lo.resource_version.clear();  // not allowed together with continue
    }
    {
      std::lock_guard lock(mu);
      for (auto it = cache.begin(); it != cache.end();) {
        if (seen.contains(it->first)) {
          ++it;
          continue;
        }
        deltas.push_back({Delta::Delete, object_of(it->first, it->second), nullptr});
        it = cache.erase(it);
      }
      rv = list_rv;
    }
    const auto changes = deltas.size();
    dispatch(deltas);
    {
      std::lock_guard lock(mu);
      synced = true;
    }
    synced_cv.notify_all();
    log.debug("listed", {{"objects", std::to_string(seen.size())}, {"deleted", std::to_string(changes)},
                         {"resourceVersion", list_rv}});
  }

  void apply(WatchEventType type, json&& received) {
    const std::string new_rv = rv_of(received);
    if (type == WatchEventType::Bookmark) {
      std::lock_guard lock(mu);
      if (!new_rv.empty()) rv = new_rv;
      return;
    }
    const std::string key = key_of(received);
    std::vector<Delta> deltas;
    {
      std::lock_guard lock(mu);
      if (!new_rv.empty()) rv = new_rv;
      if (key.empty()) return;
      auto it = cache.find(key);
      if (type == WatchEventType::Deleted) {
        if (it == cache.end()) return;
        cache.erase(it);
        deltas.push_back({Delta::Delete, std::make_shared<const json>(std::move(received)), nullptr});
      } else {
        if (it != cache.end() && it->second.rv == new_rv) return;  // already seen (replayed after a resume)
        auto full = std::make_shared<const json>(std::move(received));
        if (it == cache.end()) {
          cache.emplace(key, Entry{new_rv, cached_form(full)});
          deltas.push_back({Delta::Add, nullptr, std::move(full)});
        } else {
          deltas.push_back({Delta::Update, object_of(key, it->second), full});
          it->second = Entry{new_rv, cached_form(full)};
        }
      }
    }
    dispatch(deltas);
  }

  int watch_timeout() {
    int lo = std::max(1, options.min_watch_timeout_seconds);
    int hi = std::max(lo + 1, options.max_watch_timeout_seconds);
    return lo + static_cast<int>(random() * (hi - lo));
  }

  void run(std::stop_token stop) {
    int failures = 0;
    bool need_list = true;
    while (!stop.stop_requested()) {
      bool sleep_needed = false;
      core::Duration server_wait{};  // the server's Retry-After, when it gave one
      try {
        if (need_list) {
          relist(stop);
          need_list = false;
          failures = 0;
        }
        WatchOptions wo;
        {
          std::lock_guard lock(mu);
          wo.resource_version = rv;
        }
        wo.representation = options.representation;
        wo.label_selector = options.label_selector;
        wo.field_selector = options.field_selector;
        wo.timeout_seconds = watch_timeout();
        wo.idle_timeout = options.idle_timeout;
        wo.stop = stop;
        int events = 0;
        client.watch(options.resource, options.namespace_name, wo, [&](WatchEventType type, json&& obj) {
          ++events;
          failures = 0;
          if (metrics.on_event) metrics.on_event(clock.now());
          apply(type, std::move(obj));
          return !stop.stop_requested();
        });
        if (stop.stop_requested()) break;
        restart("closed");
        // A server that ends watches at once must not make us spin: empty watches count as failures.
        if (events == 0) {
          ++failures;
          sleep_needed = true;
        }
      } catch (const Error& e) {
        if (stop.stop_requested() || e.kind() == ErrorKind::Cancelled) break;
        ++failures;
        if (e.kind() == ErrorKind::Gone) {
          restart("expired");
          need_list = true;
          // The first 410 relists at once (as client-go); repeated ones back off.
          sleep_needed = failures > 1;
        } else {
          if (e.retry_after) server_wait = *e.retry_after;
          restart(core::to_string(e.kind()));
          log.warn("list/watch failed", {{"error", e.what()}, {"failures", std::to_string(failures)}});
          sleep_needed = true;
        }
      } catch (const std::exception& e) {
        if (stop.stop_requested()) break;
        ++failures;
        restart("internal");
        log.error("list/watch failed", {{"error", e.what()}});
        sleep_needed = true;
      }
      if (sleep_needed) {
        auto delay = std::max(core::backoff_delay(options.backoff, std::max(1, failures), random), server_wait);
        if (!clock.sleep_for(delay, stop)) break;
      }
    }
  }
};

Informer::Informer(Client& client, InformerOptions options, InformerHandlers handlers, core::Clock& clock,
                   core::RandomSource random, core::Logger log, InformerMetrics metrics)
    : impl_(new Impl{client, options, std::move(handlers), clock, std::move(random),
                     log.with("resource", options.resource.resource), std::move(metrics), {}, {}, {}, {}, false}) {
  if (!impl_->random) impl_->random = core::default_random_source();
}

Informer::~Informer() = default;

void Informer::run(std::stop_token stop) {
  std::jthread resync;
  if (impl_->options.resync_period > core::Duration::zero() && impl_->handlers.on_resync) {
    resync = std::jthread([this](std::stop_token own) {
      while (impl_->clock.sleep_for(impl_->options.resync_period, own)) {
        if (!synced()) continue;
        try {
          impl_->handlers.on_resync();
        } catch (const std::exception& e) {
          impl_->log.error("resync handler failed", {{"error", e.what()}});
        }
      }
    });
  }
  std::stop_callback stop_resync(stop, [&] { resync.request_stop(); });
  impl_->run(stop);
  resync.request_stop();
}

bool Informer::synced() const {
  std::lock_guard lock(impl_->mu);
  return impl_->synced;
}

bool Informer::wait_for_sync(std::stop_token stop, std::optional<std::chrono::milliseconds> timeout) const {
  std::unique_lock lock(impl_->mu);
  auto pred = [&] { return impl_->synced; };
  if (timeout) return impl_->synced_cv.wait_for(lock, stop, *timeout, pred);
  return impl_->synced_cv.wait(lock, stop, pred);
}

std::optional<json> Informer::get(const std::string& key) const {
  auto shared = get_shared(key);
  if (!shared) return std::nullopt;
  return *shared;
}

std::optional<json> Informer::get(const std::string& ns, const std::string& name) const {
  return get(ns.empty() ? name : ns + "/" + name);
}

std::vector<json> Informer::list() const {
  std::vector<json> out;
  for (const auto& o : list_shared()) out.push_back(*o);
  return out;
}

std::shared_ptr<const json> Informer::get_shared(const std::string& key) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->cache.find(key);
  if (it == impl_->cache.end()) return nullptr;
  return Impl::object_of(key, it->second);
}

std::vector<std::shared_ptr<const json>> Informer::list_shared() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::shared_ptr<const json>> out;
  out.reserve(impl_->cache.size());
  for (const auto& [k, v] : impl_->cache) out.push_back(Impl::object_of(k, v));
  return out;
}

std::vector<std::string> Informer::keys() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [k, v] : impl_->cache) out.push_back(k);
  return out;
}

bool Informer::contains(const std::string& key) const {
  std::lock_guard lock(impl_->mu);
  return impl_->cache.count(key) != 0;
}

std::size_t Informer::size() const {
  std::lock_guard lock(impl_->mu);
  return impl_->cache.size();
}

std::string Informer::last_resource_version() const {
  std::lock_guard lock(impl_->mu);
  return impl_->rv;
}

std::string Informer::key_of(const json& o) {
  if (!o.is_object()) return {};
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return {};
  std::string name = m->value("name", "");
  if (name.empty()) return {};
  std::string ns = m->value("namespace", "");
  return ns.empty() ? name : ns + "/" + name;
}

}  // namespace acme_sidecar::kube
