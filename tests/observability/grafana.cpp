#include "tests/observability/grafana.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace acme_sidecar::observability {

using nlohmann::json;

namespace {
void walk_panels(const json& panels, const std::string& file, std::vector<DashboardQuery>& out) {
  if (!panels.is_array()) return;
  for (const auto& p : panels) {
    for (const auto& t : p.value("targets", json::array())) {
      DashboardQuery q;
      q.dashboard = file;
      q.panel = p.value("title", "?");
      q.ref_id = t.value("refId", "");
      q.expr = t.value("expr", "");
      // Grafana runs a target as an instant query when it says so (stat and table panels here).
      q.instant = t.value("instant", false) && !t.value("range", false);
      out.push_back(q);
    }
    walk_panels(p.value("panels", json::array()), file, out);  // collapsed rows keep their panels inside
  }
}

// Grafana's prometheusSpecialRegexEscape.
std::string regex_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\\\\\";
    } else if (std::string("$^*{}[]'+?.()|").find(c) != std::string::npos) {
      out += "\\\\";
      out += c;
    } else {
      out += c;
    }
  }
  return out;
}
// Grafana's prometheusRegularEscape (single-value variables).
std::string regular_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\'') out += "\\\\'";
    else out += c;
  }
  return out;
}
}  // namespace

Dashboard load_dashboard(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  auto d = json::parse(in, nullptr, false);
  if (d.is_discarded() || !d.is_object()) throw std::runtime_error(file.string() + " is not JSON");
  Dashboard out;
  out.file = file.filename().string();
  walk_panels(d.value("panels", json::array()), out.file, out.queries);
  for (const auto& v : d.value("templating", json::object()).value("list", json::array())) {
    Variable var;
    var.name = v.value("name", "");
    var.multi = v.value("multi", false);
    var.include_all = v.value("includeAll", false);
    var.all_value = v.contains("allValue") && v["allValue"].is_string() ? v["allValue"].get<std::string>() : "";
    out.variables[var.name] = var;
    if (v.value("type", "") != "query") continue;
    std::string q = v["query"].is_object() ? v["query"].value("query", "") : v["query"].get<std::string>();
    DashboardQuery dq;
    dq.dashboard = out.file;
    dq.panel = "variable " + var.name;
    dq.variable = var.name;
    dq.instant = true;
    static const std::regex label_values(R"(^\s*label_values\((.*),\s*(\w+)\)\s*$)");
    std::smatch m;
    if (std::regex_match(q, m, label_values)) {
      dq.expr = m[1];
      dq.label = m[2];
    } else {
      dq.expr = q;  // a plain PromQL variable query
    }
    out.queries.push_back(dq);
  }
  return out;
}

double TimeRange::interval() const {
  double raw = (to - from) / std::max(1, max_data_points);
  return std::max(scrape_interval, std::ceil(raw));
}

double TimeRange::rate_interval() const { return std::max(interval() + scrape_interval, 4 * scrape_interval); }

std::string duration(double seconds) {
  auto s = static_cast<long>(std::llround(seconds));
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(std::max(1L, s)) + "s";
}

std::string interpolate(const std::string& expr, const Dashboard& d, const Selection& selection, const TimeRange& range,
                        std::vector<std::string>& unresolved) {
  const double span = range.to - range.from;
  const std::map<std::string, std::string> builtins = {
      {"__interval", duration(range.interval())},
      {"__interval_ms", std::to_string(static_cast<long>(range.interval() * 1000))},
      {"__rate_interval", duration(range.rate_interval())},
      {"__range", std::to_string(static_cast<long>(std::llround(span))) + "s"},
      {"__range_s", std::to_string(static_cast<long>(std::llround(span)))},
      {"__range_ms", std::to_string(static_cast<long>(std::llround(span * 1000)))},
  };
  // $name, ${name} and ${name:format}; Grafana also knows [[name]], which these dashboards do not use.
  static const std::regex var(R"(\$\{(\w+)(?::(\w+))?\}|\$(\w+))");
  std::string out;
  auto begin = std::sregex_iterator(expr.begin(), expr.end(), var);
  std::size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    out += expr.substr(last, static_cast<std::size_t>(m.position()) - last);
    last = static_cast<std::size_t>(m.position() + m.length());
    std::string name = m[1].matched ? m[1].str() : m[3].str();
    std::string format = m[2].matched ? m[2].str() : "";
    if (auto b = builtins.find(name); b != builtins.end()) {
      out += b->second;
      continue;
    }
    auto v = d.variables.find(name);
    auto sel = selection.find(name);
    if (v == d.variables.end() || sel == selection.end() || sel->second.empty()) {
      unresolved.push_back(m.str());
      out += m.str();
      continue;
    }
    const auto& values = sel->second;
    if (v->second.include_all && values.size() == 1 && values[0] == "$__all") {
      out += v->second.all_value.empty() ? ".*" : v->second.all_value;
    } else if (format == "raw") {
      out += values.front();
    } else if (!v->second.multi && !v->second.include_all) {
      out += regular_escape(values.front());
    } else if (values.size() == 1) {
      out += regex_escape(values.front());
    } else {
      std::string alt;
      for (const auto& value : values) alt += (alt.empty() ? "" : "|") + regex_escape(value);
      out += "(" + alt + ")";
    }
  }
  out += expr.substr(last);
  return out;
}

}  // namespace acme_sidecar::observability
