#include "kube/events.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/json_document.hpp"
#include "kube/time.hpp"

namespace acme_sidecar::kube {

using core::Error;
using core::ErrorKind;
using nlohmann::json;

namespace {
// Keeps messages bounded (events.k8s.io limits notes to 1 kB) without splitting a UTF-8 sequence.
std::string truncate_utf8(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut));
}
}  // namespace

ObjectReference reference_to(const json& o) {
  ObjectReference r;
  if (!o.is_object()) return r;
  auto str = [](const json& j, const char* k) {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  r.api_version = str(o, "apiVersion");
  r.kind = str(o, "kind");
  auto m = o.find("metadata");
  if (m != o.end() && m->is_object()) {
    r.namespace_name = str(*m, "namespace");
    r.name = str(*m, "name");
    r.uid = str(*m, "uid");
    r.resource_version = str(*m, "resourceVersion");
  }
  return r;
}

EventRecorder::EventRecorder(Client& client, core::Clock& clock, core::Logger log, EventRecorderOptions options)
    : client_(client), clock_(clock), log_(std::move(log)), options_(std::move(options)) {}

EventRecorder::Stats EventRecorder::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool EventRecorder::allow(const std::string& key, core::TimePoint now) {
  auto [it, fresh] = buckets_.try_emplace(key);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = options_.burst;
    b.updated = now;
  } else if (options_.refill_interval > core::Duration::zero()) {
    double refill = std::chrono::duration<double>(now - b.updated) / options_.refill_interval;
    b.tokens = std::min<double>(options_.burst, b.tokens + std::max(0.0, refill));
    b.updated = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

void EventRecorder::evict_if_needed() {
  while (seen_.size() > options_.max_tracked) {
    auto oldest = std::min_element(seen_.begin(), seen_.end(),
                                   [](const auto& a, const auto& b) { return a.second.last < b.second.last; });
    seen_.erase(oldest);
  }
  while (buckets_.size() > options_.max_tracked) {
    auto oldest = std::min_element(buckets_.begin(), buckets_.end(),
                                   [](const auto& a, const auto& b) { return a.second.updated < b.second.updated; });
    buckets_.erase(oldest);
  }
}

void EventRecorder::record(const ObjectReference& object, EventType type, std::string_view reason,
                           std::string_view message) noexcept {
  try {
    const std::string type_str = type == EventType::Warning ? "Warning" : "Normal";
    const std::string msg = truncate_utf8(message, 1024);
    const std::string object_key = object.namespace_name + "/" + object.kind + "/" + object.name + "/" + object.uid;
    const std::string key = object_key + "\x1f" + type_str + "\x1f" + std::string(reason) + "\x1f" + msg;
    const std::string ns = object.namespace_name.empty() ? options_.fallback_namespace : object.namespace_name;
    auto log = log_.with({{"object", object.kind + " " + ns + "/" + object.name}, {"reason", std::string(reason)}});

    // The lock guards the rate limits and the de-duplication state, not the API calls: workers that
    // finish together must not queue behind each other's requests.
    std::unique_lock lock(mu_);
    const auto now = clock_.now();
    if (!allow(object_key, now)) {
      ++stats_.dropped;
      log.debug("event dropped by rate limit");
      return;
    }
    auto it = seen_.find(key);
    if (it != seen_.end() && now - it->second.last < options_.dedup_window) {
      Seen& s = it->second;
      const Seen before = s;
      ++s.count;  // claimed now, so a concurrent repeat counts on from here
      s.last = now;
      const Seen sent = s;
      lock.unlock();
      json patch = {{"count", sent.count}, {"lastTimestamp", format_time(now)}};
      std::optional<Error> failure;
      try {
        client_.patch(resources::events(), sent.event_namespace, sent.event_name, patch, PatchType::Merge);
      } catch (const Error& e) {
        failure = e;
      }
      lock.lock();
      if (!failure) {
        ++stats_.patched;
        return;
      }
      if (auto again = seen_.find(key); again != seen_.end() && again->second.event_name == sent.event_name &&
                                        again->second.count == sent.count) {
        again->second = before;  // not counted on the server: the next repeat sends this count again
      }
      if (failure->kind() != ErrorKind::NotFound) {
        ++stats_.failed;
        log.warn("event update failed", {{"error", failure->what()}});
        return;
      }
      // The Event expired on the server (TTL): create a fresh one below.
    }
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%llx",
                  static_cast<unsigned long long>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count()));
    std::string name = object.name.substr(0, 253 - 17) + suffix;
    // Written as text: one Event per issuance, and a tree of 13 members only to dump it cost more
    // than the request around it.
    const std::string stamp = format_time(now);
    std::string event;
    event.reserve(640 + msg.size());
    auto member = [&](std::string_view key, std::string_view value, bool comma = true) {
      if (comma) event += ',';
      core::append_json_string(event, key);
      event += ':';
      core::append_json_string(event, value);
    };
    event += '{';
    member("apiVersion", "v1", false);
    event += R"(,"count":1)";
    member("firstTimestamp", stamp);
    event += R"(,"involvedObject":{)";
    member("apiVersion", object.api_version, false);
    member("kind", object.kind);
    member("name", object.name);
    if (!object.namespace_name.empty()) member("namespace", object.namespace_name);
    if (!object.resource_version.empty()) member("resourceVersion", object.resource_version);
    if (!object.uid.empty()) member("uid", object.uid);
    event += '}';
    member("kind", "Event");
    member("lastTimestamp", stamp);
    member("message", msg);
    event += R"(,"metadata":{)";
    member("name", name, false);
    member("namespace", ns);
    event += '}';
    member("reason", reason);
    member("reportingComponent", options_.component);
    member("reportingInstance", options_.host);
    event += R"(,"source":{)";
    member("component", options_.component, false);
    if (!options_.host.empty()) member("host", options_.host);
    event += '}';
    member("type", type_str);
    event += '}';
    lock.unlock();
    try {
      client_.create_text(resources::events(), ns, std::move(event), Client::Echo::Metadata);
    } catch (const Error& e) {
      lock.lock();
      ++stats_.failed;
      log.warn("event create failed", {{"error", e.what()}});
      return;
    }
    lock.lock();
    seen_[key] = Seen{name, ns, 1, now};
    ++stats_.created;
    evict_if_needed();
  } catch (const std::exception& e) {
    try {
      log_.error("event recording failed", {{"error", e.what()}});
    } catch (...) {
    }
  } catch (...) {
  }
}

}  // namespace acme_sidecar::kube
