#include "kube/time.hpp"

#include <chrono>
#include <cstdio>

namespace acme_sidecar::kube {
namespace {

using namespace std::chrono;

std::string format(core::TimePoint t, bool micro) {
  auto us = time_point_cast<microseconds>(t);
  auto day = floor<days>(us);
  year_month_day ymd(day);
  hh_mm_ss hms(us - day);
  char buf[64];
  if (micro) {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ld.%06ldZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                  static_cast<long>(hms.seconds().count()), static_cast<long>(hms.subseconds().count()));
  } else {
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02ld:%02ld:%02ldZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<long>(hms.hours().count()), static_cast<long>(hms.minutes().count()),
                  static_cast<long>(hms.seconds().count()));
  }
  return buf;
}

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

}  // namespace

std::string format_time(core::TimePoint t) { return format(t, false); }
std::string format_micro_time(core::TimePoint t) { return format(t, true); }

std::optional<core::TimePoint> parse_time(std::string_view s) {
  int Y, M, D, h, m, sec;
  if (!digits(s, 0, 4, Y) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' ||
      !digits(s, 8, 2, D) || (s[10] != 'T' && s[10] != 't') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, m) || s[16] != ':' || !digits(s, 17, 2, sec)) {
    return std::nullopt;
  }
  size_t pos = 19;
  long long frac_us = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (n < 6) frac_us = frac_us * 10 + (s[pos] - '0');
      ++n;
      ++pos;
    }
    if (n == 0) return std::nullopt;
    for (size_t i = n; i < 6; ++i) frac_us *= 10;
  }
  if (pos >= s.size()) return std::nullopt;
  long offset_min = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(s, pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset_min = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  year_month_day ymd{year(Y), month(static_cast<unsigned>(M)), day(static_cast<unsigned>(D))};
  if (!ymd.ok() || h > 23 || m > 59 || sec > 60) return std::nullopt;
  auto tp = sys_days(ymd) + hours(h) + minutes(m) + seconds(sec) + microseconds(frac_us) - minutes(offset_min);
  return time_point_cast<core::Duration>(tp);
}

}  // namespace acme_sidecar::kube
