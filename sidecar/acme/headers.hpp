#pragma once
// Small HTTP header helpers the ACME client needs: Link (RFC 8288), Retry-After (RFC 9110 §10.2.3),
// relative URL resolution. All take untrusted text and never throw on garbage (they return nothing).
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "http/client.hpp"

namespace acme_sidecar::acme {

struct Link {
  std::string url;  // resolved against the request URL
  std::string rel;
};

// Parses every Link header value (each may hold several comma-separated links).
std::vector<Link> parse_links(const std::vector<std::string>& header_values, std::string_view base_url);
std::vector<std::string> links_with_rel(const std::vector<Link>& links, std::string_view rel);

// Retry-After as delta-seconds or an HTTP-date (relative to `now`); nullopt when absent or garbage.
// Negative results are clamped to zero.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, core::TimePoint now);

// Resolves `ref` against `base` (absolute URL, absolute path, or relative path).
std::string resolve_url(std::string_view base, std::string_view ref);

// Case-insensitive header lookups on a response, values trimmed.
std::optional<std::string> header(const http::Response& r, std::string_view name);
std::vector<std::string> header_values(const http::Response& r, std::string_view name);

}  // namespace acme_sidecar::acme
