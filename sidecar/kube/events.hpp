#pragma once
// Kubernetes Events (core/v1) with client-side de-duplication and a per-object rate limit (client-go's
// EventCorrelator in small): a repeat of the same object+type+reason+message within the window
// PATCHes count/lastTimestamp of the existing Event; each object may emit `burst` events, refilled one
// per `refill_interval`. A failing Ingress therefore cannot flood the API server.
#include <cstddef>
#include <map>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "kube/client.hpp"

namespace acme_sidecar::kube {

struct ObjectReference {
  std::string api_version;  // "networking.k8s.io/v1"
  std::string kind;         // "Ingress"
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string resource_version;
};

// The reference to a full object as read from the API (apiVersion, kind, metadata.*); fields that are
// missing stay empty.
ObjectReference reference_to(const nlohmann::json& object);

enum class EventType { Normal, Warning };

struct EventRecorderOptions {
  std::string component = "acme-sidecar";
  std::string host;                         // source.host / reportingInstance (pod name)
  std::string fallback_namespace = "default";  // for events about cluster-scoped objects
  core::Duration dedup_window = std::chrono::minutes(10);
  int burst = 25;
  core::Duration refill_interval = std::chrono::minutes(5);
  std::size_t max_tracked = 4096;  // bounded memory: least recently used entries are forgotten
};

class EventRecorder {
 public:
  EventRecorder(Client& client, core::Clock& clock, core::Logger log, EventRecorderOptions options = {});

  // Never throws: failures are logged. Synchronous (one API call at most).
  void record(const ObjectReference& object, EventType type, std::string_view reason,
              std::string_view message) noexcept;

  struct Stats {
    std::size_t created = 0, patched = 0, dropped = 0, failed = 0;
  };
  Stats stats() const;

 private:
  struct Seen {
    std::string event_name;
    std::string event_namespace;
    int count = 0;
    core::TimePoint last{};
  };
  struct Bucket {
    double tokens = 0;
    core::TimePoint updated{};
  };
  bool allow(const std::string& object_key, core::TimePoint now);
  void evict_if_needed();

  Client& client_;
  core::Clock& clock_;
  core::Logger log_;
  EventRecorderOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, Seen> seen_;
  std::map<std::string, Bucket> buckets_;
  Stats stats_;
};

}  // namespace acme_sidecar::kube
