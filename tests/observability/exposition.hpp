#pragma once
// The two sides of the metrics contract: the table in metrics/README.md and a scrape in the
// Prometheus text format (0.0.4).
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace acme_sidecar::observability {

struct DocumentedFamily {
  std::string name;
  std::string type;              // counter, gauge, histogram, summary
  std::set<std::string> labels;  // "-" in the table: none
};

// Rows of the table in metrics/README.md ("| `name` | type | labels | ..."). Throws on an unreadable file.
std::map<std::string, DocumentedFamily> documented_families(const std::filesystem::path& readme);

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Scrape {
  std::map<std::string, std::string> types;  // family -> type, from "# TYPE" lines
  std::map<std::string, std::string> helps;  // family -> help text
  std::vector<Sample> samples;
  std::vector<std::string> errors;  // lines that do not parse
};

Scrape parse_exposition(const std::string& text);

// The family a sample belongs to: its name, or for histograms/summaries the name without
// _bucket/_sum/_count when that family is declared with that type.
std::string family_of(const std::string& sample_name, const std::map<std::string, std::string>& types);

}  // namespace acme_sidecar::observability
