#pragma once
// Decodes a failed API response (ideally a metav1.Status) into core::Error with the right kind.
#include <string_view>

#include "core/error.hpp"
#include "http/client.hpp"

namespace acme_sidecar::kube {

// `response.status` must be >= 400 (anything else is reported as Internal). Never throws.
core::Error status_error(const http::Response& response);
// The same for a Status object that arrived without an HTTP status (watch ERROR events).
core::Error status_error_from_body(std::string_view status_json, long fallback_code);

}  // namespace acme_sidecar::kube
