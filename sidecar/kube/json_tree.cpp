#include "kube/json_tree.hpp"

namespace acme_sidecar::kube {

using nlohmann::json;
using Type = core::JsonValue::Type;

json to_tree(core::JsonValue v) {
  switch (v.type()) {
    case Type::Null: return nullptr;
    case Type::Boolean: return v.boolean();
    case Type::String: return v.str();
    case Type::Number:
      if (auto i = v.integer()) return *i;
      return json::parse(v.raw(), nullptr, false);  // fractions, exponents, beyond int64: rare
    case Type::Array: {
      json out = json::array();
      out.get_ref<json::array_t&>().reserve(v.size());
      for (auto e : v) out.push_back(to_tree(e));
      return out;
    }
    case Type::Object: {
      json out = json::object();
      for (auto m : v) out[m.key()] = to_tree(m);
      return out;
    }
  }
  return nullptr;
}

json metadata_tree(core::JsonValue object) {
  json out = json::object();
  for (auto m : object) {
    if (m.key_equals("apiVersion") || m.key_equals("kind")) {
      out[m.key()] = to_tree(m);
    } else if (m.key_equals("metadata")) {
      json meta = json::object();
      if (m.is_object()) {
        for (auto f : m)
          if (!f.key_equals("managedFields")) meta[f.key()] = to_tree(f);
      } else {
        meta = to_tree(m);
      }
      out["metadata"] = std::move(meta);
    }
  }
  return out;
}

}  // namespace acme_sidecar::kube
