#include "tests/observability/exposition.hpp"

#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace acme_sidecar::observability {

namespace {
std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Parses `{a="x",b="y"}` starting at s[pos] == '{'; advances pos past '}'. False on malformed input.
bool parse_labels(const std::string& s, std::size_t& pos, std::map<std::string, std::string>& out) {
  ++pos;
  while (pos < s.size()) {
    if (s[pos] == '}') {
      ++pos;
      return true;
    }
    auto eq = s.find('=', pos);
    if (eq == std::string::npos || eq + 1 >= s.size() || s[eq + 1] != '"') return false;
    std::string name = trim(s.substr(pos, eq - pos));
    std::string value;
    std::size_t i = eq + 2;
    for (; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
        value += s[i] == 'n' ? '\n' : s[i];
      } else {
        value += s[i];
      }
    }
    if (i >= s.size() || name.empty() || out.count(name) != 0) return false;
    out[name] = value;
    pos = i + 1;
    if (pos < s.size() && s[pos] == ',') ++pos;
  }
  return false;
}
}  // namespace

std::map<std::string, DocumentedFamily> documented_families(const std::filesystem::path& readme) {
  std::ifstream in(readme);
  if (!in) throw std::runtime_error("cannot read " + readme.string());
  static const std::regex row(R"(^\|\s*`(acme_sidecar_[a-z0-9_]+)`\s*\|\s*([a-z]+)\s*\|([^|]*)\|)");
  std::map<std::string, DocumentedFamily> out;
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_search(line, m, row)) continue;
    DocumentedFamily f;
    f.name = m[1];
    f.type = m[2];
    std::stringstream labels(m[3].str());
    std::string l;
    while (std::getline(labels, l, ',')) {
      l = trim(l);
      if (!l.empty() && l != "-") f.labels.insert(l);
    }
    out[f.name] = f;
  }
  return out;
}

Scrape parse_exposition(const std::string& text) {
  Scrape out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    if (line[0] == '#') {
      std::istringstream c(line.substr(1));
      std::string kind, name;
      c >> kind >> name;
      std::string rest;
      std::getline(c, rest);
      if (kind == "TYPE") out.types[name] = trim(rest);
      if (kind == "HELP") out.helps[name] = trim(rest);
      continue;
    }
    Sample s;
    std::size_t pos = line.find_first_of("{ ");
    if (pos == std::string::npos) {
      out.errors.push_back(line);
      continue;
    }
    s.name = line.substr(0, pos);
    if (line[pos] == '{' && !parse_labels(line, pos, s.labels)) {
      out.errors.push_back(line);
      continue;
    }
    std::istringstream v(line.substr(pos));
    std::string value;
    v >> value;
    try {
      s.value = value == "+Inf" ? HUGE_VAL : value == "-Inf" ? -HUGE_VAL : std::stod(value);
    } catch (const std::exception&) {
      out.errors.push_back(line);
      continue;
    }
    out.samples.push_back(s);
  }
  return out;
}

std::string family_of(const std::string& sample_name, const std::map<std::string, std::string>& types) {
  if (types.count(sample_name) != 0) return sample_name;
  for (std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (sample_name.size() > suffix.size() &&
        sample_name.compare(sample_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      auto base = sample_name.substr(0, sample_name.size() - suffix.size());
      auto t = types.find(base);
      if (t != types.end() && (t->second == "histogram" || (t->second == "summary" && suffix != "_bucket"))) return base;
    }
  }
  return sample_name;
}

}  // namespace acme_sidecar::observability
