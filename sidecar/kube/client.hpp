#pragma once
// Kubernetes REST client: verbs on resource paths, Status errors decoded into core::Error kinds,
// watch streams as typed events. JSON stays out of this header (json_fwd only).
#include <chrono>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "http/client.hpp"
#include "kube/config.hpp"
#include "kube/resource.hpp"
#include "kube/watch.hpp"

namespace acme_sidecar::kube {

// What the server sends of each object: all of it, or only apiVersion, kind and metadata
// (PartialObjectMetadata, as client-go's metadata informers ask for it): no Secret data on the wire.
enum class Representation { Full, MetadataOnly };

struct ListOptions {
  Representation representation = Representation::Full;
  std::string label_selector;
  std::string field_selector;
  int limit = 0;               // page size; 0 = server default (everything)
  std::string continue_token;  // from the previous page's metadata.continue
  std::string resource_version;
};

struct WatchOptions {
  Representation representation = Representation::Full;
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  int timeout_seconds = 300;  // server-side end of the watch; randomise it across watchers
  bool allow_bookmarks = true;
  // Client-side limit on silence; default timeout_seconds + 30 s.
  std::optional<std::chrono::milliseconds> idle_timeout;
  std::stop_token stop;  // ends the stream promptly (core::Error(Cancelled))
};

enum class PatchType { Merge, Json, StrategicMerge };

// verb: the Kubernetes API verb as RBAC names it (get list watch create update patch delete), or the
// HTTP method of raw(); code: HTTP status, 0 = no response.
using RequestObserver = std::function<void(std::string_view verb, std::string_view resource, int code)>;
// Return false to end the watch. ERROR events never reach the handler: watch() throws them. The object is
// the handler's to keep (moved in: a Secret's data is not copied once more).
using WatchHandler = std::function<bool(WatchEventType type, nlohmann::json&& object)>;

class Client {
 public:
  // `http` must outlive the client.
  Client(http::HttpClient& http, KubeConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const KubeConfig& config() const { return config_; }
  // For kube_requests_total{verb,resource,code}. Set before use.
  void set_observer(RequestObserver observer) { observer_ = std::move(observer); }
  // Deadline of each non-watch request (default 30 s). A leader elector's client should use less than
  // the renew deadline, so a hung request cannot keep a stale leader in office.
  void set_request_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }

  // Every call throws core::Error: NotFound, AlreadyExists, Conflict, Forbidden, Unauthorized, Gone,
  // TooManyRequests (retry_after), Invalid, ServerError, Timeout, Transport, Parse, Cancelled.
  nlohmann::json get(const ResourceRef& ref, const std::string& ns, const std::string& name);
  // One page (a *List object: items, metadata.resourceVersion, metadata.continue).
  nlohmann::json list(const ResourceRef& ref, const std::string& ns, const ListOptions& options = {});
  // All pages, concatenated; metadata.resourceVersion is the snapshot's.
  nlohmann::json list_all(const ResourceRef& ref, const std::string& ns, ListOptions options = {});
  // What a write returns of the stored object: all of it, or only apiVersion, kind and metadata (its
  // resourceVersion, uid, ...). With Metadata the rest of the echo (a Secret's certificate and key, an
  // Event's message) is skipped while parsing, never built.
  enum class Echo { Whole, Metadata };
  nlohmann::json create(const ResourceRef& ref, const std::string& ns, const nlohmann::json& object,
                        Echo echo = Echo::Whole);
  // The same with the object as JSON text the caller wrote (a Secret's data need not become a tree).
  nlohmann::json create_text(const ResourceRef& ref, const std::string& ns, std::string object_json,
                             Echo echo = Echo::Whole);
  // PUT; the object's metadata.resourceVersion gives optimistic concurrency (409 → Conflict).
  nlohmann::json update(const ResourceRef& ref, const std::string& ns, const std::string& name,
                        const nlohmann::json& object, Echo echo = Echo::Whole);
  nlohmann::json update_text(const ResourceRef& ref, const std::string& ns, const std::string& name,
                             std::string object_json, Echo echo = Echo::Whole);
  nlohmann::json patch(const ResourceRef& ref, const std::string& ns, const std::string& name,
                       const nlohmann::json& patch, PatchType type = PatchType::Merge);
  // Deletes; a non-empty `precondition_rv` makes the delete conditional.
  void remove(const ResourceRef& ref, const std::string& ns, const std::string& name,
              const std::string& precondition_rv = "");
  // deletecollection: deletes every object the selectors match (one request for many objects). The
  // deleted objects the server echoes are not kept (a Secret's key never becomes a tree).
  void remove_collection(const ResourceRef& ref, const std::string& ns, const ListOptions& options);
  // Any request on an API path ("/version", "/apis/..."); no status decoding, Transport errors throw.
  http::Response raw(const std::string& method, const std::string& path_and_query, const std::string& body = "",
                     const std::string& content_type = "");
  // Streams a watch. Returns when the server ends it or the handler returns false; throws Gone for
  // 410 and ERROR events carrying Expired/410, other Status errors by kind.
  void watch(const ResourceRef& ref, const std::string& ns, const WatchOptions& options,
             const WatchHandler& handler);

  // Path of a collection or object: /apis/g/v/namespaces/ns/resource[/name]. Validates the names.
  static std::string path(const ResourceRef& ref, const std::string& ns, const std::string& name = "");

 private:
  http::Response send(const char* verb, const ResourceRef* ref, http::Request request,
                      const char* accept = "application/json");
  nlohmann::json json_call(const char* verb, const ResourceRef& ref, const std::string& method,
                           const std::string& path, std::string body, const std::string& content_type,
                           Echo echo = Echo::Whole, const char* accept = "application/json");

  http::HttpClient& http_;
  KubeConfig config_;
  RequestObserver observer_;
  std::chrono::milliseconds timeout_{30'000};
};

// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
std::string url_encode(std::string_view value);

}  // namespace acme_sidecar::kube
