#include "controller/decode.hpp"

#include <nlohmann/json.hpp>

#include "core/json_document.hpp"
#include "core/names.hpp"
#include "crypto/encoding.hpp"

namespace acme_sidecar::controller {

using nlohmann::json;

namespace {

// Collects problems with a JSON path prefix.
struct Reader {
  std::vector<std::string>& problems;

  // Absent and null are the same thing in Kubernetes objects.
  static const json* member(const json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string string(const json& obj, const char* key, const std::string& path, bool required = false) {
    const json* v = member(obj, key);
    if (!v) {
      if (required) problems.push_back(path + "." + key + ": missing");
      return {};
    }
    if (!v->is_string()) {
      problems.push_back(path + "." + key + ": expected a string, got " + v->type_name());
      return {};
    }
    return v->get<std::string>();
  }
  const json* object(const json& obj, const char* key, const std::string& path) {
    const json* v = member(obj, key);
    if (v && !v->is_object()) {
      problems.push_back(path + "." + key + ": expected an object, got " + v->type_name());
      return nullptr;
    }
    return v;
  }
  const json* array(const json& obj, const char* key, const std::string& path) {
    const json* v = member(obj, key);
    if (v && !v->is_array()) {
      problems.push_back(path + "." + key + ": expected an array, got " + v->type_name());
      return nullptr;
    }
    return v;
  }
  std::map<std::string, std::string> string_map(const json& obj, const char* key, const std::string& path) {
    std::map<std::string, std::string> out;
    const json* m = object(obj, key, path);
    if (!m) return out;
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (it.value().is_string()) {
        out[it.key()] = it.value().get<std::string>();
      } else {
        problems.push_back(path + "." + key + "[" + it.key() + "]: expected a string, got " + it.value().type_name());
      }
    }
    return out;
  }
  std::vector<std::string> strings(const json& arr, const std::string& path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    for (const auto& v : arr) {
      if (v.is_string()) {
        out.push_back(v.get<std::string>());
      } else {
        problems.push_back(path + "[" + std::to_string(i) + "]: expected a string, got " + v.type_name());
      }
      ++i;
    }
    return out;
  }
};

struct Meta {
  std::string namespace_name, name, uid, resource_version;
  std::map<std::string, std::string> labels, annotations;
};

Meta read_meta(Reader& r, const json& obj, bool namespaced) {
  Meta m;
  const json* meta = r.object(obj, "metadata", "");
  if (!meta) {
    r.problems.push_back("metadata: missing");
    return m;
  }
  m.name = r.string(*meta, "name", "metadata", true);
  if (namespaced) m.namespace_name = r.string(*meta, "namespace", "metadata", true);
  m.uid = r.string(*meta, "uid", "metadata");
  m.resource_version = r.string(*meta, "resourceVersion", "metadata");
  m.labels = r.string_map(*meta, "labels", "metadata");
  m.annotations = r.string_map(*meta, "annotations", "metadata");
  return m;
}

template <typename T, typename F>
Decoded<T> from_text(std::string_view text, F decode) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    Decoded<T> out;
    out.problems.push_back("not valid JSON");
    return out;
  }
  return decode(j);
}

}  // namespace

Decoded<core::IngressView> decode_ingress(const json& obj) {
  Decoded<core::IngressView> out;
  if (!obj.is_object()) {
    out.problems.push_back("expected an object, got " + std::string(obj.type_name()));
    return out;
  }
  Reader r{out.problems};
  auto meta = read_meta(r, obj, true);
  auto& v = out.value;
  v.namespace_name = meta.namespace_name;
  v.name = meta.name;
  v.uid = meta.uid;
  v.resource_version = meta.resource_version;
  v.annotations = std::move(meta.annotations);
  if (const json* spec = r.object(obj, "spec", "")) {
    if (const json* cls = Reader::member(*spec, "ingressClassName")) {
      if (cls->is_string()) {
        v.ingress_class_name = cls->get<std::string>();
      } else {
        out.problems.push_back(std::string("spec.ingressClassName: expected a string, got ") + cls->type_name());
      }
    }
    if (const json* tls = r.array(*spec, "tls", "spec")) {
      std::size_t i = 0;
      for (const auto& entry : *tls) {
        auto path = "spec.tls[" + std::to_string(i++) + "]";
        if (!entry.is_object()) {
          out.problems.push_back(path + ": expected an object, got " + entry.type_name());
          continue;
        }
        core::IngressTls t;
        t.secret_name = r.string(entry, "secretName", path);
        if (const json* hosts = r.array(entry, "hosts", path)) t.hosts = r.strings(*hosts, path + ".hosts");
        v.tls.push_back(std::move(t));
      }
    }
    if (const json* rules = r.array(*spec, "rules", "spec")) {
      std::size_t i = 0;
      for (const auto& rule : *rules) {
        auto path = "spec.rules[" + std::to_string(i++) + "]";
        if (!rule.is_object()) {
          out.problems.push_back(path + ": expected an object, got " + rule.type_name());
          continue;
        }
        (void)r.string(rule, "host", path);  // checked (a malformed host is reported), not kept: spec.tls decides
      }
    }
  }
  out.usable = !v.name.empty() && !v.namespace_name.empty();
  return out;
}

Decoded<core::IngressClassView> decode_ingress_class(const json& obj) {
  Decoded<core::IngressClassView> out;
  if (!obj.is_object()) {
    out.problems.push_back("expected an object, got " + std::string(obj.type_name()));
    return out;
  }
  Reader r{out.problems};
  auto meta = read_meta(r, obj, false);
  out.value.name = meta.name;
  if (auto it = meta.annotations.find(std::string(core::names::kDefaultClass)); it != meta.annotations.end()) {
    out.value.is_default = core::parse_bool_annotation(it->second) == true;
  }
  if (const json* spec = r.object(obj, "spec", "")) out.value.controller = r.string(*spec, "controller", "spec");
  out.usable = !out.value.name.empty();
  return out;
}

Decoded<SecretData> decode_secret(const json& obj) {
  Decoded<SecretData> out;
  if (!obj.is_object()) {
    out.problems.push_back("expected an object, got " + std::string(obj.type_name()));
    return out;
  }
  Reader r{out.problems};
  auto meta = read_meta(r, obj, true);
  auto& s = out.value;
  s.namespace_name = meta.namespace_name;
  s.name = meta.name;
  s.resource_version = meta.resource_version;
  s.labels = std::move(meta.labels);
  s.annotations = std::move(meta.annotations);
  s.type = r.string(obj, "type", "");
  for (const auto& [k, value] : r.string_map(obj, "data", "")) {
    try {
      auto bytes = crypto::base64_decode(value);
      s.data[k] = crypto::to_string(bytes);
    } catch (const std::exception&) {
      out.problems.push_back("data[" + k + "]: not valid base64");
    }
  }
  if (const json* meta_obj = r.object(obj, "metadata", "")) {
    if (const json* refs = r.array(*meta_obj, "ownerReferences", "metadata")) {
      std::size_t i = 0;
      for (const auto& ref : *refs) {
        auto path = "metadata.ownerReferences[" + std::to_string(i++) + "]";
        if (!ref.is_object()) {
          out.problems.push_back(path + ": expected an object");
          continue;
        }
        OwnerReference o;
        o.api_version = r.string(ref, "apiVersion", path);
        o.kind = r.string(ref, "kind", path);
        o.name = r.string(ref, "name", path);
        o.uid = r.string(ref, "uid", path);
        s.owner_references.push_back(std::move(o));
      }
    }
  }
  out.usable = !s.name.empty() && !s.namespace_name.empty();
  return out;
}

Decoded<core::IngressView> decode_ingress_text(std::string_view text) {
  return from_text<core::IngressView>(text, [](const json& j) { return decode_ingress(j); });
}

Decoded<SecretData> decode_secret_text(std::string_view text) {
  return from_text<SecretData>(text, [](const json& j) { return decode_secret(j); });
}

json encode_secret(const SecretData& s) {
  json meta = {{"name", s.name}, {"namespace", s.namespace_name}};
  if (!s.resource_version.empty()) meta["resourceVersion"] = s.resource_version;
  if (!s.labels.empty()) meta["labels"] = s.labels;
  if (!s.annotations.empty()) meta["annotations"] = s.annotations;
  if (!s.owner_references.empty()) {
    json refs = json::array();
    for (const auto& o : s.owner_references) {
      refs.push_back({{"apiVersion", o.api_version}, {"kind", o.kind}, {"name", o.name}, {"uid", o.uid}});
    }
    meta["ownerReferences"] = refs;
  }
  json data = json::object();
  for (const auto& [k, v] : s.data) data[k] = crypto::base64_encode(v);
  return {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", meta}, {"type", s.type}, {"data", data}};
}

namespace {
void append_member(std::string& out, std::string_view key, std::string_view value) {
  core::append_json_string(out, key);
  out += ':';
  core::append_json_string(out, value);
}
void append_string_map(std::string& out, std::string_view key, const std::map<std::string, std::string>& m) {
  out += ',';
  core::append_json_string(out, key);
  out += ":{";
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ',';
    first = false;
    append_member(out, k, v);
  }
  out += '}';
}
}  // namespace

std::string encode_secret_text(const SecretData& s, bool with_resource_version) {
  std::size_t size = 256;
  for (const auto& [k, v] : s.data) size += k.size() + v.size() * 4 / 3 + 8;
  std::string out;
  out.reserve(size);
  out += R"({"apiVersion":"v1","data":{)";
  bool first = true;
  for (const auto& [k, v] : s.data) {
    if (!first) out += ',';
    first = false;
    append_member(out, k, crypto::base64_encode(v));
  }
  out += R"(},"kind":"Secret","metadata":{)";
  append_member(out, "name", s.name);
  out += ',';
  append_member(out, "namespace", s.namespace_name);
  if (with_resource_version && !s.resource_version.empty()) {
    out += ',';
    append_member(out, "resourceVersion", s.resource_version);
  }
  if (!s.labels.empty()) append_string_map(out, "labels", s.labels);
  if (!s.annotations.empty()) append_string_map(out, "annotations", s.annotations);
  if (!s.owner_references.empty()) {
    out += R"(,"ownerReferences":[)";
    for (std::size_t i = 0; i < s.owner_references.size(); ++i) {
      const auto& o = s.owner_references[i];
      out += i == 0 ? "{" : ",{";
      append_member(out, "apiVersion", o.api_version);
      out += ',';
      append_member(out, "kind", o.kind);
      out += ',';
      append_member(out, "name", o.name);
      out += ',';
      append_member(out, "uid", o.uid);
      out += '}';
    }
    out += ']';
  }
  out += "},";
  append_member(out, "type", s.type);
  out += '}';
  return out;
}

}  // namespace acme_sidecar::controller
