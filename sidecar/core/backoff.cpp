#include "core/backoff.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>
#include <string>

#include "core/error.hpp"

namespace acme_sidecar::core {

RandomSource default_random_source() {
  auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
  auto mu = std::make_shared<std::mutex>();
  return [engine, mu] {
    std::lock_guard lock(*mu);
    return std::uniform_real_distribution<double>(0.0, 1.0)(*engine);
  };
}

BackoffPolicy BackoffPolicy::exponential(Duration base, double factor, Duration max, double jitter) {
  if (base <= Duration::zero() || factor < 1.0 || max < base) {
    throw Error(ErrorKind::Config, "invalid exponential backoff parameters");
  }
  BackoffPolicy p;
  p.jitter = jitter;
  double d = static_cast<double>(base.count());
  while (true) {
    auto step = Duration(static_cast<Duration::rep>(d));
    if (step >= max) {
      p.schedule.push_back(max);
      break;
    }
    p.schedule.push_back(step);
    d *= factor;
    if (factor == 1.0) break;
  }
  return p;
}

BackoffPolicy BackoffPolicy::parse(std::string_view text, double jitter) {
  BackoffPolicy p;
  p.jitter = jitter;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto part = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    p.schedule.push_back(parse_duration(part));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  for (std::size_t i = 1; i < p.schedule.size(); ++i) {
    if (p.schedule[i] < p.schedule[i - 1]) {
      throw Error(ErrorKind::Config, "backoff schedule must not decrease", {{"value", std::string(text)}});
    }
  }
  return p;
}

Duration backoff_delay(const BackoffPolicy& policy, int failures, const RandomSource& random) {
  if (failures <= 0 || policy.schedule.empty()) return Duration::zero();
  auto idx = std::min<std::size_t>(static_cast<std::size_t>(failures - 1), policy.schedule.size() - 1);
  double base = static_cast<double>(policy.schedule[idx].count());
  double j = std::clamp(policy.jitter, 0.0, 1.0);
  double factor = 1.0 - j + 2.0 * j * random();
  return Duration(static_cast<Duration::rep>(std::llround(base * factor)));
}

Duration parse_duration(std::string_view text) {
  auto fail = [&] {
    return Error(ErrorKind::Config, "invalid duration (want e.g. 90s, 10m, 1h30m, 250ms)",
                 {{"value", std::string(text)}});
  };
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  if (s.empty()) throw fail();
  Duration total = Duration::zero();
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (j == i) throw fail();
    double value = 0;
    try {
      value = std::stod(s.substr(i, j - i));
    } catch (...) {
      throw fail();
    }
    std::size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    auto unit = s.substr(j, k - j);
    double seconds;
    if (unit == "ms") seconds = value / 1000.0;
    else if (unit == "s") seconds = value;
    else if (unit == "m") seconds = value * 60;
    else if (unit == "h") seconds = value * 3600;
    else if (unit == "d") seconds = value * 86400;
    else throw fail();
    total += std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
    i = k;
  }
  return total;
}

std::string format_duration(Duration d) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(d).count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out += '-';
    ms = -ms;
  }
  const std::pair<long long, const char*> units[] = {{3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (auto [size, name] : units) {
    if (ms >= size) {
      out += std::to_string(ms / size) + name;
      ms %= size;
    }
  }
  return out;
}

}  // namespace acme_sidecar::core
