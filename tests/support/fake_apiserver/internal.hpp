#pragma once
// Internals of the fake API server shared by its translation units (not for tests).
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace acme_sidecar::fake_apiserver::detail {

using json = nlohmann::json;

struct ResourceType {
  std::string group;  // "" for core
  std::string version;
  std::string resource;  // plural, lower case
  std::string kind;
  bool namespaced = true;
  std::vector<std::string> short_names;
  bool status_subresource = false;
  bool generation = false;  // metadata.generation bumps on spec changes
  bool unconditional_update = true;
  bool create_on_update = false;
  bool delete_returns_status = true;  // Success Status rather than the object

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  std::string key() const { return group + "/" + resource; }
  // "secrets" / "ingresses.networking.k8s.io": how the server names it in messages.
  std::string group_resource() const { return group.empty() ? resource : resource + "." + group; }
  std::string group_kind() const { return group.empty() ? kind : kind + "." + group; }
};

const std::vector<ResourceType>& resource_types();
const ResourceType* find_type(std::string_view group, std::string_view version, std::string_view resource);
const ResourceType* find_type_by_name(std::string_view name);  // "secrets" or "events.events.k8s.io"

// An API error rendered as a Status object.
struct ApiError : std::runtime_error {
  int code;
  std::string reason;
  json details;  // may be null
  std::string retry_after;
  ApiError(int c, std::string r, const std::string& message, json d = nullptr)
      : std::runtime_error(message), code(c), reason(std::move(r)), details(std::move(d)) {}
};
json status_json(int code, const std::string& reason, const std::string& message, const json& details);

ApiError bad_request(const std::string& message);
ApiError not_found(const ResourceType& rt, const std::string& name);
ApiError already_exists(const ResourceType& rt, const std::string& name);
ApiError conflict(const ResourceType& rt, const std::string& name, const std::string& why);
struct FieldCause {
  std::string type;  // "FieldValueInvalid", "FieldValueRequired", ...
  std::string field;
  std::string message;  // full "Invalid value: ...: detail"
};
ApiError invalid(const ResourceType& rt, const std::string& name, const std::vector<FieldCause>& causes);

// Label selectors: =, ==, !=, in, notin, exists, !key.
struct LabelRequirement {
  enum class Op { Exists, NotExists, Equals, NotEquals, In, NotIn };
  std::string key;
  Op op = Op::Exists;
  std::vector<std::string> values;
};
struct LabelSelector {
  std::vector<LabelRequirement> requirements;
  bool matches(const json& object) const;
};
LabelSelector parse_label_selector(const std::string& text);  // throws ApiError 400

struct FieldRequirement {
  std::string field;
  bool negate = false;
  std::string value;
};
struct FieldSelector {
  std::vector<FieldRequirement> requirements;
  bool matches(const json& object) const;
};
FieldSelector parse_field_selector(const std::string& text, const ResourceType& rt);  // throws ApiError 400

// Validation helpers.
bool is_dns1123_subdomain(std::string_view s);
bool is_dns1123_label(std::string_view s);
bool is_valid_base64(std::string_view s);
bool is_label_key(const std::string& k);
bool is_label_value(const std::string& v);
std::string base64_encode(std::string_view s);
// MicroTime: exactly "YYYY-MM-DDTHH:MM:SS.ffffff" + "Z" or "+hh:mm"; returns the UTC form or nullopt.
std::optional<std::string> normalize_micro_time(std::string_view s);
std::string rfc3339_now(bool millis = false);

// Decodes kubectl's protobuf bodies for v1 Secret/ConfigMap/Namespace into JSON (ApiError 400/415 otherwise).
json decode_k8s_protobuf(std::string_view body);

// Server-side printing: a meta.k8s.io/v1 Table of `objects` (kubectl get asks for it).
json make_table(const ResourceType& rt, const std::vector<const json*>& objects, const json& list_meta);
std::string human_duration(long long seconds);

// Patches.
json apply_merge_patch(const json& target, const json& patch);
json apply_strategic_merge_patch(const json& target, const json& patch);

// TLS material generated at start.
struct TlsMaterial {
  std::string ca_cert_pem;
  std::string ca_key_pem;
  std::string cert_pem;
  std::string key_pem;
};
TlsMaterial generate_tls();
std::string random_hex(std::size_t bytes);
std::string random_uid();

}  // namespace acme_sidecar::fake_apiserver::detail
