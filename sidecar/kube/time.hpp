#pragma once
// Kubernetes timestamp formats: metav1.Time (RFC 3339, seconds) and metav1.MicroTime (6 fractional digits).
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.hpp"

namespace acme_sidecar::kube {

std::string format_time(core::TimePoint t);        // 2026-11-23T20:07:23Z
std::string format_micro_time(core::TimePoint t);  // 2026-11-23T20:07:23.123456Z
// Accepts both forms (any number of fractional digits, Z or ±hh:mm). nullopt on malformed input.
std::optional<core::TimePoint> parse_time(std::string_view text);

}  // namespace acme_sidecar::kube
