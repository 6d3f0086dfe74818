// metrics/README.md is the contract for dashboards and alerts: its table must list exactly what a
// scrape exports (name, type, label set) once every Metrics method has been called.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include <httplib.h>
#include <prometheus/registry.h>

#include "metrics/metrics.hpp"
#include "metrics/server.hpp"
#include "scrape.hpp"

using namespace acme_sidecar::metrics;

namespace {

struct Documented {
  std::string type;
  std::set<std::string> labels;
};

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits a markdown table row on unescaped '|'.
std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cur += '|';
      ++i;
    } else if (line[i] == '|') {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  out.push_back(trim(cur));
  // Leading and trailing pipes produce empty outer cells.
  if (!out.empty() && out.front().empty()) out.erase(out.begin());
  if (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

std::map<std::string, Documented> parse_readme(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::map<std::string, Documented> out;
  std::string line;
  bool in_table = false;
  int tables = 0;
  while (std::getline(in, line)) {
    if (line.rfind("|", 0) != 0) {
      in_table = false;
      continue;
    }
    auto c = cells(line);
    if (!in_table) {
      REQUIRE(c == std::vector<std::string>{"name", "type", "labels", "meaning", "example"});
      in_table = true;
      ++tables;
      continue;
    }
    if (c.size() >= 1 && c[0].rfind("---", 0) == 0) continue;
    REQUIRE(c.size() == 5);
    auto name = c[0];
    REQUIRE(name.size() > 2);
    REQUIRE(name.front() == '`');
    REQUIRE(name.back() == '`');
    name = name.substr(1, name.size() - 2);
    Documented d{c[1], {}};
    if (c[2] != "-") {
      std::istringstream ls(c[2]);
      std::string label;
      while (std::getline(ls, label, ',')) d.labels.insert(trim(label));
    }
    CHECK(!c[3].empty());
    CHECK(c[4].find(name) != std::string::npos);  // the example PromQL uses the metric
    REQUIRE(out.emplace(name, d).second);
  }
  CHECK(tables == 1);
  return out;
}

}  // namespace

TEST_CASE("metrics README documents exactly what is exported", "[metrics][readme]") {
  auto documented = parse_readme(std::string(ACME_SIDECAR_SOURCE_DIR) + "/metrics/README.md");
  REQUIRE(documented.size() >= 17);

  prometheus::Registry registry;
  Metrics m(registry);
  const TimePoint t(std::chrono::seconds(1'700'000'000));
  m.set_certificate("ns", "s", "a.example", "R3", t, t, t, true);
  m.set_certificate_ready("ns", "s", true);
  m.issuance("success", "issued", std::chrono::seconds(3));
  m.acme_request("order", 201, std::chrono::milliseconds(100));
  m.acme_rate_limited();
  m.acme_bad_nonce_retry();
  m.challenge_request("miss");
  m.kube_request("list", "ingresses", 200);
  m.kube_watch_restart("secrets", "closed");
  m.kube_watch_event("secrets", t);
  m.ingress_invalid_name("ip");
  m.served_certificate("ns", "s", "a.example", true, t);
  m.leader(true);
  m.managed_certificates(1);
  m.build_info("0.1.0", "deadbeef");

  ServerOptions o;
  o.listen = "127.0.0.1:0";
  Server server([&m](std::string& out) { m.append_exposition(out); }, o);
  httplib::Client c("127.0.0.1", server.port());
  c.set_read_timeout(std::chrono::seconds(30));
  auto r = c.Get("/metrics");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  auto exported = test::parse_exposition(r->body);

  for (const auto& [name, d] : documented) {
    INFO("documented: " << name);
    REQUIRE(exported.count(name) == 1);
    CHECK(exported.at(name).type == d.type);
    CHECK(exported.at(name).label_names() == d.labels);
  }
  for (const auto& [name, f] : exported) {
    INFO("exported: " << name);
    CHECK(documented.count(name) == 1);
    CHECK(name.rfind("acme_sidecar_", 0) == 0);
  }
}
