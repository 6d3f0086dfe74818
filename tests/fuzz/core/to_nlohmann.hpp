#pragma once
// The reference reading of a core::JsonDocument value: the same value as an nlohmann tree (numbers as
// nlohmann parses their text), for comparing the two parsers (unit test and differential fuzz target).
#include <nlohmann/json.hpp>

#include "core/json_document.hpp"

namespace acme_sidecar::testing {

inline nlohmann::json to_nlohmann(core::JsonValue v) {
  using Type = core::JsonValue::Type;
  switch (v.type()) {
    case Type::Null: return nullptr;
    case Type::Boolean: return v.boolean();
    case Type::String: return v.str();
    case Type::Number: return nlohmann::json::parse(v.raw());
    case Type::Array: {
      auto out = nlohmann::json::array();
      for (auto e : v) out.push_back(to_nlohmann(e));
      return out;
    }
    case Type::Object: {
      auto out = nlohmann::json::object();
      for (auto m : v) out[m.key()] = to_nlohmann(m);  // a repeated key: the last wins, as in nlohmann
      return out;
    }
  }
  return {};
}

}  // namespace acme_sidecar::testing
