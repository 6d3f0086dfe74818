#include "kube/watch.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/error.hpp"

using namespace acme_sidecar;
using kube::LineSplitter;

namespace {
std::vector<std::string> split_all(const std::vector<std::string_view>& chunks) {
  LineSplitter s;
  std::vector<std::string> lines;
  for (auto c : chunks) {
    s.feed(c, [&](std::string_view l) {
      lines.emplace_back(l);
      return true;
    });
  }
  return lines;
}
}  // namespace

TEST_CASE("Line splitter yields the same events at every chunk boundary", "[kube][watch]") {
  const std::string stream =
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"1"}}})" "\n"
      R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}})" "\r\n"
      "\n"
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"3"}}})" "\n";
  const std::vector<std::string> expected = split_all({stream});
  REQUIRE(expected.size() == 3);
  CHECK(expected[1].back() == '}');  // \r dropped

  std::string_view sv(stream);
  // One split anywhere.
  for (size_t i = 0; i <= sv.size(); ++i) {
    INFO("split at " << i);
    CHECK(split_all({sv.substr(0, i), sv.substr(i)}) == expected);
  }
  // Two splits anywhere.
  for (size_t i = 0; i <= sv.size(); i += 3) {
    for (size_t j = i; j <= sv.size(); ++j) {
      INFO("splits at " << i << "," << j);
      CHECK(split_all({sv.substr(0, i), sv.substr(i, j - i), sv.substr(j)}) == expected);
    }
  }
  // Byte by byte.
  std::vector<std::string_view> bytes;
  for (size_t i = 0; i < sv.size(); ++i) bytes.push_back(sv.substr(i, 1));
  CHECK(split_all(bytes) == expected);
}

TEST_CASE("Line splitter keeps an unfinished line and stops when asked", "[kube][watch]") {
  LineSplitter s;
  int n = 0;
  CHECK(s.feed("one\ntwo\nthr", [&](std::string_view) { return ++n < 1; }) == false);
  CHECK(n == 1);
  LineSplitter t;
  std::vector<std::string> got;
  t.feed("abc\nde", [&](std::string_view l) {
    got.emplace_back(l);
    return true;
  });
  CHECK(t.pending() == 2);
  t.feed("f\n", [&](std::string_view l) {
    got.emplace_back(l);
    return true;
  });
  CHECK(got == std::vector<std::string>{"abc", "def"});
  CHECK(t.pending() == 0);
}

TEST_CASE("Line splitter bounds line length", "[kube][watch]") {
  LineSplitter s(16);
  auto sink = [](std::string_view) { return true; };
  CHECK_NOTHROW(s.feed("0123456789\n", sink));
  CHECK_THROWS_AS(s.feed(std::string(17, 'x'), sink), core::Error);
  LineSplitter t(16);
  t.feed("0123456789", sink);
  CHECK_THROWS_AS(t.feed("0123456789\n", sink), core::Error);
}

TEST_CASE("Watch events parse by type and reject garbage", "[kube][watch]") {
  nlohmann::json obj;
  using T = kube::WatchEventType;
  CHECK(kube::parse_watch_event(R"({"type":"ADDED","object":{"a":1}})", obj) == T::Added);
  CHECK(obj["a"] == 1);
  CHECK(kube::parse_watch_event(R"({"type":"MODIFIED","object":{}})", obj) == T::Modified);
  CHECK(kube::parse_watch_event(R"({"type":"DELETED","object":{}})", obj) == T::Deleted);
  CHECK(kube::parse_watch_event(R"({"type":"BOOKMARK","object":{}})", obj) == T::Bookmark);
  CHECK(kube::parse_watch_event(R"({"type":"ERROR","object":{"kind":"Status"}})", obj) == T::Error);
  for (const char* bad : {"", "{", "[]", "null", R"({"type":"ADDED"})", R"({"type":"NOPE","object":{}})",
                          R"({"type":1,"object":{}})", R"({"type":"ADDED","object":"x"})"}) {
    INFO(bad);
    CHECK_THROWS_AS(kube::parse_watch_event(bad, obj), core::Error);
  }
}
