#pragma once
// Prometheus text format 0.0.4 written straight into one string. prometheus-cpp's TextSerializer
// formats every value through an std::ostream with locale and precision state: with 10,000 managed
// certificates (~50,000 series) a scrape spent most of its time there (≈ 0.3 s for 5 MiB).
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace acme_sidecar::metrics {

// Same exposition as prometheus::TextSerializer (names, HELP/TYPE lines, label escaping, histogram
// buckets with le, +Inf/-Inf/NaN); numbers in their shortest round-trip form.
void append_text(std::string& out, const std::vector<prometheus::MetricFamily>& families);

}  // namespace acme_sidecar::metrics
