#include "kube/client.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "kube/json_tree.hpp"
#include "kube/status.hpp"

namespace acme_sidecar::kube {
namespace {

using core::Error;
using core::ErrorKind;
using nlohmann::json;

// DNS-1123-ish names plus the few characters Kubernetes allows elsewhere (Event names use '.').
void check_name(const std::string& s, const char* what) {
  if (s == "." || s == ".." || s.size() > 253) throw Error(ErrorKind::Invalid, std::string("invalid ") + what, {{what, s}});
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
              c == '_' || c == ':';
    if (!ok) throw Error(ErrorKind::Invalid, std::string("invalid ") + what, {{what, s}});
  }
}

void add_param(std::string& query, const char* key, const std::string& value) {
  if (value.empty()) return;
  query += query.empty() ? '?' : '&';
  query += key;
  query += '=';
  query += url_encode(value);
}

// Invalid UTF-8 (from user-supplied text) is replaced rather than thrown from deep inside a request.
std::string to_body(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json parse_body(const http::Response& r, Client::Echo echo = Client::Echo::Whole) {
  auto doc = core::JsonDocument::parse(r.body);
  if (!doc.ok()) throw Error(ErrorKind::Parse, "API response is not JSON", {{"error", doc.error()}});
  if (echo == Client::Echo::Metadata && doc.root().is_object()) return metadata_tree(doc.root());
  return to_tree(doc.root());
}

}  // namespace

// Media types for PartialObjectMetadata (lists and single objects/watch events), JSON only.
constexpr const char* kMetadataListAccept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
constexpr const char* kMetadataAccept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

std::string url_encode(std::string_view value) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

Client::Client(http::HttpClient& http, KubeConfig config) : http_(http), config_(std::move(config)) {}
Client::~Client() = default;

std::string Client::path(const ResourceRef& ref, const std::string& ns, const std::string& name) {
  check_name(ref.resource, "resource");
  std::string p = ref.api_prefix();
  if (ref.namespaced && !ns.empty()) {
    check_name(ns, "namespace");
    p += "/namespaces/" + ns;
  }
  p += "/" + ref.resource;
  if (!name.empty()) {
    check_name(name, "name");
    p += "/" + name;
  }
  return p;
}

http::Response Client::send(const char* verb, const ResourceRef* ref, http::Request request, const char* accept) {
  request.url = config_.server + request.url;
  request.timeout = timeout_;
  if (auto auth = config_.authorization(); !auth.empty()) request.headers.emplace_back("Authorization", auth);
  request.headers.emplace_back("Accept", accept);
  const std::string resource = ref != nullptr ? ref->resource : "";
  try {
    auto r = http_.send(request);
    if (observer_) observer_(verb, resource, static_cast<int>(r.status));
    return r;
  } catch (const Error&) {
    if (observer_) observer_(verb, resource, 0);
    throw;
  }
}

json Client::json_call(const char* verb, const ResourceRef& ref, const std::string& method, const std::string& path,
                       std::string body, const std::string& content_type, Echo echo, const char* accept) {
  http::Request req;
  req.method = method;
  req.url = path;
  req.body = std::move(body);
  if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
  auto r = send(verb, &ref, std::move(req), accept);
  if (r.status >= 400 || r.status < 200) throw status_error(r).with("path", path);
  if (r.body.empty()) return json::object();
  return parse_body(r, echo);
}

json Client::get(const ResourceRef& ref, const std::string& ns, const std::string& name) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "get needs a name");
  return json_call("get", ref, "GET", path(ref, ns, name), "", "");
}

json Client::list(const ResourceRef& ref, const std::string& ns, const ListOptions& o) {
  std::string q;
  add_param(q, "labelSelector", o.label_selector);
  add_param(q, "fieldSelector", o.field_selector);
  if (o.limit > 0) add_param(q, "limit", std::to_string(o.limit));
  add_param(q, "continue", o.continue_token);
  add_param(q, "resourceVersion", o.resource_version);
  auto j = json_call("list", ref, "GET", path(ref, ns) + q, "", "", Echo::Whole,
                     o.representation == Representation::MetadataOnly ? kMetadataListAccept : "application/json");
  if (!j.is_object() || !j.contains("items") || !(j["items"].is_array() || j["items"].is_null())) {
    throw Error(ErrorKind::Parse, "list response has no items", {{"resource", ref.resource}});
  }
  if (j["items"].is_null()) j["items"] = json::array();
  return j;
}

json Client::list_all(const ResourceRef& ref, const std::string& ns, ListOptions o) {
  json all = list(ref, ns, o);
  // Bounded: a server that keeps returning continue tokens cannot keep us here forever.
  for (int page = 0; page < 100000; ++page) {
    std::string cont;
    if (all.contains("metadata") && all["metadata"].is_object()) {
      cont = all["metadata"].value("continue", "");
    }
    if (cont.empty()) {
      if (all.contains("metadata") && all["metadata"].is_object()) all["metadata"].erase("continue");
      return all;
    }
    o.continue_token = cont;
    o.resource_version.clear();  // not allowed together with continue
    json next = list(ref, ns, o);
    for (auto& item : next["items"]) all["items"].push_back(std::move(item));
    all["metadata"] = next.value("metadata", json::object());
  }
  throw Error(ErrorKind::Internal, "list did not terminate");
}

json Client::create(const ResourceRef& ref, const std::string& ns, const json& object, Echo echo) {
  return json_call("create", ref, "POST", path(ref, ns), to_body(object), "application/json", echo);
}

json Client::create_text(const ResourceRef& ref, const std::string& ns, std::string object_json, Echo echo) {
  return json_call("create", ref, "POST", path(ref, ns), std::move(object_json), "application/json", echo);
}

json Client::update_text(const ResourceRef& ref, const std::string& ns, const std::string& name,
                         std::string object_json, Echo echo) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "update needs a name");
  return json_call("update", ref, "PUT", path(ref, ns, name), std::move(object_json), "application/json", echo);
}

json Client::update(const ResourceRef& ref, const std::string& ns, const std::string& name, const json& object,
                    Echo echo) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "update needs a name");
  return json_call("update", ref, "PUT", path(ref, ns, name), to_body(object), "application/json", echo);
}

json Client::patch(const ResourceRef& ref, const std::string& ns, const std::string& name, const json& patch,
                   PatchType type) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "patch needs a name");
  const char* ct = type == PatchType::Merge  ? "application/merge-patch+json"
                   : type == PatchType::Json ? "application/json-patch+json"
                                             : "application/strategic-merge-patch+json";
  if (type == PatchType::Json && !patch.is_array()) throw Error(ErrorKind::Invalid, "JSON patch must be an array");
  return json_call("patch", ref, "PATCH", path(ref, ns, name), to_body(patch), ct);
}

void Client::remove(const ResourceRef& ref, const std::string& ns, const std::string& name,
                    const std::string& precondition_rv) {
  if (name.empty()) throw Error(ErrorKind::Invalid, "delete needs a name");
  std::string body;
  if (!precondition_rv.empty()) {
    body = json{{"kind", "DeleteOptions"},
                {"apiVersion", "v1"},
                {"preconditions", {{"resourceVersion", precondition_rv}}}}
               .dump();
  }
  json_call("delete", ref, "DELETE", path(ref, ns, name), body, body.empty() ? "" : "application/json");
}

void Client::remove_collection(const ResourceRef& ref, const std::string& ns, const ListOptions& o) {
  if (o.label_selector.empty() && o.field_selector.empty()) {
    throw Error(ErrorKind::Invalid, "deletecollection needs a selector");  // never "delete everything"
  }
  std::string q;
  add_param(q, "labelSelector", o.label_selector);
  add_param(q, "fieldSelector", o.field_selector);
  json_call("deletecollection", ref, "DELETE", path(ref, ns) + q, "", "", Echo::Metadata);
}

http::Response Client::raw(const std::string& method, const std::string& path_and_query, const std::string& body,
                           const std::string& content_type) {
  if (path_and_query.empty() || path_and_query.front() != '/') {
    throw Error(ErrorKind::Invalid, "raw path must start with '/'", {{"path", path_and_query}});
  }
  http::Request req;
  req.method = method;
  req.url = path_and_query;
  req.body = body;
  if (!content_type.empty()) req.headers.emplace_back("Content-Type", content_type);
  return send(method.c_str(), nullptr, std::move(req));
}

void Client::watch(const ResourceRef& ref, const std::string& ns, const WatchOptions& o, const WatchHandler& handler) {
  std::string q = "?watch=1";
  if (o.allow_bookmarks) q += "&allowWatchBookmarks=true";
  add_param(q, "resourceVersion", o.resource_version);
  add_param(q, "labelSelector", o.label_selector);
  add_param(q, "fieldSelector", o.field_selector);
  if (o.timeout_seconds > 0) add_param(q, "timeoutSeconds", std::to_string(o.timeout_seconds));
  const std::string p = path(ref, ns) + q;

  http::Request req;
  req.url = config_.server + p;
  if (auto auth = config_.authorization(); !auth.empty()) req.headers.emplace_back("Authorization", auth);
  req.headers.emplace_back("Accept",
                           o.representation == Representation::MetadataOnly ? kMetadataAccept : "application/json");
  const auto server_timeout = std::chrono::seconds(o.timeout_seconds > 0 ? o.timeout_seconds : 3600);
  req.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(server_timeout + std::chrono::seconds(60));
  req.idle_timeout = o.idle_timeout.value_or(
      std::chrono::duration_cast<std::chrono::milliseconds>(server_timeout + std::chrono::seconds(30)));
  req.cancel = o.stop;

  LineSplitter splitter;
  std::optional<Error> event_error;
  json object;
  http::Response r;
  try {
    r = http_.stream(req, [&](std::string_view chunk) {
      return splitter.feed(chunk, [&](std::string_view line) {
        auto type = parse_watch_event(line, object);
        if (type == WatchEventType::Error) {
          event_error = status_error_from_body(to_body(object), 0).with("path", p);
          return false;
        }
        return handler(type, std::move(object));
      });
    });
  } catch (const Error&) {
    if (observer_) observer_("watch", ref.resource, 0);
    throw;
  }
  if (observer_) observer_("watch", ref.resource, static_cast<int>(r.status));
  if (r.status >= 400 || r.status < 200) throw status_error(r).with("path", p);
  if (event_error) {
    // An ERROR event whose Status says 410/Expired means our resourceVersion is too old: relist.
    throw *event_error;
  }
}

}  // namespace acme_sidecar::kube
