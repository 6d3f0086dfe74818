#include "acme/headers.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace acme_sidecar::acme {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// Parses one "<url>; rel=x; ..." item starting at `pos`; advances pos past the trailing comma.
std::optional<Link> parse_one(std::string_view v, std::size_t& pos, std::string_view base) {
  while (pos < v.size() && (v[pos] == ' ' || v[pos] == '\t' || v[pos] == ',')) ++pos;
  if (pos >= v.size()) return std::nullopt;
  if (v[pos] != '<') {
    // Garbage: skip to the next comma.
    auto c = v.find(',', pos);
    pos = c == std::string_view::npos ? v.size() : c + 1;
    return Link{};
  }
  auto close = v.find('>', pos);
  if (close == std::string_view::npos) {
    pos = v.size();
    return std::nullopt;
  }
  Link link;
  auto ref = trim(v.substr(pos + 1, close - pos - 1));
  if (!ref.empty()) link.url = resolve_url(base, ref);  // an empty URL is skipped by the caller
  pos = close + 1;
  // Parameters until the next comma outside quotes.
  while (pos < v.size() && v[pos] != ',') {
    if (v[pos] != ';') {
      ++pos;
      continue;
    }
    ++pos;
    std::size_t eq = pos;
    while (eq < v.size() && v[eq] != '=' && v[eq] != ';' && v[eq] != ',') ++eq;
    std::string_view name = trim(v.substr(pos, eq - pos));
    std::string value;
    pos = eq;
    if (pos < v.size() && v[pos] == '=') {
      ++pos;
      while (pos < v.size() && v[pos] == ' ') ++pos;
      if (pos < v.size() && v[pos] == '"') {
        ++pos;
        while (pos < v.size() && v[pos] != '"') {
          if (v[pos] == '\\' && pos + 1 < v.size()) ++pos;
          value += v[pos++];
        }
        if (pos < v.size()) ++pos;
      } else {
        std::size_t end = pos;
        while (end < v.size() && v[end] != ';' && v[end] != ',') ++end;
        value = std::string(trim(v.substr(pos, end - pos)));
        pos = end;
      }
    }
    if (iequals(name, "rel")) link.rel = value;
  }
  if (pos < v.size()) ++pos;
  return link;
}

int month_index(std::string_view m) {
  static constexpr std::string_view names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (int i = 0; i < 12; ++i)
    if (m == names[i]) return i + 1;
  return 0;
}

}  // namespace

std::vector<Link> parse_links(const std::vector<std::string>& values, std::string_view base_url) {
  std::vector<Link> out;
  for (const auto& v : values) {
    std::size_t pos = 0;
    while (pos < v.size()) {
      auto l = parse_one(v, pos, base_url);
      if (!l) break;
      if (!l->url.empty()) out.push_back(std::move(*l));
    }
  }
  return out;
}

std::vector<std::string> links_with_rel(const std::vector<Link>& links, std::string_view rel) {
  std::vector<std::string> out;
  for (const auto& l : links) {
    // rel may list several space-separated relation types.
    std::string_view r = l.rel;
    std::size_t p = 0;
    while (p <= r.size()) {
      auto sp = r.find(' ', p);
      auto tok = r.substr(p, sp == std::string_view::npos ? std::string_view::npos : sp - p);
      if (iequals(tok, rel)) {
        out.push_back(l.url);
        break;
      }
      if (sp == std::string_view::npos) break;
      p = sp + 1;
    }
  }
  return out;
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, core::TimePoint now) {
  using namespace std::chrono;
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    long long n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec == std::errc::result_out_of_range) return seconds(365LL * 24 * 3600);  // absurd: cap at a year
    if (ec != std::errc() || p != value.data() + value.size()) return std::nullopt;
    return seconds(std::min<long long>(n, 365LL * 24 * 3600));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (value.size() != 29 || value[3] != ',' || value.substr(26) != "GMT") return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t n) -> int {
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (value[i] < '0' || value[i] > '9') return -1;
      v = v * 10 + (value[i] - '0');
    }
    return v;
  };
  int d = num(5, 2), y = num(12, 4), h = num(17, 2), mi = num(20, 2), s = num(23, 2);
  int mo = month_index(value.substr(8, 3));
  if (d < 0 || y < 1970 || y > 2200 || h < 0 || mi < 0 || s < 0 || mo == 0 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  auto when = sys_days(ymd) + hours(h) + minutes(mi) + seconds(s);
  auto delta = duration_cast<seconds>(when - time_point_cast<seconds>(now));
  if (delta < seconds(0)) return seconds(0);
  return std::min(delta, seconds(365LL * 24 * 3600));
}

std::string resolve_url(std::string_view base, std::string_view ref) {
  if (ref.find("://") != std::string_view::npos) return std::string(ref);
  auto scheme = base.find("://");
  if (scheme == std::string_view::npos) return std::string(ref);
  auto path_start = base.find('/', scheme + 3);
  std::string_view origin = base.substr(0, path_start);
  if (!ref.empty() && ref.front() == '/') return std::string(origin) + std::string(ref);
  std::string_view path = path_start == std::string_view::npos ? std::string_view("/") : base.substr(path_start);
  auto q = path.find_first_of("?#");
  if (q != std::string_view::npos) path = path.substr(0, q);
  auto slash = path.rfind('/');
  return std::string(origin) + std::string(path.substr(0, slash + 1)) + std::string(ref);
}

// Thin wrappers over http::Response's lookups that also trim the values (servers pad them).
std::optional<std::string> header(const http::Response& r, std::string_view name) {
  auto v = r.header(name);
  if (!v) return std::nullopt;
  return std::string(trim(*v));
}

std::vector<std::string> header_values(const http::Response& r, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& v : r.headers_named(name)) out.emplace_back(trim(v));
  return out;
}

}  // namespace acme_sidecar::acme
