#pragma once
// nlohmann trees built from a core::JsonDocument: the text is scanned by the fast strict reader and only
// the parts the caller keeps become heap objects (a write's echo keeps its metadata, not a Secret's
// certificate and key). Same values as nlohmann::json::parse would give.
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/json_document.hpp"

namespace acme_sidecar::kube {

nlohmann::json to_tree(core::JsonValue value);

// The object's apiVersion, kind and metadata only (managedFields left out: nothing here reads them).
nlohmann::json metadata_tree(core::JsonValue object);

}  // namespace acme_sidecar::kube
