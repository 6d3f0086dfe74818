#pragma once
// Kubernetes JSON → core views, tolerant of malformed objects: a missing field, a wrong JSON type, a bad
// base64 value is recorded as a problem and the field left empty — the decoders never throw for bad data
// (only std::bad_alloc). `usable` is false when the object cannot be keyed (no name / namespace).
// Only the JSON forward declaration here: nlohmann/json.hpp stays in decode.cpp.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "controller/interfaces.hpp"
#include "core/ingress.hpp"

namespace acme_sidecar::controller {

template <typename T>
struct Decoded {
  T value{};
  std::vector<std::string> problems;  // "spec.tls[0].hosts[2]: not a string" ...
  bool usable = false;
};

Decoded<core::IngressView> decode_ingress(const nlohmann::json& object);
Decoded<core::IngressClassView> decode_ingress_class(const nlohmann::json& object);
// data values are base64-decoded; undecodable values are dropped with a problem.
Decoded<SecretData> decode_secret(const nlohmann::json& object);

// Same, from JSON text (invalid JSON → usable=false with a problem). Used by the fuzz target.
Decoded<core::IngressView> decode_ingress_text(std::string_view text);
Decoded<SecretData> decode_secret_text(std::string_view text);

// Body for create/update: apiVersion v1, kind Secret, metadata (resourceVersion only when set), type,
// base64 data.
nlohmann::json encode_secret(const SecretData& secret);
// The same object as JSON text, written directly (no tree: a Secret's data is a few kB of base64);
// without metadata.resourceVersion when `with_resource_version` is false (a create).
std::string encode_secret_text(const SecretData& secret, bool with_resource_version = true);

}  // namespace acme_sidecar::controller
