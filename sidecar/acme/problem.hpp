#pragma once
// Turning CA error responses into core::Error: one place decides the ErrorKind for each ACME problem
// type, so callers branch on kind()/acme_type instead of parsing strings.
#include <chrono>
#include <optional>
#include <string_view>

#include "acme/resources.hpp"
#include "core/error.hpp"

namespace acme_sidecar::acme {

// Maps a problem document to an error: rateLimited -> RateLimited (with retry_after), every other ACME
// type -> AcmeProblem; acme_type is the short type ("badNonce", "unauthorized", "connection", "dns",
// "incorrectResponse", "malformed", "serverInternal", "orderNotReady", ...). The message carries the
// detail and every subproblem.
core::Error problem_error(const Problem& problem, long http_status, std::optional<std::chrono::seconds> retry_after,
                          std::string_view context);

// Error for an HTTP error response: decodes application/problem+json when present, otherwise builds a
// generic error from the status (429 -> RateLimited, 5xx -> ServerError, ...).
core::Error response_error(long http_status, std::string_view content_type, std::string_view body,
                           std::optional<std::chrono::seconds> retry_after, std::string_view context);

}  // namespace acme_sidecar::acme
