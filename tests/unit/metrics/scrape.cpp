#include "scrape.hpp"

#include <sstream>
#include <stdexcept>

namespace acme_sidecar::metrics::test {

std::set<std::string> ParsedFamily::label_names() const {
  std::set<std::string> out;
  for (const auto& s : samples)
    for (const auto& [k, v] : s.labels)
      if (k != "le") out.insert(k);
  return out;
}

namespace {

// Family of a sample name: strips the histogram suffixes when such a family was declared.
std::string family_of(const std::string& sample, const std::map<std::string, ParsedFamily>& families) {
  if (families.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      auto base = sample.substr(0, sample.size() - s.size());
      if (families.count(base)) return base;
    }
  }
  throw std::runtime_error("sample without # TYPE: " + sample);
}

}  // namespace

std::map<std::string, ParsedFamily> parse_exposition(const std::string& text) {
  std::map<std::string, ParsedFamily> families;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      families[name].type = type;
      continue;
    }
    if (line[0] == '#') continue;
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        auto eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
          throw std::runtime_error("bad labels: " + line);
        std::string key = line.substr(i, eq - i);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\' && j + 1 < line.size()) {
            ++j;
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels[key] = value;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      ++i;  // '}'
    }
    s.value = std::stod(line.substr(i));
    families[family_of(s.name, families)].samples.push_back(std::move(s));
  }
  return families;
}

}  // namespace acme_sidecar::metrics::test
