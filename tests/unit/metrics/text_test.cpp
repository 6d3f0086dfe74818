#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "metrics/text.hpp"
#include "scrape.hpp"

using acme_sidecar::metrics::append_text;
using acme_sidecar::metrics::test::parse_exposition;

TEST_CASE("append_text writes the same samples as prometheus-cpp's TextSerializer") {
  prometheus::Registry r;
  auto& g = prometheus::BuildGauge().Name("g").Help("gauge").Register(r);
  g.Add({{"a", "x\"y\\z\nw"}, {"b", "2"}}).Set(1.7e9 + 0.25);
  g.Add({{"i", "1"}}).Set(-INFINITY);
  g.Add({{"i", "2"}}).Set(0.1);
  g.Add({{"i", "3"}}).Set(123456789012.0);
  prometheus::BuildGauge().Name("empty").Help("no series").Register(r);
  prometheus::BuildCounter().Name("c_total").Help("counter").Register(r).Add({{"x", "y"}}).Increment(3);
  prometheus::BuildHistogram()
      .Name("h")
      .Help("histogram")
      .Register(r)
      .Add({{"e", "d"}}, prometheus::Histogram::BucketBoundaries{0.05, 1, 2.5})
      .Observe(0.7);
  std::ostringstream theirs;
  prometheus::TextSerializer().Serialize(theirs, r.Collect());
  std::string ours;
  append_text(ours, r.Collect());
  auto a = parse_exposition(theirs.str());
  auto b = parse_exposition(ours);
  REQUIRE(a.size() == b.size());
  for (const auto& [name, fam] : a) {
    INFO(name);
    REQUIRE(b.count(name) == 1);
    CHECK(b.at(name).type == fam.type);
    REQUIRE(b.at(name).samples.size() == fam.samples.size());
    for (const auto& s : fam.samples) {
      bool found = false;
      for (const auto& t : b.at(name).samples)
        found = found || (t.name == s.name && t.labels == s.labels && t.value == s.value);
      CHECK(found);
    }
  }
  CHECK(ours.find("g{a=\"x\\\"y\\\\z\\nw\",b=\"2\"} 1700000000.25\n") != std::string::npos);
  CHECK(ours.find("h_bucket{e=\"d\",le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(ours.find("empty") == std::string::npos);
}

TEST_CASE("append_series writes what TextSerializer writes for the same gauge") {
  prometheus::Registry r;
  prometheus::BuildGauge().Name("g").Help("a \"gauge\" \\ help").Register(r)
      .Add({{"a", "x\"y\\z\nw"}, {"b", "2"}}).Set(1.7e9 + 0.25);
  std::ostringstream theirs;
  prometheus::TextSerializer().Serialize(theirs, r.Collect());
  std::string ours;
  acme_sidecar::metrics::append_family_header(ours, "g", "a \"gauge\" \\ help", "gauge");
  acme_sidecar::metrics::append_series(ours, "g", {{"a", "x\"y\\z\nw"}, {"b", "2"}}, 1.7e9 + 0.25);
  auto a = parse_exposition(theirs.str());
  auto b = parse_exposition(ours);
  REQUIRE(b.count("g") == 1);
  CHECK(b.at("g").type == "gauge");
  REQUIRE(b.at("g").samples.size() == 1);
  CHECK(b.at("g").samples[0].labels == a.at("g").samples[0].labels);
  CHECK(b.at("g").samples[0].value == a.at("g").samples[0].value);
  CHECK(ours == "# HELP g a \"gauge\" \\\\ help\n# TYPE g gauge\ng{a=\"x\\\"y\\\\z\\nw\",b=\"2\"} 1700000000.25\n");
}
