// Just enough Kubernetes protobuf to accept kubectl's `create secret|configmap|namespace` generators:
// the "k8s\0" envelope (runtime.Unknown) around v1.Secret, v1.ConfigMap or v1.Namespace. Field numbers
// follow k8s.io/api/core/v1/generated.proto; unknown fields are skipped.
#include <cstdint>

#include "internal.hpp"

namespace acme_sidecar::fake_apiserver::detail {
namespace {

struct Field {
  std::uint32_t number = 0;
  int wire = 0;
  std::uint64_t varint = 0;
  std::string_view bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  bool done() const { return pos_ >= d_.size(); }
  bool next(Field& f) {
    std::uint64_t tag;
    if (!varint(tag)) return false;
    f.number = static_cast<std::uint32_t>(tag >> 3);
    f.wire = static_cast<int>(tag & 7);
    switch (f.wire) {
      case 0: return varint(f.varint);
      case 1: return skip(8);
      case 5: return skip(4);
      case 2: {
        std::uint64_t len;
        if (!varint(len) || len > d_.size() - pos_) return false;
        f.bytes = d_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      default: return false;
    }
  }

 private:
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= d_.size()) return false;
      auto b = static_cast<unsigned char>(d_[pos_++]);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool skip(std::size_t n) {
    if (n > d_.size() - pos_) return false;
    pos_ += n;
    return true;
  }
  std::string_view d_;
  std::size_t pos_ = 0;
};

struct Bad {};

// map<string, string|bytes> entry: 1 key, 2 value.
std::pair<std::string, std::string> map_entry(std::string_view b) {
  Reader r(b);
  Field f;
  std::pair<std::string, std::string> kv;
  while (!r.done()) {
    if (!r.next(f)) throw Bad{};
    if (f.wire != 2) continue;
    if (f.number == 1) kv.first = std::string(f.bytes);
    if (f.number == 2) kv.second = std::string(f.bytes);
  }
  return kv;
}

json object_meta(std::string_view b) {
  json m = json::object();
  Reader r(b);
  Field f;
  while (!r.done()) {
    if (!r.next(f)) throw Bad{};
    if (f.wire != 2) continue;
    switch (f.number) {
      case 1: m["name"] = std::string(f.bytes); break;
      case 2: m["generateName"] = std::string(f.bytes); break;
      case 3: m["namespace"] = std::string(f.bytes); break;
      case 11: {
        auto [k, v] = map_entry(f.bytes);
        m["labels"][k] = v;
        break;
      }
      case 12: {
        auto [k, v] = map_entry(f.bytes);
        m["annotations"][k] = v;
        break;
      }
      case 14: m["finalizers"].push_back(std::string(f.bytes)); break;
      default: break;
    }
  }
  for (const char* k : {"name", "generateName", "namespace"}) {
    if (m.contains(k) && m[k] == "") m.erase(k);
  }
  return m;
}

json decode_object(const std::string& kind, std::string_view raw) {
  json o = {{"metadata", json::object()}};
  Reader r(raw);
  Field f;
  while (!r.done()) {
    if (!r.next(f)) throw Bad{};
    if (f.number == 1 && f.wire == 2) {
      o["metadata"] = object_meta(f.bytes);
      continue;
    }
    if (kind == "Secret") {
      if (f.number == 2 && f.wire == 2) {
        auto [k, v] = map_entry(f.bytes);
        o["data"][k] = base64_encode(v);
      } else if (f.number == 3 && f.wire == 2) {
        o["type"] = std::string(f.bytes);
      } else if (f.number == 4 && f.wire == 2) {
        auto [k, v] = map_entry(f.bytes);
        o["stringData"][k] = v;
      } else if (f.number == 5 && f.wire == 0) {
        o["immutable"] = f.varint != 0;
      }
    } else if (kind == "ConfigMap") {
      if (f.number == 2 && f.wire == 2) {
        auto [k, v] = map_entry(f.bytes);
        o["data"][k] = v;
      } else if (f.number == 3 && f.wire == 2) {
        auto [k, v] = map_entry(f.bytes);
        o["binaryData"][k] = base64_encode(v);
      } else if (f.number == 4 && f.wire == 0) {
        o["immutable"] = f.varint != 0;
      }
    } else if (kind == "Namespace") {
      // spec.finalizers and status are server-owned here; nothing else to read.
    }
  }
  return o;
}

}  // namespace

json decode_k8s_protobuf(std::string_view body) {
  static const std::string magic("k8s\0", 4);
  auto unsupported = [](const std::string& what) {
    return ApiError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    "application/json, application/yaml, application/vnd.kubernetes.protobuf (this fake API server "
                    "decodes protobuf only for v1 Secret, ConfigMap and Namespace; " + what +
                    "; use kubectl create/apply -f)");
  };
  if (body.substr(0, 4) != magic) throw bad_request("the object provided is unrecognized: missing protobuf magic");
  try {
    Reader r(body.substr(4));
    Field f;
    std::string api_version, kind;
    std::string_view raw;
    while (!r.done()) {
      if (!r.next(f)) throw Bad{};
      if (f.number == 1 && f.wire == 2) {  // TypeMeta
        Reader tr(f.bytes);
        Field tf;
        while (!tr.done()) {
          if (!tr.next(tf)) throw Bad{};
          if (tf.number == 1 && tf.wire == 2) api_version = std::string(tf.bytes);
          if (tf.number == 2 && tf.wire == 2) kind = std::string(tf.bytes);
        }
      } else if (f.number == 2 && f.wire == 2) {
        raw = f.bytes;
      }
    }
    if (api_version == "authorization.k8s.io/v1" && kind == "SelfSubjectAccessReview") {
      // SelfSubjectAccessReview{metadata=1, spec=2{resourceAttributes=1, nonResourceAttributes=2}}
      json spec = json::object();
      Reader rr(raw);
      Field rf;
      while (!rr.done()) {
        if (!rr.next(rf)) throw Bad{};
        if (rf.number != 2 || rf.wire != 2) continue;
        Reader sr(rf.bytes);
        Field sf;
        while (!sr.done()) {
          if (!sr.next(sf)) throw Bad{};
          if (sf.wire != 2 || (sf.number != 1 && sf.number != 2)) continue;
          static const char* res_fields[] = {"", "namespace", "verb", "group", "version", "resource", "subresource", "name"};
          static const char* nonres_fields[] = {"", "path", "verb"};
          json attrs = json::object();
          Reader ar(sf.bytes);
          Field af;
          while (!ar.done()) {
            if (!ar.next(af)) throw Bad{};
            if (af.wire != 2) continue;
            if (sf.number == 1 && af.number >= 1 && af.number <= 7) attrs[res_fields[af.number]] = std::string(af.bytes);
            if (sf.number == 2 && af.number >= 1 && af.number <= 2) attrs[nonres_fields[af.number]] = std::string(af.bytes);
          }
          spec[sf.number == 1 ? "resourceAttributes" : "nonResourceAttributes"] = attrs;
        }
      }
      return {{"apiVersion", api_version}, {"kind", kind}, {"metadata", json::object()}, {"spec", spec}};
    }
    if (api_version != "v1" || (kind != "Secret" && kind != "ConfigMap" && kind != "Namespace")) {
      throw unsupported("got " + (api_version.empty() ? std::string("?") : api_version) + " " +
                        (kind.empty() ? std::string("?") : kind));
    }
    json o = decode_object(kind, raw);
    o["apiVersion"] = api_version;
    o["kind"] = kind;
    return o;
  } catch (const Bad&) {
    throw bad_request("the object provided is unrecognized: malformed protobuf");
  }
}

}  // namespace acme_sidecar::fake_apiserver::detail
