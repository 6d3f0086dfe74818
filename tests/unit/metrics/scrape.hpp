#pragma once
// A small parser of the Prometheus text format (0.0.4) for tests: families with their type and the
// label sets of their samples.
#include <map>
#include <set>
#include <string>
#include <vector>

namespace acme_sidecar::metrics::test {

struct Sample {
  std::string name;  // sample name, e.g. foo_bucket
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct ParsedFamily {
  std::string type;
  std::vector<Sample> samples;
  // Label names of the family's samples, without histogram "le".
  std::set<std::string> label_names() const;
};

std::map<std::string, ParsedFamily> parse_exposition(const std::string& text);

}  // namespace acme_sidecar::metrics::test
