#pragma once
// The queries of a Grafana dashboard JSON file, and Grafana's variable interpolation for a Prometheus
// data source, so the test can evaluate exactly what Grafana would send.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace acme_sidecar::observability {

struct DashboardQuery {
  std::string dashboard;  // file name
  std::string panel;      // panel title, or "variable <name>"
  std::string ref_id;
  std::string expr;       // raw, with variables
  bool instant = false;   // stat/table targets; time series panels run range queries
  // Variable queries label_values(<expr>, <label>): the label whose values Grafana lists.
  std::string variable;   // the variable's name, empty for panels
  std::string label;
};

struct Variable {
  std::string name;
  bool multi = false;
  bool include_all = false;
  std::string all_value;
};

struct Dashboard {
  std::string file;
  std::vector<DashboardQuery> queries;  // every target of every panel (rows and nested panels too)
  std::map<std::string, Variable> variables;
};

// Throws std::runtime_error when the file is not a dashboard.
Dashboard load_dashboard(const std::filesystem::path& file);

// Grafana's built-in time variables for a dashboard time range.
struct TimeRange {
  double from = 0;  // Unix seconds
  double to = 0;
  double scrape_interval = 1;  // the data source's "Scrape interval" setting (= Prometheus's)
  int max_data_points = 1000;  // about a panel's width in pixels
  double interval() const;       // $__interval in seconds: range / max data points, at least the scrape interval
  double rate_interval() const;  // $__rate_interval: max($__interval + scrape interval, 4 × scrape interval)
};

// Selected variable values: name -> values; a variable with include_all and the value "$__all"
// becomes its allValue.
using Selection = std::map<std::string, std::vector<std::string>>;

// Replaces $var, ${var}, ${var:format} and the built-ins ($__interval, $__interval_ms, $__rate_interval,
// $__range, $__range_s, $__range_ms) as Grafana's Prometheus data source does (regex escaping for
// multi-value/include-all variables, "(a|b)" for several values). Names it cannot resolve are
// appended to `unresolved` and left in place.
std::string interpolate(const std::string& expr, const Dashboard& d, const Selection& selection, const TimeRange& range,
                        std::vector<std::string>& unresolved);

// A duration as Grafana writes it into a query ("4s", "1m", "90s").
std::string duration(double seconds);

}  // namespace acme_sidecar::observability
