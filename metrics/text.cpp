#include "metrics/text.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>

namespace acme_sidecar::metrics {

namespace {

void append_double(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_escaped(std::string& out, std::string_view value, bool quotes) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        if (quotes) {
          out += "\\\"";
          break;
        }
        [[fallthrough]];
      default:
        out += c;
    }
  }
}

// name{labels[,extra="..."]} value [timestamp]
void append_sample(std::string& out, const std::string& name, const char* suffix, const prometheus::ClientMetric& m,
                   const char* extra_name, double extra_value, bool has_extra, double value, bool integral,
                   std::uint64_t count) {
  out += name;
  out += suffix;
  if (!m.label.empty() || has_extra) {
    out += '{';
    bool first = true;
    for (const auto& l : m.label) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      append_escaped(out, l.value, true);
      out += '"';
    }
    if (has_extra) {
      if (!first) out += ',';
      out += extra_name;
      out += "=\"";
      append_double(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  if (integral) append_uint(out, count);
  else append_double(out, value);
  if (m.timestamp_ms != 0) {
    out += ' ';
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, m.timestamp_ms);
    out.append(buf, r.ptr);
  }
  out += '\n';
}

void plain(std::string& out, const std::string& name, const prometheus::ClientMetric& m, double value) {
  append_sample(out, name, "", m, nullptr, 0, false, value, false, 0);
}

const char* type_name(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Summary:
      return "summary";
    case prometheus::MetricType::Histogram:
      return "histogram";
    default:
      return "untyped";
  }
}

}  // namespace

void append_family_header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, false);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void append_series(std::string& out, std::string_view name, std::initializer_list<Label> labels, double value) {
  out += name;
  if (labels.size() != 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      append_escaped(out, v, true);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_double(out, value);
  out += '\n';
}

void append_text(std::string& out, const std::vector<prometheus::MetricFamily>& families) {
  for (const auto& f : families) {
    if (f.metric.empty()) continue;  // as TextSerializer: a family without series is not written
    if (!f.help.empty()) {
      out += "# HELP ";
      out += f.name;
      out += ' ';
      append_escaped(out, f.help, false);
      out += '\n';
    }
    out += "# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    for (const auto& m : f.metric) {
      switch (f.type) {
        case prometheus::MetricType::Counter:
          plain(out, f.name, m, m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          plain(out, f.name, m, m.gauge.value);
          break;
        case prometheus::MetricType::Untyped:
          plain(out, f.name, m, m.untyped.value);
          break;
        case prometheus::MetricType::Summary:
          for (const auto& q : m.summary.quantile)
            append_sample(out, f.name, "", m, "quantile", q.quantile, true, q.value, false, 0);
          append_sample(out, f.name, "_sum", m, nullptr, 0, false, m.summary.sample_sum, false, 0);
          append_sample(out, f.name, "_count", m, nullptr, 0, false, 0, true, m.summary.sample_count);
          break;
        case prometheus::MetricType::Histogram: {
          std::uint64_t last = 0;
          for (const auto& b : m.histogram.bucket) {
            append_sample(out, f.name, "_bucket", m, "le", b.upper_bound, true, 0, true, b.cumulative_count);
            last = b.cumulative_count;
          }
          // The +Inf bucket: prometheus-cpp reports it as the last bucket already; add it when missing.
          if (m.histogram.bucket.empty() || !std::isinf(m.histogram.bucket.back().upper_bound))
            append_sample(out, f.name, "_bucket", m, "le", INFINITY, true, 0, true,
                          std::max(last, m.histogram.sample_count));
          append_sample(out, f.name, "_sum", m, nullptr, 0, false, m.histogram.sample_sum, false, 0);
          append_sample(out, f.name, "_count", m, nullptr, 0, false, 0, true, m.histogram.sample_count);
          break;
        }
      }
    }
  }
}

}  // namespace acme_sidecar::metrics
