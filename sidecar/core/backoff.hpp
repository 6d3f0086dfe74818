#pragma once
// Exponential backoff with jitter. Randomness is injected so decisions stay reproducible in tests.
#include <functional>
#include <string_view>
#include <vector>

#include "core/clock.hpp"

namespace acme_sidecar::core {

// Returns a uniformly distributed number in [0, 1).
using RandomSource = std::function<double()>;
RandomSource default_random_source();

struct BackoffPolicy {
  // Explicit schedule: the n-th failure waits schedule[min(n-1, size-1)].
  std::vector<Duration> schedule;
  // Jitter as a fraction of the delay: the result lies in [d*(1-jitter), d*(1+jitter)).
  double jitter = 0.1;

  // Geometric schedule base, base*factor, ... capped at max (steps until the cap is reached).
  static BackoffPolicy exponential(Duration base, double factor, Duration max, double jitter = 0.1);
  // Parses "1m,10m,100m,24h" (units ms, s, m, h, d). Throws core::Error(Config) on bad input.
  static BackoffPolicy parse(std::string_view text, double jitter = 0.1);
};

// Delay after the `failures`-th consecutive failure (failures >= 1; 0 gives zero).
Duration backoff_delay(const BackoffPolicy& policy, int failures, const RandomSource& random);

// Parses one duration such as "90s", "10m", "1h30m", "250ms", "2d". Throws core::Error(Config).
Duration parse_duration(std::string_view text);
// Renders a duration in the same syntax (largest units first), e.g. "1h40m".
std::string format_duration(Duration d);

}  // namespace acme_sidecar::core
