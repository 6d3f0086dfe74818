// The fake API server: routing, auth, store, watch, faults, control API.
#include <httplib.h>
#include <openssl/pem.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "fake_apiserver.hpp"
#include "internal.hpp"

namespace acme_sidecar::fake_apiserver {

using namespace detail;

namespace {

// ---- small helpers ----

std::string url_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) out.push_back(url_decode(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(url_decode(cur));
  return out;
}

std::string obj_key(const std::string& ns, const std::string& name) { return ns.empty() ? name : ns + "/" + name; }

std::string meta_str(const json& o, const char* field) {
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return "";
  auto f = m->find(field);
  if (f == m->end() || !f->is_string()) return "";
  return f->get<std::string>();
}

json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = yaml_to_json(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& v : n) a.push_back(yaml_to_json(v));
      return a;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "true") return true;
      if (s == "false") return false;
      if (s == "null" || s == "~") return nullptr;
      try {
        std::size_t pos = 0;
        long long v = std::stoll(s, &pos);
        if (pos == s.size()) return v;
      } catch (...) {
      }
      return s;
    }
    default: return nullptr;
  }
}

std::string lines_of(const json& event) { return event.dump() + "\n"; }

// An object as a metadata-only client sees it.
json partial_of(const json& o) {
  return {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", o.value("metadata", json::object())}};
}


struct Watcher {
  const ResourceType* rt = nullptr;
  std::string ns;
  LabelSelector labels;
  FieldSelector fields;
  std::size_t limit = 1000;
  bool table = false;
  bool partial = false;  // PartialObjectMetadata objects

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::string, bool>> queue;  // (line, live)
  std::size_t live_pending = 0;
  bool closed = false;

  bool selects(const json& o) const {
    if (!ns.empty() && meta_str(o, "namespace") != ns) return false;
    return labels.matches(o) && fields.matches(o);
  }
  // ADDED/MODIFIED/DELETED objects become one-row Tables for `kubectl get -w`.
  std::string render(json ev) const {
    if (table && ev["type"] != "ERROR" && ev["type"] != "BOOKMARK") {
      json t = make_table(*rt, {&ev["object"]}, json::object());
      ev["object"] = std::move(t);
    } else if (partial && ev["type"] != "ERROR") {
      ev["object"] = partial_of(ev["object"]);  // bookmarks too, as the real server sends them
    }
    return lines_of(ev);
  }
  void push(std::string line, bool live) {
    std::lock_guard lk(mu);
    if (closed) return;
    if (live && live_pending >= limit) {
      // Too slow: the real server closes such a watcher and the client must re-watch.
      closed = true;
      queue.clear();
      live_pending = 0;
    } else {
      queue.emplace_back(std::move(line), live);
      if (live) ++live_pending;
    }
    cv.notify_all();
  }
  void close() {
    std::lock_guard lk(mu);
    closed = true;
    cv.notify_all();
  }
};

struct StoredEvent {
  std::uint64_t rv;
  std::string type;  // ADDED, MODIFIED, DELETED
  const ResourceType* rt;
  json object;
  json previous;
};

// The event a watcher sees for a store event, following the watch cache: selector transitions turn
// MODIFIED into ADDED/DELETED, and DELETED for a no-longer-matching object carries the previous state.
std::optional<json> event_for(const Watcher& w, const StoredEvent& e) {
  if (w.rt != e.rt) return std::nullopt;
  bool cur = e.type != "DELETED" && w.selects(e.object);
  bool old = false;
  if (e.type == "DELETED") {
    old = w.selects(e.object);
  } else if (e.type == "MODIFIED") {
    old = w.selects(e.previous);
  }
  if (cur && old) return json{{"type", "MODIFIED"}, {"object", e.object}};
  if (cur) return json{{"type", "ADDED"}, {"object", e.object}};
  if (old) {
    json o = e.type == "DELETED" ? e.object : e.previous;
    o["metadata"]["resourceVersion"] = std::to_string(e.rv);
    return json{{"type", "DELETED"}, {"object", o}};
  }
  return std::nullopt;
}

json success_status(const ResourceType& rt, const json& obj) {
  json d = {{"name", meta_str(obj, "name")}, {"kind", rt.resource}, {"uid", meta_str(obj, "uid")}};
  if (!rt.group.empty()) d["group"] = rt.group;
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Success"}, {"details", d}};
}

std::string generate_suffix() {
  static const char* alphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string hex = random_hex(5);
  std::string out;
  for (int i = 0; i < 5; ++i) out += alphabet[std::stoi(hex.substr(2 * i, 2), nullptr, 16) % 27];
  return out;
}

struct Request {
  std::string method;
  std::string path;
  std::string query;
  std::map<std::string, std::string> params;
  std::string content_type;
  std::string body;
  std::string user;
  bool table = false;  // Accept asks for meta.k8s.io Table (kubectl get)
  // Accept asks for as=PartialObjectMetadata (get, watch) or as=PartialObjectMetadataList (list).
  std::string partial;
};


// dryRun=All: validate and answer as if written, but change nothing (kubectl --dry-run=server).
bool dry_run(const Request& req) {
  auto it = req.params.find("dryRun");
  return it != req.params.end() && it->second == "All";
}

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply json_reply(int status, const json& j) { return {status, j.dump(), "application/json", {}}; }
Reply error_reply(const ApiError& e) {
  Reply r = json_reply(e.code, status_json(e.code, e.reason, e.what(), e.details));
  if (!e.retry_after.empty()) r.headers.emplace_back("Retry-After", e.retry_after);
  return r;
}

// Top-level fields the real types know, for fieldValidation=Strict (nested fields are not checked).
const std::set<std::string>& known_fields(const ResourceType& rt) {
  static const std::map<std::string, std::set<std::string>> m = {
      {"Namespace", {"spec", "status"}},
      {"Secret", {"data", "stringData", "type", "immutable"}},
      {"ConfigMap", {"data", "binaryData", "immutable"}},
      {"Event",
       {"involvedObject", "reason", "message", "source", "firstTimestamp", "lastTimestamp", "count", "type",
        "eventTime", "series", "action", "related", "reportingComponent", "reportingInstance", "regarding", "note",
        "reportingController", "deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp",
        "deprecatedCount"}},
      {"Ingress", {"spec", "status"}},
      {"IngressClass", {"spec"}},
      {"Lease", {"spec"}},
  };
  static const std::set<std::string> none;
  auto it = m.find(rt.kind);
  return it == m.end() ? none : it->second;
}

const std::set<std::string> kMetadataFields = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields"};

}  // namespace

struct FakeApiServer::Impl {
  Options opts;
  TlsMaterial tls;
  std::string admin_token;
  std::string admin_user = "kubernetes-admin";
  std::map<std::string, std::string> token_to_user;
  std::map<std::string, std::string> user_to_token;
  bool has_policy = false;
  json policy;  // user -> [rules]

  // Store.
  mutable std::mutex mu;
  std::uint64_t rv = 0;
  std::map<std::string, std::map<std::string, json>> objects;  // type key -> ns/name -> object
  std::deque<StoredEvent> events;
  std::uint64_t compacted_rv = 0;  // watches from below this RV get 410
  std::vector<std::shared_ptr<Watcher>> watchers;

  // Faults.
  std::mutex fault_mu;
  std::vector<FailRule> fail_rules;
  std::chrono::milliseconds latency{0};
  std::string latency_method = ".*", latency_path = ".*";
  int expire_next = 0;
  int conflict_remaining = 0, conflict_every = 1, conflict_seen = 0;

  // Request log.
  mutable std::mutex log_mu;
  std::vector<RequestLogEntry> request_log;

  // Servers.
  std::unique_ptr<httplib::SSLServer> api;
  std::unique_ptr<httplib::Server> ctl;
  std::thread api_thread, ctl_thread;
  int port = -1, control_port = -1;
  std::atomic<bool> stopping{false};
  bool started = false;

  explicit Impl(Options o) : opts(std::move(o)) {}

  // ---- store primitives (mu held) ----

  std::map<std::string, json>& bucket(const ResourceType& rt) { return objects[rt.key()]; }

  void record(const std::string& type, const ResourceType& rt, const json& obj, const json& prev) {
    StoredEvent e{rv, type, &rt, obj, prev};
    for (auto& w : watchers) {
      if (auto ev = event_for(*w, e)) w->push(w->render(*ev), true);
    }
    events.push_back(std::move(e));
    while (events.size() > opts.watch_window) {
      compacted_rv = events.front().rv;
      events.pop_front();
    }
  }

  void seed_namespaces() {
    const ResourceType* ns = find_type("", "v1", "namespaces");
    for (const char* n : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      json o = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", n}}}};
      store_create(*ns, o);
    }
  }

  json store_create(const ResourceType& rt, json o) {
    ++rv;
    auto& md = o["metadata"];
    md["uid"] = random_uid();
    md["resourceVersion"] = std::to_string(rv);
    md["creationTimestamp"] = rfc3339_now();
    if (rt.generation) md["generation"] = 1;
    if (rt.kind == "Namespace") {
      o["spec"] = {{"finalizers", {"kubernetes"}}};
      o["status"] = {{"phase", "Active"}};
      md["labels"]["kubernetes.io/metadata.name"] = md["name"];
    }
    o["kind"] = rt.kind;
    o["apiVersion"] = rt.api_version();
    bucket(rt)[obj_key(meta_str(o, "namespace"), meta_str(o, "name"))] = o;
    record("ADDED", rt, o, nullptr);
    return o;
  }

  json store_update(const ResourceType& rt, const json& old, json o) {
    ++rv;
    o["metadata"]["resourceVersion"] = std::to_string(rv);
    bucket(rt)[obj_key(meta_str(o, "namespace"), meta_str(o, "name"))] = o;
    record("MODIFIED", rt, o, old);
    return o;
  }

  json store_delete(const ResourceType& rt, const json& old) {
    ++rv;
    json o = old;
    o["metadata"]["resourceVersion"] = std::to_string(rv);
    bucket(rt).erase(obj_key(meta_str(old, "namespace"), meta_str(old, "name")));
    record("DELETED", rt, o, old);
    return o;
  }

  const json* find(const ResourceType& rt, const std::string& ns, const std::string& name) {
    auto& b = bucket(rt);
    auto it = b.find(obj_key(ns, name));
    return it == b.end() ? nullptr : &it->second;
  }

  // ---- auth ----

  bool allowed(const std::string& user, const std::string& verb, const std::string& group, const std::string& resource,
               const std::string& ns, const std::string& name) const {
    if (!has_policy || user == admin_user) return true;
    auto it = policy.find(user);
    if (it == policy.end()) return false;
    auto has = [](const json& list, const std::string& v) {
      if (!list.is_array()) return false;
      for (const auto& e : list) {
        if (e == "*" || e == v) return true;
      }
      return false;
    };
    // As RBAC's ResourceMatches: "*" is every resource and subresource, "*/<sub>" that subresource of any.
    auto resource_matches = [&](const json& list) {
      if (has(list, resource)) return true;
      auto slash = resource.find('/');
      if (slash == std::string::npos || !list.is_array()) return false;
      for (const auto& e : list)
        if (e.is_string() && e.get<std::string>() == "*" + resource.substr(slash)) return true;
      return false;
    };
    for (const auto& rule : *it) {
      if (!has(rule.value("verbs", json::array()), verb)) continue;
      if (!has(rule.value("apiGroups", json::array()), group)) continue;
      if (!resource_matches(rule.value("resources", json::array()))) continue;
      json nss = rule.value("namespaces", json::array());
      if (!nss.empty() && !has(nss, ns.empty() ? std::string("\x01") : ns)) continue;
      json names = rule.value("resourceNames", json::array());
      if (!names.empty() && (name.empty() || !has(names, name))) continue;
      return true;
    }
    return false;
  }

  ApiError forbidden(const std::string& user, const std::string& verb, const ResourceType& rt,
                     const std::string& subresource, const std::string& ns, const std::string& name) const {
    std::string res = subresource.empty() ? rt.resource : rt.resource + "/" + subresource;
    std::string msg = rt.group_resource() + (name.empty() ? "" : " \"" + name + "\"") + " is forbidden: User \"" + user +
                      "\" cannot " + verb + " resource \"" + res + "\" in API group \"" + rt.group + "\"" +
                      (ns.empty() ? " at the cluster scope" : " in the namespace \"" + ns + "\"");
    json d = {{"kind", rt.resource}};
    if (!name.empty()) d["name"] = name;
    if (!rt.group.empty()) d["group"] = rt.group;
    return ApiError(403, "Forbidden", msg, d);
  }

  // ---- request handling ----

  Reply handle(Request& req, bool& is_watch, httplib::Response& res);
  Reply handle_resource(Request& req, const ResourceType& rt, const std::string& ns, const std::string& name,
                        const std::string& sub, bool watch_path, bool& is_watch, httplib::Response& res);
  Reply discovery(const Request& req, bool& handled);
  json decode_body(const Request& req, const ResourceType& rt, bool strict);
  void validate_and_normalize(const ResourceType& rt, json& o, const json* old);
  Reply do_create(const Request& req, const ResourceType& rt, const std::string& ns, json o);
  Reply do_update(const Request& req, const ResourceType& rt, const std::string& ns, const std::string& name,
                  const std::string& sub, json o, bool from_patch);
  Reply do_list(const Request& req, const ResourceType& rt, const std::string& ns);
  Reply do_delete(const Request& req, const ResourceType& rt, const std::string& ns, const std::string& name);
  Reply do_watch(const Request& req, const ResourceType& rt, const std::string& ns, httplib::Response& res);
  std::optional<Reply> injected_failure(const Request& req);
  Reply access_review(const Request& req);
  void log_request(const Request& req, int status, bool watch);

  // ---- control ----
  std::pair<int, std::string> control(const std::string& method, const std::string& path, const std::string& body);
};

// ================= discovery =================

static json resource_list(const std::string& group, const std::string& version) {
  json resources = json::array();
  for (const auto& t : resource_types()) {
    if (t.group != group || t.version != version) continue;
    std::string singular = t.kind;
    std::transform(singular.begin(), singular.end(), singular.begin(), ::tolower);
    json r = {{"name", t.resource},
              {"singularName", singular},
              {"namespaced", t.namespaced},
              {"kind", t.kind},
              {"verbs", {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    resources.push_back(r);
    if (t.status_subresource) {
      resources.push_back({{"name", t.resource + "/status"},
                           {"singularName", ""},
                           {"namespaced", t.namespaced},
                           {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  return {{"kind", "APIResourceList"},
          {"apiVersion", "v1"},
          {"groupVersion", group.empty() ? version : group + "/" + version},
          {"resources", resources}};
}

static std::vector<std::string> api_groups() {
  std::vector<std::string> out;
  for (const auto& t : resource_types()) {
    if (!t.group.empty() && std::find(out.begin(), out.end(), t.group) == out.end()) out.push_back(t.group);
  }
  out.push_back("authorization.k8s.io");  // only SelfSubjectAccessReview (kubectl auth can-i)
  return out;
}

static json api_group(const std::string& g) {
  json v = {{"groupVersion", g + "/v1"}, {"version", "v1"}};
  return {{"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", g}, {"versions", {v}}, {"preferredVersion", v}};
}

// Minimal OpenAPI v3: one path per resource whose PATCH operation names its GVK and accepts
// fieldValidation, which is what kubectl's query-parameter verifier looks for before create/apply.
static json openapi_v3_doc(const std::string& group, const std::string& version) {
  json paths = json::object();
  json param = {{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}}};
  for (const auto& t : resource_types()) {
    if (t.group != group || t.version != version) continue;
    std::string prefix = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
    std::string item = prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.resource + "/{name}";
    json gvk = {{"group", group}, {"version", version}, {"kind", t.kind}};
    json op = {{"operationId", "patch" + t.kind},
               {"x-kubernetes-action", "patch"},
               {"x-kubernetes-group-version-kind", gvk},
               {"parameters", {param}},
               {"responses", {{"200", {{"description", "OK"}}}}}};
    json post = op;
    post["operationId"] = "create" + t.kind;
    post["x-kubernetes-action"] = "post";
    paths[item] = {{"patch", op}, {"put", post}};
    paths[prefix + (t.namespaced ? "/namespaces/{namespace}/" : "/") + t.resource] = {{"post", post}};
  }
  return {{"openapi", "3.0.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", paths},
          {"components", {{"schemas", json::object()}}}};
}

Reply FakeApiServer::Impl::discovery(const Request& req, bool& handled) {
  handled = true;
  const std::string& p = req.path;
  if (p == "/version") {
    return json_reply(200, {{"major", "1"},
                            {"minor", "32"},
                            {"gitVersion", "v1.32.0"},
                            {"gitCommit", "fake"},
                            {"gitTreeState", "clean"},
                            {"buildDate", "2024-12-11T00:00:00Z"},
                            {"goVersion", "go1.23.3"},
                            {"compiler", "gc"},
                            {"platform", "linux/amd64"}});
  }
  if (p == "/healthz" || p == "/readyz" || p == "/livez") return {200, "ok", "text/plain", {}};
  if (p == "/api") {
    return json_reply(200, {{"kind", "APIVersions"},
                            {"versions", {"v1"}},
                            {"serverAddressByClientCIDRs",
                             {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", opts.host + ":" + std::to_string(port)}}}}});
  }
  if (p == "/api/v1") return json_reply(200, resource_list("", "v1"));
  if (p == "/apis") {
    json groups = json::array();
    for (const auto& g : api_groups()) {
      json a = api_group(g);
      a.erase("kind");
      a.erase("apiVersion");
      groups.push_back(a);
    }
    return json_reply(200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}});
  }
  auto seg = split_path(p);
  if (seg.size() == 2 && seg[0] == "apis") {
    auto gs = api_groups();
    if (std::find(gs.begin(), gs.end(), seg[1]) != gs.end()) return json_reply(200, api_group(seg[1]));
  }
  if (seg.size() == 3 && seg[0] == "apis" && seg[1] == "authorization.k8s.io" && seg[2] == "v1") {
    json r = {{"name", "selfsubjectaccessreviews"}, {"singularName", "selfsubjectaccessreview"}, {"namespaced", false},
              {"kind", "SelfSubjectAccessReview"}, {"verbs", {"create"}}};
    return json_reply(200, {{"kind", "APIResourceList"}, {"apiVersion", "v1"},
                            {"groupVersion", "authorization.k8s.io/v1"}, {"resources", {r}}});
  }
  if (seg.size() == 3 && seg[0] == "apis") {
    for (const auto& t : resource_types()) {
      if (t.group == seg[1] && t.version == seg[2]) return json_reply(200, resource_list(seg[1], seg[2]));
    }
  }
  if (p == "/openapi/v3") {
    json paths = json::object();
    paths["api/v1"] = {{"serverRelativeURL", "/openapi/v3/api/v1?hash=0001"}};
    for (const auto& g : api_groups()) {
      paths["apis/" + g + "/v1"] = {{"serverRelativeURL", "/openapi/v3/apis/" + g + "/v1?hash=0001"}};
    }
    paths["api"] = {{"serverRelativeURL", "/openapi/v3/api?hash=0001"}};
    paths["apis"] = {{"serverRelativeURL", "/openapi/v3/apis?hash=0001"}};
    return json_reply(200, {{"paths", paths}});
  }
  if (seg.size() >= 3 && seg[0] == "openapi" && seg[1] == "v3") {
    if (seg.size() == 4 && seg[2] == "api" && seg[3] == "v1") return json_reply(200, openapi_v3_doc("", "v1"));
    if (seg.size() == 5 && seg[2] == "apis") return json_reply(200, openapi_v3_doc(seg[3], seg[4]));
    if (seg.size() == 3 && (seg[2] == "api" || seg[2] == "apis")) return json_reply(200, openapi_v3_doc("-", "-"));
  }
  handled = false;
  return {};
}

// ================= decoding and validation =================

// nlohmann::json parses recursively: refuse absurd nesting before it can exhaust the stack.
static bool nesting_ok(const std::string& body, int max_depth = 512) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

json FakeApiServer::Impl::decode_body(const Request& req, const ResourceType& rt, bool strict) {
  if (!nesting_ok(req.body)) throw bad_request("the object provided is unrecognized: JSON nested too deeply");
  std::string ct = req.content_type.substr(0, req.content_type.find(';'));
  json o;
  if (ct == "application/json" || ct.empty()) {
    o = json::parse(req.body, nullptr, false);
    if (o.is_discarded()) {
      std::string summary = req.body.substr(0, 30);
      throw bad_request("the object provided is unrecognized (" + summary + "): invalid character in JSON input");
    }
  } else if (ct == "application/yaml") {
    try {
      o = yaml_to_json(YAML::Load(req.body));
    } catch (const std::exception& e) {
      throw bad_request(std::string("the object provided is unrecognized: error converting YAML to JSON: ") + e.what());
    }
  } else if (ct == "application/vnd.kubernetes.protobuf") {
    o = decode_k8s_protobuf(req.body);
  } else {
    throw ApiError(415, "UnsupportedMediaType",
                   "the body of the request was in an unknown format - accepted media types include: "
                   "application/json, application/yaml, application/vnd.kubernetes.protobuf");
  }
  if (!o.is_object()) throw bad_request("the object provided is unrecognized: not a JSON object");
  for (const char* f : {"kind", "apiVersion"}) {
    if (o.contains(f) && !o[f].is_string()) {
      throw bad_request(std::string("the object provided is unrecognized: ") + f + " must be a string");
    }
  }
  std::string kind = o.value("kind", "");
  std::string av = o.value("apiVersion", "");
  if (!kind.empty() && kind != rt.kind) {
    throw bad_request(kind + " in version \"" + (av.empty() ? rt.version : av.substr(av.find('/') + 1)) +
                      "\" cannot be handled as a " + rt.kind + ": converting (" + kind + ") to (" + rt.kind +
                      "): unknown conversion");
  }
  if (!av.empty() && av != rt.api_version()) {
    throw bad_request("the API version in the data (" + av + ") does not match the expected API version (" +
                      rt.api_version() + ")");
  }
  if (o.contains("metadata") && !o["metadata"].is_object()) {
    throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                      ": json: cannot unmarshal into Go struct field " + rt.kind + ".metadata of type v1.ObjectMeta");
  }
  if (strict) {
    const auto& known = known_fields(rt);
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (it.key() == "kind" || it.key() == "apiVersion" || it.key() == "metadata") continue;
      if (!known.count(it.key())) {
        throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                          ": strict decoding error: unknown field \"" + it.key() + "\"");
      }
    }
    if (o.contains("metadata")) {
      for (auto it = o["metadata"].begin(); it != o["metadata"].end(); ++it) {
        if (!kMetadataFields.count(it.key())) {
          throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                            ": strict decoding error: unknown field \"metadata." + it.key() + "\"");
        }
      }
    }
  }
  if (!o.contains("metadata")) o["metadata"] = json::object();
  return o;
}

// Type-specific rules the real server applies on create and update (decode errors are 400, validation 422).
void FakeApiServer::Impl::validate_and_normalize(const ResourceType& rt, json& o, const json* old) {
  std::string name = meta_str(o, "name");
  std::vector<FieldCause> causes;
  auto& md = o["metadata"];
  for (const char* f : {"labels", "annotations"}) {
    if (md.contains(f) && !md[f].is_null()) {
      if (!md[f].is_object()) {
        throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                          ": json: cannot unmarshal into Go struct field ObjectMeta.metadata." + f +
                          " of type map[string]string");
      }
      for (auto it = md[f].begin(); it != md[f].end(); ++it) {
        if (!it->is_string()) {
          throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                            ": json: cannot unmarshal into Go struct field ObjectMeta.metadata." + f +
                            " of type string");
        }
      }
    }
  }
  if (md.contains("labels") && md["labels"].is_object()) {
    for (auto it = md["labels"].begin(); it != md["labels"].end(); ++it) {
      if (!is_label_key(it.key())) {
        causes.push_back({"FieldValueInvalid", "metadata.labels",
                          "Invalid value: \"" + it.key().substr(0, 300) +
                              "\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                              "and end with an alphanumeric character"});
      }
      std::string v = it->get<std::string>();
      if (!is_label_value(v)) {
        causes.push_back({"FieldValueInvalid", "metadata.labels",
                          "Invalid value: \"" + v.substr(0, 300) +
                              (v.size() > 63 ? "\": must be no more than 63 characters"
                                             : "\": a valid label must be an empty string or consist of alphanumeric "
                                               "characters, '-', '_' or '.', and must start and end with an "
                                               "alphanumeric character")});
      }
    }
  }
  if (md.contains("annotations") && md["annotations"].is_object()) {
    std::size_t total = 0;
    for (auto it = md["annotations"].begin(); it != md["annotations"].end(); ++it) {
      total += it.key().size() + it->get<std::string>().size();
    }
    if (total > 256 * 1024) {
      causes.push_back({"FieldValueTooLong", "metadata.annotations",
                        "Too long: must have at most 262144 bytes"});
    }
  }
  if (md.contains("ownerReferences") && !md["ownerReferences"].is_null()) {
    if (!md["ownerReferences"].is_array()) {
      throw bad_request(rt.kind + " in version \"" + rt.version + "\" cannot be handled as a " + rt.kind +
                        ": json: cannot unmarshal into Go struct field ObjectMeta.metadata.ownerReferences of type "
                        "[]v1.OwnerReference");
    }
    int controllers = 0;
    for (const auto& ref : md["ownerReferences"]) {
      if (!ref.is_object()) throw bad_request("ownerReferences: each entry must be an object");
      for (const char* f : {"apiVersion", "kind", "name", "uid"}) {
        if (!ref.contains(f) || !ref[f].is_string() || ref[f].get<std::string>().empty()) {
          std::string what = std::string(f) == "apiVersion" ? "version" : f;
          causes.push_back({"FieldValueInvalid", std::string("metadata.ownerReferences.") + f,
                            "Invalid value: \"\": " + what + " must not be empty"});
        }
      }
      if (ref.value("controller", false)) ++controllers;
    }
    if (controllers > 1) {
      causes.push_back({"FieldValueInvalid", "metadata.ownerReferences",
                        "Invalid value: []: Only one reference can have Controller set to true"});
    }
  }
  if (rt.kind == "Event") {
    auto micro = [&](const char* field) {
      if (!o.contains(field) || o[field].is_null()) return false;
      std::string v = o[field].is_string() ? o[field].get<std::string>() : o[field].dump();
      auto norm = o[field].is_string() ? normalize_micro_time(v) : std::nullopt;
      if (!norm) {
        throw bad_request("Event in version \"v1\" cannot be handled as a Event: parsing time \"" + v.substr(0, 64) +
                          "\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"" + v.substr(0, 64) +
                          "\" as \"2006-01-02T15:04:05.000000Z07:00\"");
      }
      o[field] = *norm;
      return true;
    };
    bool has_event_time = micro("eventTime");
    auto str = [&](const char* f) { return o.contains(f) && o[f].is_string() ? o[f].get<std::string>() : std::string(); };
    if (rt.group == "events.k8s.io") {
      if (!has_event_time) causes.push_back({"FieldValueRequired", "eventTime", "Required value"});
      for (const char* f : {"reportingController", "reportingInstance", "action", "reason"}) {
        if (str(f).empty()) causes.push_back({"FieldValueRequired", f, "Required value"});
      }
      std::string type = str("type");
      if (type != "Normal" && type != "Warning") {
        causes.push_back({"FieldValueNotSupported", "type",
                          "Unsupported value: \"" + type + "\": supported values: \"Normal\", \"Warning\""});
      }
      if (o.contains("regarding") && o["regarding"].is_object()) {
        std::string rns = o["regarding"].value("namespace", "");
        if (!rns.empty() && rns != meta_str(o, "namespace")) {
          causes.push_back({"FieldValueInvalid", "regarding.namespace",
                            "Invalid value: \"" + rns + "\": does not match event.namespace"});
        }
      }
      if (str("note").size() > 1024) {
        causes.push_back({"FieldValueTooLong", "note", "Too long: may not be more than 1024 bytes"});
      }
    } else if (o.contains("involvedObject") && o["involvedObject"].is_object()) {
      std::string ins = o["involvedObject"].value("namespace", "");
      if (!ins.empty() && ins != meta_str(o, "namespace")) {
        causes.push_back({"FieldValueInvalid", "involvedObject.namespace",
                          "Invalid value: \"" + ins + "\": does not match event.namespace"});
      }
    }
  }
  if (rt.kind == "Secret") {
    std::string decode_prefix = "Secret in version \"v1\" cannot be handled as a Secret: ";
    if (o.contains("data") && !o["data"].is_null()) {
      if (!o["data"].is_object()) throw bad_request(decode_prefix + "json: cannot unmarshal into Go struct field Secret.data of type map[string][]uint8");
      for (auto it = o["data"].begin(); it != o["data"].end(); ++it) {
        if (!it->is_string() || !is_valid_base64(it->get<std::string>())) {
          throw bad_request(decode_prefix + "illegal base64 data at input byte 0 (data[" + it.key() + "])");
        }
      }
    }
    if (o.contains("stringData")) {
      if (!o["stringData"].is_object() && !o["stringData"].is_null()) {
        throw bad_request(decode_prefix + "json: cannot unmarshal into Go struct field Secret.stringData of type map[string]string");
      }
      if (o["stringData"].is_object()) {
        for (auto it = o["stringData"].begin(); it != o["stringData"].end(); ++it) {
          if (!it->is_string()) throw bad_request(decode_prefix + "json: cannot unmarshal into Go struct field Secret.stringData of type string");
          o["data"][it.key()] = base64_encode(it->get<std::string>());
        }
      }
      o.erase("stringData");
    }
    if (!o.contains("type") || o["type"] == "") o["type"] = "Opaque";
    std::string type = o["type"].is_string() ? o["type"].get<std::string>() : "";
    if (old && old->value("type", "Opaque") != type) {
      causes.push_back({"FieldValueInvalid", "type", "Invalid value: \"" + type + "\": field is immutable"});
    }
    if (type == "kubernetes.io/tls") {
      for (const char* k : {"tls.crt", "tls.key"}) {
        if (!o.contains("data") || !o["data"].contains(k)) {
          causes.push_back({"FieldValueRequired", std::string("data[") + k + "]", "Required value"});
        }
      }
    }
    if (o.contains("data") && o["data"].is_object()) {
      static const std::regex key_re(R"(^[-._a-zA-Z0-9]+$)");
      for (auto it = o["data"].begin(); it != o["data"].end(); ++it) {
        if (it.key().empty() || it.key().size() > 253 || !std::regex_match(it.key(), key_re)) {
          causes.push_back({"FieldValueInvalid", "data[" + it.key() + "]",
                            "Invalid value: \"" + it.key() +
                                "\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' "
                                "(e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                                "'[-._a-zA-Z0-9]+')"});
        }
      }
    }
    std::size_t total = 0;
    if (o.contains("data") && o["data"].is_object()) {
      for (auto it = o["data"].begin(); it != o["data"].end(); ++it) total += it->get<std::string>().size() * 3 / 4;
    }
    if (total > 1024 * 1024) {
      causes.push_back({"FieldValueTooLong", "data", "Too long: must have at most 1048576 bytes"});
    }
    if (old && old->value("immutable", false)) {
      if (old->value("data", json::object()) != o.value("data", json::object())) {
        causes.push_back({"FieldValueForbidden", "data", "Forbidden: field is immutable when `immutable` is set"});
      }
    }
  }
  if (rt.kind == "ConfigMap" && o.contains("data") && !o["data"].is_null()) {
    if (!o["data"].is_object()) throw bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal into Go struct field ConfigMap.data of type map[string]string");
    for (auto it = o["data"].begin(); it != o["data"].end(); ++it) {
      if (!it->is_string()) throw bad_request("ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ConfigMap.data of type string");
    }
  }
  if (rt.kind == "Lease" && o.contains("spec") && o["spec"].is_object()) {
    for (const char* f : {"acquireTime", "renewTime"}) {
      auto& s = o["spec"];
      if (!s.contains(f) || s[f].is_null()) continue;
      std::string v = s[f].is_string() ? s[f].get<std::string>() : s[f].dump();
      auto norm = s[f].is_string() ? normalize_micro_time(v) : std::nullopt;
      if (!norm) {
        throw bad_request("Lease in version \"v1\" cannot be handled as a Lease: parsing time \"" + v +
                          "\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"" + v +
                          "\" as \"2006-01-02T15:04:05.000000Z07:00\"");
      }
      s[f] = *norm;
    }
    if (o["spec"].contains("leaseDurationSeconds") && o["spec"]["leaseDurationSeconds"].is_number_integer() &&
        o["spec"]["leaseDurationSeconds"].get<long long>() <= 0) {
      causes.push_back({"FieldValueInvalid", "spec.leaseDurationSeconds",
                        "Invalid value: " + o["spec"]["leaseDurationSeconds"].dump() + ": must be greater than 0"});
    }
  }
  if (rt.kind == "Ingress" && o.contains("spec") && o["spec"].is_object()) {
    const auto& spec = o["spec"];
    if (spec.contains("rules") && spec["rules"].is_array()) {
      for (std::size_t i = 0; i < spec["rules"].size(); ++i) {
        const auto& r = spec["rules"][i];
        if (r.contains("host") && r["host"].is_string()) {
          std::string h = r["host"];
          std::string check = h.rfind("*.", 0) == 0 ? h.substr(2) : h;
          if (!is_dns1123_subdomain(check)) {
            causes.push_back({"FieldValueInvalid", "spec.rules[" + std::to_string(i) + "].host",
                              "Invalid value: \"" + h + "\": a lowercase RFC 1123 subdomain must consist of lower case "
                              "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                              "character (e.g. 'example.com', regex used for validation is "
                              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"});
          }
        }
      }
    }
  }
  if (!causes.empty()) throw invalid(rt, name, causes);
}

// ================= verbs =================

static bool name_valid(const ResourceType& rt, const std::string& name) {
  return rt.kind == "Namespace" ? is_dns1123_label(name) : is_dns1123_subdomain(name);
}

static FieldCause name_cause(const ResourceType& rt, const std::string& name) {
  if (rt.kind == "Namespace") {
    return {"FieldValueInvalid", "metadata.name",
            "Invalid value: \"" + name +
                "\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"};
  }
  return {"FieldValueInvalid", "metadata.name",
          "Invalid value: \"" + name +
              "\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
              "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
              "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"};
}

Reply FakeApiServer::Impl::do_create(const Request& req, const ResourceType& rt, const std::string& ns, json o) {
  auto& md = o["metadata"];
  if (rt.namespaced) {
    std::string body_ns = meta_str(o, "namespace");
    if (!body_ns.empty() && body_ns != ns) {
      throw bad_request("the namespace of the provided object does not match the namespace sent on the request");
    }
    md["namespace"] = ns;
  } else {
    md.erase("namespace");
  }
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation",
                        "deletionGracePeriodSeconds", "selfLink", "managedFields"}) {
    md.erase(f);
  }
  std::string name = meta_str(o, "name");
  if (name.empty()) {
    std::string gen = meta_str(o, "generateName");
    if (gen.empty()) {
      throw invalid(rt, "", {{"FieldValueRequired", "metadata.name", "Required value: name or generateName is required"}});
    }
    name = gen + generate_suffix();
    md["name"] = name;
  }
  if (!name_valid(rt, name)) throw invalid(rt, name, {name_cause(rt, name)});
  if (rt.kind == "Ingress") o.erase("status");  // status is set only through /status
  validate_and_normalize(rt, o, nullptr);
  std::lock_guard lk(mu);
  if (rt.namespaced) {
    const ResourceType* nst = find_type("", "v1", "namespaces");
    const json* nso = find(*nst, "", ns);
    if (!nso) throw not_found(*nst, ns);
    if (nso->contains("metadata") && (*nso)["metadata"].contains("deletionTimestamp")) {
      throw ApiError(403, "Forbidden",
                     rt.group_resource() + " \"" + name + "\" is forbidden: unable to create new content in namespace " +
                         ns + " because it is being terminated");
    }
  }
  if (find(rt, rt.namespaced ? ns : "", name)) throw already_exists(rt, name);
  if (dry_run(req)) {
    auto& m = o["metadata"];
    m["uid"] = random_uid();
    m["creationTimestamp"] = rfc3339_now();
    if (rt.generation) m["generation"] = 1;
    o["kind"] = rt.kind;
    o["apiVersion"] = rt.api_version();
    return json_reply(201, o);
  }
  return json_reply(201, store_create(rt, std::move(o)));
}

Reply FakeApiServer::Impl::do_update(const Request& req, const ResourceType& rt, const std::string& ns,
                                     const std::string& name, const std::string& sub, json o, bool from_patch) {
  std::string body_name = meta_str(o, "name");
  if (body_name != name) {
    throw bad_request("the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")");
  }
  if (rt.namespaced) {
    std::string body_ns = meta_str(o, "namespace");
    if (!body_ns.empty() && body_ns != ns) {
      throw bad_request("the namespace of the provided object does not match the namespace sent on the request");
    }
    o["metadata"]["namespace"] = ns;
  }
  std::unique_lock lk(mu);
  const json* existing = find(rt, rt.namespaced ? ns : "", name);
  if (!existing) {
    if (rt.create_on_update && sub.empty() && !from_patch) {
      lk.unlock();
      return do_create(req, rt, ns, std::move(o));
    }
    throw not_found(rt, name);
  }
  json old = *existing;
  std::string body_rv = meta_str(o, "resourceVersion");
  if (body_rv.empty()) {
    if (!rt.unconditional_update) {
      throw invalid(rt, name, {{"FieldValueInvalid", "metadata.resourceVersion",
                                "Invalid value: 0x0: must be specified for an update"}});
    }
  } else if (body_rv != meta_str(old, "resourceVersion")) {
    throw conflict(rt, name, "the object has been modified; please apply your changes to the latest version and try again");
  }
  if (!from_patch) {
    std::lock_guard fl(fault_mu);
    if (conflict_remaining > 0) {
      ++conflict_seen;
      if (conflict_seen % std::max(1, conflict_every) == 0) {
        --conflict_remaining;
        throw conflict(rt, name,
                       "the object has been modified; please apply your changes to the latest version and try again");
      }
    }
  }
  json next;
  if (sub == "status") {
    next = old;
    if (o.contains("status")) {
      next["status"] = o["status"];
    } else {
      next.erase("status");
    }
  } else {
    next = o;
    if (rt.status_subresource) {
      if (old.contains("status")) {
        next["status"] = old["status"];
      } else {
        next.erase("status");
      }
    }
    // Server-owned metadata cannot be changed by clients.
    auto& md = next["metadata"];
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
      if (old["metadata"].contains(f)) {
        md[f] = old["metadata"][f];
      } else {
        md.erase(f);
      }
    }
    md.erase("selfLink");
    md.erase("managedFields");
    md["name"] = name;
    if (!rt.namespaced) md.erase("namespace");
    if (rt.kind == "Namespace") {
      next["spec"] = old.value("spec", json::object());
      next["status"] = old.value("status", json::object());
    }
  }
  next["kind"] = rt.kind;
  next["apiVersion"] = rt.api_version();
  next["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"];
  lk.unlock();
  validate_and_normalize(rt, next, &old);
  lk.lock();
  // Re-check: another writer may have won while we validated.
  existing = find(rt, rt.namespaced ? ns : "", name);
  if (!existing || meta_str(*existing, "resourceVersion") != meta_str(old, "resourceVersion")) {
    throw conflict(rt, name, "the object has been modified; please apply your changes to the latest version and try again");
  }
  if (rt.generation && next.value("spec", json()) != old.value("spec", json())) {
    next["metadata"]["generation"] = old["metadata"].value("generation", 1) + 1;
  }
  if (next == old) return json_reply(200, old);  // no-op: no new resourceVersion, no watch event
  if (dry_run(req)) return json_reply(200, next);
  // Finalizers gone on an object being deleted: now it goes.
  if (next["metadata"].contains("deletionTimestamp") &&
      next["metadata"].value("finalizers", json::array()).empty()) {
    store_delete(rt, next);
    return json_reply(200, next);
  }
  return json_reply(200, store_update(rt, old, std::move(next)));
}

Reply FakeApiServer::Impl::do_list(const Request& req, const ResourceType& rt, const std::string& ns) {
  auto get = [&](const char* k) {
    auto it = req.params.find(k);
    return it == req.params.end() ? std::string() : it->second;
  };
  LabelSelector ls = parse_label_selector(get("labelSelector"));
  FieldSelector fs = parse_field_selector(get("fieldSelector"), rt);
  long long limit = 0;
  if (!get("limit").empty()) {
    try {
      limit = std::stoll(get("limit"));
    } catch (...) {
      throw bad_request("invalid limit: " + get("limit"));
    }
  }
  std::string start_after;
  if (!get("continue").empty()) {
    // Continue tokens are base64(JSON{"start": key}); decode loosely.
    std::string tok = get("continue");
    std::string decoded;
    {
      int val = 0, bits = -8;
      for (char c : tok) {
        int d;
        if (c >= 'A' && c <= 'Z') d = c - 'A';
        else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
        else if (c >= '0' && c <= '9') d = c - '0' + 52;
        else if (c == '+' || c == '-') d = 62;
        else if (c == '/' || c == '_') d = 63;
        else if (c == '=') break;
        else throw bad_request("continue key is not valid: illegal base64 data");
        val = (val << 6) + d;
        bits += 6;
        if (bits >= 0) {
          decoded += static_cast<char>((val >> bits) & 0xff);
          bits -= 8;
        }
      }
    }
    json t = json::parse(decoded, nullptr, false);
    if (t.is_discarded() || !t.contains("start") || !t["start"].is_string()) {
      throw bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    }
    start_after = t["start"];
  }
  std::lock_guard lk(mu);
  json items = json::array();
  std::vector<const json*> selected;
  std::string last_key;
  long long remaining = 0;
  for (const auto& [key, obj] : bucket(rt)) {
    if (!start_after.empty() && key <= start_after) continue;
    if (rt.namespaced && !ns.empty() && meta_str(obj, "namespace") != ns) continue;
    if (!ls.matches(obj) || !fs.matches(obj)) continue;
    if (limit > 0 && static_cast<long long>(items.size()) >= limit) {
      ++remaining;
      continue;
    }
    selected.push_back(&obj);
    json item = obj;
    item.erase("kind");
    item.erase("apiVersion");
    items.push_back(std::move(item));
    last_key = key;
  }
  json meta = {{"resourceVersion", std::to_string(rv)}};
  if (remaining > 0) {
    meta["continue"] = base64_encode(json{{"v", "meta.k8s.io/v1"}, {"rv", rv}, {"start", last_key}}.dump());
    meta["remainingItemCount"] = remaining;
  }
  if (req.table) return json_reply(200, make_table(rt, selected, meta));
  if (req.partial == "PartialObjectMetadataList") {
    json partial_items = json::array();
    for (const json* o : selected) partial_items.push_back(partial_of(*o));
    return json_reply(200, {{"kind", "PartialObjectMetadataList"},
                            {"apiVersion", "meta.k8s.io/v1"},
                            {"metadata", meta},
                            {"items", partial_items}});
  }
  return json_reply(200, {{"kind", rt.kind + "List"}, {"apiVersion", rt.api_version()}, {"metadata", meta}, {"items", items}});
}

Reply FakeApiServer::Impl::do_delete(const Request& req, const ResourceType& rt, const std::string& ns,
                                     const std::string& name) {
  json opts_body = json::object();
  if (!req.body.empty()) {
    opts_body = nesting_ok(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded);
    if (opts_body.is_discarded() || !opts_body.is_object()) {
      throw bad_request("the object provided is unrecognized (" + req.body.substr(0, 30) + "): invalid DeleteOptions");
    }
  }
  std::lock_guard lk(mu);
  const json* existing = find(rt, rt.namespaced ? ns : "", name);
  if (!existing) throw not_found(rt, name);
  json old = *existing;
  if (opts_body.contains("preconditions") && opts_body["preconditions"].is_object()) {
    const auto& pre = opts_body["preconditions"];
    if (pre.contains("uid") && pre["uid"].is_string() && pre["uid"] != meta_str(old, "uid")) {
      throw conflict(rt, name, "Precondition failed: UID in precondition: " + pre["uid"].get<std::string>() +
                                   ", UID in object meta: " + meta_str(old, "uid"));
    }
    if (pre.contains("resourceVersion") && pre["resourceVersion"].is_string() &&
        pre["resourceVersion"] != meta_str(old, "resourceVersion")) {
      throw conflict(rt, name,
                     "Precondition failed: ResourceVersion in precondition: " + pre["resourceVersion"].get<std::string>() +
                         ", ResourceVersion in object meta: " + meta_str(old, "resourceVersion"));
    }
  }
  if (dry_run(req)) {
    if (rt.delete_returns_status) return json_reply(200, success_status(rt, old));
    return json_reply(200, old);
  }
  if (rt.kind == "Namespace") {
    // Simplification: the namespace and everything in it go at once (no Terminating phase to wait for).
    for (const auto& t : resource_types()) {
      if (!t.namespaced) continue;
      std::vector<json> doomed;
      for (const auto& [k, o] : bucket(t)) {
        if (meta_str(o, "namespace") == name) doomed.push_back(o);
      }
      for (const auto& o : doomed) store_delete(t, o);
    }
    json gone = store_delete(rt, old);
    gone["metadata"]["deletionTimestamp"] = rfc3339_now();
    gone["status"] = {{"phase", "Terminating"}};
    return json_reply(200, gone);
  }
  if (!old["metadata"].value("finalizers", json::array()).empty()) {
    if (old["metadata"].contains("deletionTimestamp")) return json_reply(200, old);
    json next = old;
    next["metadata"]["deletionTimestamp"] = rfc3339_now();
    next["metadata"]["deletionGracePeriodSeconds"] = 0;
    return json_reply(200, store_update(rt, old, std::move(next)));
  }
  json gone = store_delete(rt, old);
  if (rt.delete_returns_status) return json_reply(200, success_status(rt, gone));
  return json_reply(200, gone);
}

Reply FakeApiServer::Impl::do_watch(const Request& req, const ResourceType& rt, const std::string& ns,
                                    httplib::Response& res) {
  auto get = [&](const char* k) {
    auto it = req.params.find(k);
    return it == req.params.end() ? std::string() : it->second;
  };
  auto w = std::make_shared<Watcher>();
  w->rt = &rt;
  w->ns = rt.namespaced ? ns : "";
  w->labels = parse_label_selector(get("labelSelector"));
  w->fields = parse_field_selector(get("fieldSelector"), rt);
  w->limit = opts.watch_queue_limit;
  w->table = req.table;
  w->partial = req.partial == "PartialObjectMetadata";
  bool bookmarks = get("allowWatchBookmarks") == "true" || get("allowWatchBookmarks") == "1";
  bool initial_events = get("sendInitialEvents") == "true";
  std::string rv_param = get("resourceVersion");
  auto timeout = opts.default_watch_timeout;
  if (!get("timeoutSeconds").empty()) {
    try {
      timeout = std::chrono::seconds(std::stoll(get("timeoutSeconds")));
    } catch (...) {
      throw bad_request("invalid timeoutSeconds: " + get("timeoutSeconds"));
    }
  }
  std::uint64_t from = 0;
  bool from_given = !rv_param.empty() && rv_param != "0";
  if (from_given) {
    try {
      std::size_t pos = 0;
      from = std::stoull(rv_param, &pos);
      if (pos != rv_param.size()) throw std::invalid_argument("rv");
    } catch (...) {
      throw bad_request("invalid resource version: " + rv_param);
    }
  }
  bool force_expire = false;
  {
    std::lock_guard fl(fault_mu);
    if (expire_next > 0) {
      --expire_next;
      force_expire = true;
    }
  }
  auto expired = [&](const std::string& msg) {
    json ev = {{"type", "ERROR"}, {"object", status_json(410, "Expired", msg, nullptr)}};
    w->push(lines_of(ev), false);
    w->close();
  };
  {
    std::lock_guard lk(mu);
    if (force_expire) {
      expired("too old resource version: " + (from_given ? std::to_string(from) : std::string("0")) + " (" +
              std::to_string(rv) + ")");
    } else if (!from_given || initial_events) {
      for (const auto& [key, obj] : bucket(rt)) {
        if (w->selects(obj)) w->push(w->render(json{{"type", "ADDED"}, {"object", obj}}), false);
      }
      if (initial_events && bookmarks) {
        json bm = {{"type", "BOOKMARK"},
                   {"object",
                    {{"kind", rt.kind},
                     {"apiVersion", rt.api_version()},
                     {"metadata",
                      {{"resourceVersion", std::to_string(rv)},
                       {"creationTimestamp", nullptr},
                       {"annotations", {{"k8s.io/initial-events-end", "true"}}}}}}}};
        w->push(lines_of(bm), false);
      }
      watchers.push_back(w);
    } else if (from < compacted_rv || from > rv) {
      // Simplification: an RV from the future (e.g. after a reset that restarted RVs) is also Expired.
      expired("too old resource version: " + std::to_string(from) + " (" + std::to_string(compacted_rv + 1) + ")");
    } else {
      for (const auto& e : events) {
        if (e.rv <= from) continue;
        if (auto ev = event_for(*w, e)) w->push(w->render(*ev), false);
      }
      watchers.push_back(w);
    }
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto interval = opts.bookmark_interval;
  auto next_bookmark = std::chrono::steady_clock::now() + interval;
  res.status = 200;
  res.set_chunked_content_provider(
      "application/json",
      [this, w, deadline, interval, next_bookmark, bookmarks, &rt](std::size_t, httplib::DataSink& sink) mutable {
        std::vector<std::string> batch;
        bool finished = false;
        {
          std::unique_lock lk(w->mu);
          auto wake = std::min(deadline, bookmarks ? next_bookmark : deadline);
          wake = std::min(wake, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
          w->cv.wait_until(lk, wake, [&] { return !w->queue.empty() || w->closed || stopping.load(); });
          while (!w->queue.empty()) {
            if (w->queue.front().second) --w->live_pending;
            batch.push_back(std::move(w->queue.front().first));
            w->queue.pop_front();
          }
          finished = w->closed || stopping.load();
        }
        for (const auto& line : batch) {
          if (!sink.write(line.data(), line.size())) return false;
        }
        auto now = std::chrono::steady_clock::now();
        if (!finished && bookmarks && now >= next_bookmark) {
          std::string rvs;
          {
            std::lock_guard lk(mu);
            rvs = std::to_string(rv);
          }
          json bm = {{"type", "BOOKMARK"},
                     {"object",
                      {{"kind", rt.kind},
                       {"apiVersion", rt.api_version()},
                       {"metadata", {{"resourceVersion", rvs}, {"creationTimestamp", nullptr}}}}}};
          std::string line = lines_of(bm);
          if (!sink.write(line.data(), line.size())) return false;
          next_bookmark = now + interval;
        }
        if (finished || now >= deadline) sink.done();
        return true;
      },
      [this, w](bool) {
        w->close();
        std::lock_guard lk(mu);
        watchers.erase(std::remove(watchers.begin(), watchers.end(), w), watchers.end());
      });
  return {200, "", "", {}};
}

// kubectl auth can-i: answers from the same policy that guards requests.
Reply FakeApiServer::Impl::access_review(const Request& req) {
  std::string ct = req.content_type.substr(0, req.content_type.find(';'));
  json o;
  if (ct == "application/vnd.kubernetes.protobuf") {
    o = decode_k8s_protobuf(req.body);
  } else if (ct == "application/json" || ct.empty()) {
    o = nesting_ok(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded);
    if (o.is_discarded() || !o.is_object()) throw bad_request("the object provided is unrecognized");
  } else {
    throw ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf");
  }
  if (o.value("kind", "SelfSubjectAccessReview") != "SelfSubjectAccessReview") throw bad_request("not a SelfSubjectAccessReview");
  json spec = o.value("spec", json::object());
  bool ok = true;
  if (spec.contains("resourceAttributes") && spec["resourceAttributes"].is_object()) {
    const auto& a = spec["resourceAttributes"];
    std::string res = a.value("resource", "");
    std::string sub = a.value("subresource", "");
    if (!sub.empty()) res += "/" + sub;
    ok = allowed(req.user, a.value("verb", ""), a.value("group", ""), res, a.value("namespace", ""), a.value("name", ""));
  } else if (!spec.contains("nonResourceAttributes")) {
    ResourceType ssar;
    ssar.group = "authorization.k8s.io";
    ssar.version = "v1";
    ssar.resource = "selfsubjectaccessreviews";
    ssar.kind = "SelfSubjectAccessReview";
    throw invalid(ssar, "", {{"FieldValueRequired", "spec.resourceAttributes", "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified"}});
  }
  json out = {{"kind", "SelfSubjectAccessReview"},
              {"apiVersion", "authorization.k8s.io/v1"},
              {"metadata", {{"creationTimestamp", nullptr}}},
              {"spec", spec},
              {"status", {{"allowed", ok}}}};
  if (!ok) out["status"]["reason"] = "no policy rule of the fake API server allows it";
  return json_reply(201, out);
}

// ================= routing =================

std::optional<Reply> FakeApiServer::Impl::injected_failure(const Request& req) {
  std::chrono::milliseconds delay{0};
  std::optional<Reply> out;
  {
    std::lock_guard fl(fault_mu);
    if (latency.count() > 0 && std::regex_match(req.method, std::regex(latency_method)) &&
        std::regex_search(req.path, std::regex(latency_path))) {
      delay = latency;
    }
    for (auto it = fail_rules.begin(); it != fail_rules.end(); ++it) {
      if (!std::regex_match(req.method, std::regex(it->method)) || !std::regex_search(req.path, std::regex(it->path))) {
        continue;
      }
      ApiError e(it->status, "InternalError", "Internal error occurred: injected fault");
      if (it->status == 503) e = ApiError(503, "ServiceUnavailable", "the server is currently unable to handle the request");
      if (it->status == 429) e = ApiError(429, "TooManyRequests", "Too many requests, please try again later.");
      if (it->status == 504) e = ApiError(504, "Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request");
      if (it->retry_after_seconds >= 0) {
        e.retry_after = std::to_string(it->retry_after_seconds);
        e.details = {{"retryAfterSeconds", it->retry_after_seconds}};
      }
      out = error_reply(e);
      if (--it->count <= 0) fail_rules.erase(it);
      break;
    }
  }
  if (delay.count() > 0) std::this_thread::sleep_for(delay);  // injected latency is the point here
  return out;
}

Reply FakeApiServer::Impl::handle(Request& req, bool& is_watch, httplib::Response& res) {
  if (auto f = injected_failure(req)) return *f;
  bool handled = false;
  Reply d = discovery(req, handled);
  if (handled) return d;
  auto seg = split_path(req.path);
  std::string group, version;
  std::size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    version = seg[1];
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    group = seg[1];
    version = seg[2];
    i = 3;
  } else {
    throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  }
  bool watch_path = false;
  if (i < seg.size() && seg[i] == "watch") {
    watch_path = true;
    ++i;
  }
  std::vector<std::string> rest(seg.begin() + static_cast<long>(i), seg.end());
  if (group == "authorization.k8s.io" && version == "v1" && rest.size() == 1 && rest[0] == "selfsubjectaccessreviews") {
    if (req.method != "POST") {
      throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", json::object());
    }
    return access_review(req);
  }
  std::string ns, resource, name, sub;
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    ns = rest[1];
    resource = rest[2];
    if (rest.size() >= 4) name = rest[3];
    if (rest.size() >= 5) sub = rest[4];
    if (rest.size() > 5) throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  } else if (!rest.empty()) {
    resource = rest[0];
    if (rest.size() >= 2) name = rest[1];
    if (rest.size() >= 3) sub = rest[2];
    if (rest.size() > 3) throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  } else {
    throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  }
  const ResourceType* rt = find_type(group, version, resource);
  if (!rt) throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  if (!rt->namespaced && !ns.empty()) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  }
  if (rt->namespaced && ns.empty() && !name.empty()) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  }
  if (!sub.empty() && !(sub == "status" && rt->status_subresource)) {
    throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
  }
  return handle_resource(req, *rt, ns, name, sub, watch_path, is_watch, res);
}

// The name a field selector requires exactly (`metadata.name=x` or `==`), "" when none.
static std::string exact_name_selector(const std::string& selector) {
  std::size_t start = 0;
  while (start <= selector.size()) {
    auto comma = selector.find(',', start);
    auto term = selector.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    for (const char* prefix : {"metadata.name==", "metadata.name="}) {
      std::string_view p(prefix);
      if (term.compare(0, p.size(), p) == 0 && term.find('!') == std::string::npos) return term.substr(p.size());
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return "";
}

Reply FakeApiServer::Impl::handle_resource(Request& req, const ResourceType& rt, const std::string& ns,
                                           const std::string& name, const std::string& sub, bool watch_path,
                                           bool& is_watch, httplib::Response& res) {
  const std::string& m = req.method;
  auto param = [&](const char* k) {
    auto it = req.params.find(k);
    return it == req.params.end() ? std::string() : it->second;
  };
  bool watch = watch_path || param("watch") == "true" || param("watch") == "1";
  std::string verb;
  if (m == "GET") {
    verb = watch ? "watch" : (name.empty() ? "list" : "get");
  } else if (m == "POST") {
    verb = "create";
  } else if (m == "PUT") {
    verb = "update";
  } else if (m == "PATCH") {
    verb = "patch";
  } else if (m == "DELETE") {
    verb = name.empty() ? "deletecollection" : "delete";
  } else {
    throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", json::object());
  }
  if ((verb == "create" && !name.empty()) || ((verb == "update" || verb == "patch") && name.empty())) {
    throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", json::object());
  }
  if (!sub.empty() && (verb == "delete" || verb == "create")) {
    throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", json::object());
  }
  std::string auth_res = sub.empty() ? rt.resource : rt.resource + "/" + sub;
  std::string auth_ns = rt.namespaced ? ns : "";
  if (rt.kind == "Namespace" && !name.empty()) auth_ns = name;  // namespaces are authorized within themselves
  // Like the real RequestInfo: a list/watch whose field selector pins metadata.name is authorized (and
  // named in the 403) as a request for that name, so resourceNames rules can allow it.
  std::string auth_name = name;
  if (auth_name.empty() && (verb == "list" || verb == "watch")) auth_name = exact_name_selector(param("fieldSelector"));
  if (!allowed(req.user, verb, rt.group, auth_res, rt.kind == "Namespace" ? "" : auth_ns, auth_name) &&
      !(rt.kind == "Namespace" && allowed(req.user, verb, rt.group, auth_res, auth_ns, auth_name))) {
    throw forbidden(req.user, verb, rt, sub, rt.namespaced ? ns : "", auth_name);
  }
  bool strict = param("fieldValidation") == "Strict";
  // Metadata-only reads: lists want the List form, single objects and watches the object form.
  if (!req.partial.empty() && (verb == "list" || verb == "watch" || verb == "get")) {
    const std::string want = verb == "list" ? "PartialObjectMetadataList" : "PartialObjectMetadata";
    if (req.partial != want) {
      throw ApiError(406, "NotAcceptable",
                     "only the following media types are accepted: application/json;as=" + want +
                         ";g=meta.k8s.io;v=v1, application/json",
                     json::object());
    }
  }
  if (verb == "watch") {
    is_watch = true;
    if (!name.empty()) {  // watching one object is a watch with metadata.name=<name>
      std::string& fs = req.params["fieldSelector"];
      fs = (fs.empty() ? "" : fs + ",") + "metadata.name=" + name;
    }
    return do_watch(req, rt, ns, res);
  }
  if (verb == "list") return do_list(req, rt, ns);
  if (verb == "get") {
    std::lock_guard lk(mu);
    const json* o = find(rt, rt.namespaced ? ns : "", name);
    if (!o) throw not_found(rt, name);
    if (req.table) return json_reply(200, make_table(rt, {o}, {{"resourceVersion", meta_str(*o, "resourceVersion")}}));
    if (req.partial == "PartialObjectMetadata") return json_reply(200, partial_of(*o));
    return json_reply(200, *o);
  }
  if (verb == "create") {
    if (rt.namespaced && ns.empty()) {
      throw ApiError(404, "NotFound", "the server could not find the requested resource", json::object());
    }
    return do_create(req, rt, ns, decode_body(req, rt, strict));
  }
  if (verb == "update") return do_update(req, rt, ns, name, sub, decode_body(req, rt, strict), false);
  if (verb == "patch") {
    std::string ct = req.content_type.substr(0, req.content_type.find(';'));
    static const std::set<std::string> types = {"application/merge-patch+json", "application/json-patch+json",
                                                "application/strategic-merge-patch+json"};
    if (!types.count(ct)) {
      throw ApiError(415, "UnsupportedMediaType",
                     "the body of the request was in an unknown format - accepted media types include: "
                     "application/json-patch+json, application/merge-patch+json, "
                     "application/strategic-merge-patch+json (server-side apply is not supported by this fake)");
    }
    json patch = nesting_ok(req.body) ? json::parse(req.body, nullptr, false) : json(json::value_t::discarded);
    if (patch.is_discarded()) throw bad_request("error decoding patch: invalid character in JSON input");
    // Like the real server, a patch without its own resourceVersion is retried on concurrent writes.
    for (int attempt = 0;; ++attempt) {
      json current;
      {
        std::lock_guard lk(mu);
        const json* o = find(rt, rt.namespaced ? ns : "", name);
        if (!o) throw not_found(rt, name);
        current = *o;
      }
      json patched;
      if (ct == "application/json-patch+json") {
        if (!patch.is_array()) throw bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
        try {
          patched = current.patch(patch);
        } catch (const std::exception& e) {
          throw ApiError(422, "Invalid", std::string("the server rejected our request due to an error in our request: ") + e.what());
        }
      } else {
        if (!patch.is_object()) throw bad_request("json: cannot unmarshal array into Go value of type map[string]interface {}");
        patched = ct == "application/merge-patch+json" ? apply_merge_patch(current, patch)
                                                       : apply_strategic_merge_patch(current, patch);
      }
      if (!patched.is_object() || !patched.contains("metadata") || !patched["metadata"].is_object()) {
        throw bad_request("the patch produced an invalid object");
      }
      if (patched.value("kind", rt.kind) != rt.kind || patched.value("apiVersion", rt.api_version()) != rt.api_version()) {
        throw bad_request("the API version in the data does not match the expected API version");
      }
      bool precondition = meta_str(patched, "resourceVersion") != meta_str(current, "resourceVersion");
      try {
        return do_update(req, rt, ns, name, sub, std::move(patched), true);
      } catch (const ApiError& e) {
        if (e.code != 409 || precondition || attempt >= 10) throw;
      }
    }
  }
  if (verb == "delete") return do_delete(req, rt, ns, name);
  if (verb == "deletecollection") {
    Request plain = req;
    plain.table = false;
    Reply list = do_list(plain, rt, ns);
    json l = json::parse(list.body);
    for (const auto& item : l["items"]) {
      if (dry_run(req)) break;
      try {
        do_delete(Request{}, rt, meta_str(item, "namespace"), meta_str(item, "name"));
      } catch (const ApiError&) {
      }
    }
    return list;
  }
  throw ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", json::object());
}

void FakeApiServer::Impl::log_request(const Request& req, int status, bool watch) {
  std::lock_guard lk(log_mu);
  request_log.push_back({req.method, req.path, req.query, req.user, req.content_type, status, rfc3339_now(true), watch});
  if (request_log.size() > 100000) request_log.erase(request_log.begin(), request_log.begin() + 10000);
}

// ================= control API =================

std::pair<int, std::string> FakeApiServer::Impl::control(const std::string& method, const std::string& target,
                                                         const std::string& body) {
  std::string path = target.substr(0, target.find('?'));
  std::map<std::string, std::string> query;
  if (auto q = target.find('?'); q != std::string::npos) {
    std::stringstream ss(target.substr(q + 1));
    std::string kv;
    while (std::getline(ss, kv, '&')) {
      auto eq = kv.find('=');
      query[url_decode(kv.substr(0, eq))] = eq == std::string::npos ? "" : url_decode(kv.substr(eq + 1));
    }
  }
  json b = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (b.is_discarded() || !b.is_object()) return {400, json{{"error", "body must be a JSON object"}}.dump()};
  auto ok = [] { return std::pair<int, std::string>{200, json{{"ok", true}}.dump()}; };
  try {
    if (method == "GET" && path == "/healthz") return ok();
    if (method == "GET" && (path == "/requests" || path == "/request-log")) {
      json a = json::array();
      // Optional filters: method (exact), path (regex search), user (exact), watch (true/false).
      std::optional<std::regex> path_re;
      if (query.count("path")) path_re.emplace(query["path"]);
      std::lock_guard lk(log_mu);
      for (const auto& e : request_log) {
        if (query.count("method") && query["method"] != e.method) continue;
        if (query.count("user") && query["user"] != e.user) continue;
        if (query.count("watch") && (query["watch"] == "true") != e.watch) continue;
        if (path_re && !std::regex_search(e.path, *path_re)) continue;
        a.push_back({{"method", e.method}, {"path", e.path}, {"query", e.query}, {"user", e.user},
                     {"content_type", e.content_type}, {"status", e.status}, {"time", e.time}, {"watch", e.watch}});
      }
      return {200, a.dump()};
    }
    if (method == "DELETE" && (path == "/requests" || path == "/request-log")) {
      std::lock_guard lk(log_mu);
      request_log.clear();
      return ok();
    }
    if (method == "POST" && path == "/faults/drop-watches") {
      std::lock_guard lk(mu);
      for (auto& w : watchers) w->close();
      return ok();
    }
    if (method == "POST" && path == "/faults/fail") {
      FailRule r;
      r.method = b.value("method", ".*");
      r.path = b.value("path", ".*");
      r.count = b.value("count", 1);
      r.status = b.value("status", 503);
      r.retry_after_seconds = b.value("retry_after", -1);
      (void)std::regex(r.method);  // validate before storing
      (void)std::regex(r.path);
      std::lock_guard fl(fault_mu);
      fail_rules.push_back(r);
      return ok();
    }
    if (method == "POST" && path == "/faults/latency") {
      std::string lm = b.value("method", ".*"), lp = b.value("path", ".*");
      (void)std::regex(lm);
      (void)std::regex(lp);
      std::lock_guard fl(fault_mu);
      latency = std::chrono::milliseconds(b.value("ms", 0));
      latency_method = lm;
      latency_path = lp;
      return ok();
    }
    if (method == "POST" && path == "/faults/expire-next-watch") {
      std::lock_guard fl(fault_mu);
      expire_next += b.value("count", 1);
      return ok();
    }
    if (method == "POST" && path == "/faults/conflicts") {
      std::lock_guard fl(fault_mu);
      conflict_remaining = b.value("count", 1);
      conflict_every = std::max(1, b.value("every", 1));
      conflict_seen = 0;
      return ok();
    }
    if (method == "POST" && path == "/faults/clear") {
      std::lock_guard fl(fault_mu);
      fail_rules.clear();
      latency = std::chrono::milliseconds(0);
      expire_next = 0;
      conflict_remaining = 0;
      return ok();
    }
    if (method == "POST" && path == "/reset") {
      bool restart = b.value("restart_resource_version", false);
      std::lock_guard lk(mu);
      for (auto& w : watchers) w->close();
      objects.clear();
      events.clear();
      if (restart) rv = 0;
      compacted_rv = rv;
      seed_namespaces();
      compacted_rv = rv;
      events.clear();
      return ok();
    }
    if (method == "GET" && path == "/state") {
      std::lock_guard lk(mu);
      json o = {{"resourceVersion", std::to_string(rv)}, {"watches", watchers.size()},
                {"compactedResourceVersion", std::to_string(compacted_rv)}};
      return {200, o.dump()};
    }
  } catch (const std::regex_error& e) {
    return {400, json{{"error", std::string("bad regex: ") + e.what()}}.dump()};
  } catch (const json::exception& e) {
    return {400, json{{"error", e.what()}}.dump()};
  }
  return {404, json{{"error", "unknown control endpoint " + method + " " + path}}.dump()};
}

// ================= public class =================

FakeApiServer::FakeApiServer(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

FakeApiServer::~FakeApiServer() { stop(); }

// Kubernetes RBAC objects (Role, ClusterRole, RoleBinding, ClusterRoleBinding; multi-document YAML or a List)
// become per-user rules: a ClusterRoleBinding grants everywhere, a RoleBinding only in its namespace
// (`default_ns` when the manifest leaves it to kubectl/kustomize). ServiceAccount subjects are the user
// "system:serviceaccount:<namespace>:<name>". Group subjects are ignored.
static json rbac_policy(const std::vector<json>& docs, const std::string& default_ns) {
  std::vector<json> objects;
  for (const auto& d : docs) {
    if (d.is_object() && d.value("kind", "") == "List") {
      for (const auto& i : d.value("items", json::array())) objects.push_back(i);
    } else if (d.is_object()) {
      objects.push_back(d);
    }
  }
  auto ns_of = [&](const json& o) {
    std::string ns = o.contains("metadata") ? o["metadata"].value("namespace", "") : "";
    return ns.empty() ? default_ns : ns;
  };
  std::map<std::string, json> cluster_roles, roles;  // name / ns+"/"+name -> rules
  for (const auto& o : objects) {
    std::string kind = o.value("kind", "");
    std::string name = o.contains("metadata") ? o["metadata"].value("name", "") : "";
    json rules = o.value("rules", json::array());
    if (rules.is_null()) rules = json::array();
    if (kind == "ClusterRole") cluster_roles[name] = rules;
    if (kind == "Role") roles[ns_of(o) + "/" + name] = rules;
  }
  json out = json::object();
  for (const auto& o : objects) {
    std::string kind = o.value("kind", "");
    if (kind != "RoleBinding" && kind != "ClusterRoleBinding") continue;
    json ref = o.value("roleRef", json::object());
    std::string ref_kind = ref.value("kind", ""), ref_name = ref.value("name", "");
    std::string bns = ns_of(o);
    json rules;
    if (ref_kind == "ClusterRole" && cluster_roles.count(ref_name)) rules = cluster_roles[ref_name];
    if (ref_kind == "Role" && kind == "RoleBinding" && roles.count(bns + "/" + ref_name)) rules = roles[bns + "/" + ref_name];
    if (!rules.is_array()) throw std::runtime_error("policy: " + kind + " refers to unknown " + ref_kind + " " + ref_name);
    for (const auto& subj : o.value("subjects", json::array())) {
      std::string sk = subj.value("kind", ""), sn = subj.value("name", "");
      std::string user;
      if (sk == "User") user = sn;
      if (sk == "ServiceAccount") user = "system:serviceaccount:" + subj.value("namespace", bns) + ":" + sn;
      if (user.empty()) continue;
      for (json r : rules) {
        if (kind == "RoleBinding") r["namespaces"] = json::array({bns});
        out[user].push_back(r);
      }
    }
  }
  return out;
}

static json parse_policy(const std::string& text, const std::string& default_ns) {
  if (text.find("rbac.authorization.k8s.io") != std::string::npos) {
    std::vector<json> docs;
    try {
      for (const auto& n : YAML::LoadAll(text)) docs.push_back(yaml_to_json(n));
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("policy: invalid YAML: ") + e.what());
    }
    json p = rbac_policy(docs, default_ns);
    for (auto& [user, rules] : p.items()) {
      for (auto& r : rules) {
        for (auto& g : r["apiGroups"]) {
          if (g.is_null()) g = "";
        }
      }
    }
    return p;
  }
  json p;
  auto t = text.find_first_not_of(" \t\r\n");
  if (t != std::string::npos && text[t] == '{') {
    p = json::parse(text, nullptr, false);
    if (p.is_discarded()) throw std::runtime_error("policy: invalid JSON");
  } else {
    try {
      p = yaml_to_json(YAML::Load(text));
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("policy: invalid YAML: ") + e.what());
    }
  }
  if (!p.is_object() || !p.contains("users") || !p["users"].is_object()) {
    throw std::runtime_error("policy: expected an object with a \"users\" map");
  }
  json out = json::object();
  for (auto it = p["users"].begin(); it != p["users"].end(); ++it) {
    json rules = it->is_array() ? *it : it->value("rules", json::array());
    if (!rules.is_array()) throw std::runtime_error("policy: rules of " + it.key() + " must be a list");
    for (auto& r : rules) {
      if (!r.is_object()) throw std::runtime_error("policy: each rule must be an object");
      // YAML turns an empty-string group into null; restore "" as the core group.
      if (r.contains("apiGroups")) {
        for (auto& g : r["apiGroups"]) {
          if (g.is_null()) g = "";
        }
      }
    }
    out[it.key()] = rules;
  }
  return out;
}

void FakeApiServer::start() {
  auto& d = *impl_;
  if (d.started) return;
  d.tls = generate_tls();
  d.admin_token = d.opts.admin_token.empty() ? random_hex(24) : d.opts.admin_token;
  d.token_to_user[d.admin_token] = d.admin_user;
  d.user_to_token[d.admin_user] = d.admin_token;
  for (const auto& [user, token] : d.opts.tokens) {
    d.token_to_user[token] = user;
    d.user_to_token[user] = token;
  }
  if (!d.opts.policy.empty()) {
    d.policy = parse_policy(d.opts.policy, d.opts.policy_namespace);
    d.has_policy = true;
  }
  {
    std::lock_guard lk(d.mu);
    d.seed_namespaces();
  }
  auto load = [](const std::string& pem, bool key) -> void* {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    void* out = key ? static_cast<void*>(PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr))
                    : static_cast<void*>(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    return out;
  };
  X509* cert = static_cast<X509*>(load(d.tls.cert_pem, false));
  EVP_PKEY* key = static_cast<EVP_PKEY*>(load(d.tls.key_pem, true));
  d.api = std::make_unique<httplib::SSLServer>(cert, key);
  X509_free(cert);  // the SSL_CTX holds its own references
  EVP_PKEY_free(key);
  if (!d.api->is_valid()) throw std::runtime_error("fake-apiserver: TLS setup failed");
  int threads = d.opts.threads;
  d.api->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  d.api->set_keep_alive_max_count(1000);
  d.api->set_keep_alive_timeout(10);  // an idle keep-alive connection holds a worker and delays stop()
  d.api->set_read_timeout(30);
  d.api->set_tcp_nodelay(d.opts.tcp_nodelay);

  auto handler = [this](const httplib::Request& hreq, httplib::Response& res) {
    auto& d = *impl_;
    Request req;
    req.method = hreq.method;
    req.path = hreq.path;
    std::string target = hreq.target;
    auto q = target.find('?');
    req.query = q == std::string::npos ? "" : target.substr(q + 1);
    for (const auto& [k, v] : hreq.params) req.params[k] = v;
    req.content_type = hreq.get_header_value("Content-Type");
    std::string accept = hreq.get_header_value("Accept");
    req.table = accept.find("as=Table") != std::string::npos && accept.find("g=meta.k8s.io") != std::string::npos;
    if (accept.find("g=meta.k8s.io") != std::string::npos) {
      // The first media type of the list decides (a client may add plain JSON as a fallback).
      const auto first = accept.substr(0, accept.find(','));
      if (first.find("as=PartialObjectMetadataList") != std::string::npos) req.partial = "PartialObjectMetadataList";
      else if (first.find("as=PartialObjectMetadata") != std::string::npos) req.partial = "PartialObjectMetadata";
    }
    req.body = hreq.body;
    bool is_watch = false;
    Reply reply;
    std::string auth = hreq.get_header_value("Authorization");
    std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
    auto it = d.token_to_user.find(token);
    if (it == d.token_to_user.end()) {
      reply = json_reply(401, status_json(401, "Unauthorized", "Unauthorized", nullptr));
    } else {
      req.user = it->second;
      // Watches stream line by line: gzip in this HTTP library would hold events back.
      if (hreq.has_param("watch") || hreq.path.find("/watch/") != std::string::npos) {
        const_cast<httplib::Request&>(hreq).headers.erase("Accept-Encoding");
      }
      try {
        reply = d.handle(req, is_watch, res);
      } catch (const ApiError& e) {
        is_watch = false;
        reply = error_reply(e);
      } catch (const std::exception& e) {
        is_watch = false;
        reply = json_reply(500, status_json(500, "InternalError", std::string("Internal error occurred: ") + e.what(),
                                            nullptr));
      }
    }
    d.log_request(req, reply.status, is_watch);
    if (is_watch) return;  // the chunked provider is already set
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k.c_str(), v);
    res.set_content(reply.body, reply.content_type.c_str());
  };
  const std::string any = R"(/.*)";
  d.api->Get(any, handler).Post(any, handler).Put(any, handler).Patch(any, handler).Delete(any, handler);
  d.api->Options(any, handler);

  d.port = d.opts.port == 0 ? d.api->bind_to_any_port(d.opts.host) : (d.api->bind_to_port(d.opts.host, d.opts.port) ? d.opts.port : -1);
  if (d.port <= 0) throw std::runtime_error("fake-apiserver: cannot bind " + d.opts.host + ":" + std::to_string(d.opts.port));
  d.api_thread = std::thread([&d] { d.api->listen_after_bind(); });

  if (d.opts.control_port >= 0) {
    d.ctl = std::make_unique<httplib::Server>();
    auto ch = [this](const httplib::Request& hreq, httplib::Response& res) {
      auto [status, body] = impl_->control(hreq.method, hreq.target, hreq.body);
      res.status = status;
      res.set_content(body, "application/json");
    };
    d.ctl->Get(any, ch).Post(any, ch).Delete(any, ch).Put(any, ch);
    d.control_port = d.opts.control_port == 0
                         ? d.ctl->bind_to_any_port(d.opts.host)
                         : (d.ctl->bind_to_port(d.opts.host, d.opts.control_port) ? d.opts.control_port : -1);
    if (d.control_port <= 0) {
      stop();
      throw std::runtime_error("fake-apiserver: cannot bind control port " + std::to_string(d.opts.control_port));
    }
    d.ctl_thread = std::thread([&d] { d.ctl->listen_after_bind(); });
  }
  d.started = true;
}

void FakeApiServer::stop() {
  auto& d = *impl_;
  d.stopping = true;
  {
    std::lock_guard lk(d.mu);
    for (auto& w : d.watchers) w->close();
  }
  if (d.api) d.api->stop();
  if (d.ctl) d.ctl->stop();
  if (d.api_thread.joinable()) d.api_thread.join();
  if (d.ctl_thread.joinable()) d.ctl_thread.join();
  d.started = false;
}

int FakeApiServer::port() const { return impl_->port; }
int FakeApiServer::control_port() const { return impl_->control_port; }
std::string FakeApiServer::url() const { return "https://" + impl_->opts.host + ":" + std::to_string(impl_->port); }
std::string FakeApiServer::ca_pem() const { return impl_->tls.ca_cert_pem; }
std::string FakeApiServer::admin_token() const { return impl_->admin_token; }
std::string FakeApiServer::token_of(const std::string& user) const {
  auto it = impl_->user_to_token.find(user);
  return it == impl_->user_to_token.end() ? "" : it->second;
}

std::string FakeApiServer::kubeconfig(const std::string& user, const std::string& ca_file) const {
  std::string u = user.empty() ? impl_->admin_user : user;
  std::string ca = ca_file.empty() ? "    certificate-authority-data: " + base64_encode(ca_pem()) + "\n"
                                   : "    certificate-authority: " + ca_file + "\n";
  return "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: " + url() + "\n" + ca +
         "users:\n- name: " + u + "\n  user:\n    token: " + token_of(u) +
         "\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: " + u +
         "\n    namespace: default\ncurrent-context: fake\npreferences: {}\n";
}

void FakeApiServer::write_files(const std::string& dir) const {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& content) {
    fs::path tmp = fs::path(dir) / (name + ".tmp");
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << content;
      if (!f) throw std::runtime_error("fake-apiserver: cannot write " + tmp.string());
    }
    fs::rename(tmp, fs::path(dir) / name);  // readers never see half a file
  };
  std::string ca_path = fs::absolute(fs::path(dir) / "ca.crt").string();
  write("ca.crt", impl_->tls.ca_cert_pem);
  write("tls.crt", impl_->tls.cert_pem);
  write("tls.key", impl_->tls.key_pem);
  write("kubeconfig", kubeconfig("", ca_path));
  json tokens = json::object();
  for (const auto& [user, token] : impl_->opts.tokens) {
    write("kubeconfig-" + user, kubeconfig(user, ca_path));
    tokens[user] = token;
  }
  json ready = {{"url", url()},
                {"port", port()},
                {"control_port", control_port()},
                {"control_url", control_port() > 0 ? "http://" + impl_->opts.host + ":" + std::to_string(control_port()) : ""},
                {"admin_token", admin_token()},
                {"tokens", tokens},
                {"ca_file", ca_path}};
  write("ready", ready.dump(2) + "\n");
}

std::optional<json> FakeApiServer::get(std::string_view resource, std::string_view ns, std::string_view name) const {
  const ResourceType* rt = find_type_by_name(resource);
  if (!rt) throw std::invalid_argument("unknown resource " + std::string(resource));
  std::lock_guard lk(impl_->mu);
  const json* o = impl_->find(*rt, rt->namespaced ? std::string(ns) : "", std::string(name));
  if (!o) return std::nullopt;
  return *o;
}

std::vector<json> FakeApiServer::list(std::string_view resource, std::string_view ns) const {
  const ResourceType* rt = find_type_by_name(resource);
  if (!rt) throw std::invalid_argument("unknown resource " + std::string(resource));
  std::lock_guard lk(impl_->mu);
  std::vector<json> out;
  for (const auto& [k, o] : impl_->bucket(*rt)) {
    if (ns.empty() || meta_str(o, "namespace") == ns) out.push_back(o);
  }
  return out;
}

json FakeApiServer::put(std::string_view resource, const json& object) {
  const ResourceType* rt = find_type_by_name(resource);
  if (!rt) throw std::invalid_argument("unknown resource " + std::string(resource));
  json o = object;
  if (!o.contains("metadata")) o["metadata"] = json::object();
  std::string ns = rt->namespaced ? meta_str(o, "namespace") : "";
  if (rt->namespaced && ns.empty()) {
    ns = "default";
    o["metadata"]["namespace"] = ns;
  }
  std::string name = meta_str(o, "name");
  if (name.empty()) throw std::invalid_argument("put: metadata.name is required");
  impl_->validate_and_normalize(*rt, o, nullptr);
  std::lock_guard lk(impl_->mu);
  const json* existing = impl_->find(*rt, ns, name);
  if (!existing) return impl_->store_create(*rt, std::move(o));
  json old = *existing;
  o["kind"] = rt->kind;
  o["apiVersion"] = rt->api_version();
  o["metadata"]["uid"] = old["metadata"]["uid"];
  o["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"];
  o["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"];
  if (rt->generation) {
    int g = old["metadata"].value("generation", 1);
    o["metadata"]["generation"] = o.value("spec", json()) != old.value("spec", json()) ? g + 1 : g;
  }
  if (o == old) return old;
  return impl_->store_update(*rt, old, std::move(o));
}

bool FakeApiServer::remove(std::string_view resource, std::string_view ns, std::string_view name) {
  const ResourceType* rt = find_type_by_name(resource);
  if (!rt) throw std::invalid_argument("unknown resource " + std::string(resource));
  std::lock_guard lk(impl_->mu);
  const json* existing = impl_->find(*rt, rt->namespaced ? std::string(ns) : "", std::string(name));
  if (!existing) return false;
  json old = *existing;
  impl_->store_delete(*rt, old);
  return true;
}

std::uint64_t FakeApiServer::resource_version() const {
  std::lock_guard lk(impl_->mu);
  return impl_->rv;
}

void FakeApiServer::drop_watches() { impl_->control("POST", "/faults/drop-watches", ""); }
void FakeApiServer::fail_next(const FailRule& rule) {
  std::lock_guard fl(impl_->fault_mu);
  impl_->fail_rules.push_back(rule);
}
void FakeApiServer::set_latency(std::chrono::milliseconds latency, const std::string& method, const std::string& path) {
  std::lock_guard fl(impl_->fault_mu);
  impl_->latency = latency;
  impl_->latency_method = method;
  impl_->latency_path = path;
}
void FakeApiServer::expire_next_watches(int count) {
  std::lock_guard fl(impl_->fault_mu);
  impl_->expire_next += count;
}
void FakeApiServer::conflict_next_updates(int count, int every) {
  std::lock_guard fl(impl_->fault_mu);
  impl_->conflict_remaining = count;
  impl_->conflict_every = std::max(1, every);
  impl_->conflict_seen = 0;
}
void FakeApiServer::clear_faults() { impl_->control("POST", "/faults/clear", ""); }
void FakeApiServer::reset(bool restart_resource_version) {
  impl_->control("POST", "/reset", json{{"restart_resource_version", restart_resource_version}}.dump());
}
std::vector<RequestLogEntry> FakeApiServer::request_log() const {
  std::lock_guard lk(impl_->log_mu);
  return impl_->request_log;
}
void FakeApiServer::clear_request_log() {
  std::lock_guard lk(impl_->log_mu);
  impl_->request_log.clear();
}
std::size_t FakeApiServer::open_watches() const {
  std::lock_guard lk(impl_->mu);
  return impl_->watchers.size();
}
std::pair<int, std::string> FakeApiServer::control(const std::string& method, const std::string& path,
                                                   const std::string& body) {
  return impl_->control(method, path, body);
}

}  // namespace acme_sidecar::fake_apiserver
