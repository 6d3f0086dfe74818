#include <catch2/catch.hpp>

#include "core/desired.hpp"

using namespace acme_sidecar::core;

namespace {
IngressView ing(std::string name, std::vector<IngressTls> tls, std::map<std::string, std::string> ann = {},
                std::string ns = "default") {
  IngressView v;
  v.namespace_name = std::move(ns);
  v.name = std::move(name);
  v.uid = "uid-" + v.name;
  v.ingress_class_name = "nginx";
  v.annotations = std::move(ann);
  v.tls = std::move(tls);
  return v;
}
using Names = std::vector<std::string>;
}  // namespace

TEST_CASE("check_dns_name classifies hosts") {
  auto [host, expected] = GENERATE(table<std::string, std::optional<NameProblem>>({
      {"example.com", std::nullopt},
      {"a-b.example.com", std::nullopt},
      {"xn--bcher-kva.example", std::nullopt},
      {"localhost", std::nullopt},
      {"", NameProblem::Empty},
      {"*.example.com", NameProblem::Wildcard},
      {"192.0.2.1", NameProblem::IpAddress},
      {"2001:db8::1", NameProblem::IpAddress},
      {"[::1]", NameProblem::IpAddress},
      {std::string(64, 'a') + ".com", NameProblem::LabelTooLong},
      {std::string(63, 'a') + ".com", std::nullopt},
      {"a..b", NameProblem::EmptyLabel},
      {".example.com", NameProblem::EmptyLabel},
      {"-a.example.com", NameProblem::InvalidCharacters},
      {"a_b.example.com", NameProblem::InvalidCharacters},
      {"exa mple.com", NameProblem::InvalidCharacters},
      {"b\xc3\xbc" "cher.example", NameProblem::NotAscii},
  }));
  CAPTURE(host);
  CHECK(check_dns_name(host) == expected);
}

TEST_CASE("names longer than 253 characters are rejected") {
  std::string name;
  while (name.size() < 260) name += std::string(50, 'a') + ".";
  name += "com";
  CHECK(check_dns_name(name) == NameProblem::TooLong);
}

TEST_CASE("normalize_name lower-cases and strips the absolute dot") {
  CHECK(normalize_name(" WWW.Example.COM. ") == "www.example.com");
  CHECK(normalize_name(".") == ".");
}

TEST_CASE("TLS entries of several Ingresses sharing a Secret are merged, sorted and de-duplicated") {
  auto state = desired_certificates(
      {ing("b", {{{"WWW.example.com", "api.example.com"}, "shared"}}),
       ing("a", {{{"example.com", "www.example.com"}, "shared"}, {{"other.example.com"}, "other"}})},
      DesiredConfig{});
  REQUIRE(state.certificates.size() == 2);
  const auto& shared = state.certificates.at("default/shared");
  CHECK(shared.names == Names{"api.example.com", "example.com", "www.example.com"});
  REQUIRE(shared.sources.size() == 2);
  CHECK(shared.sources[0].name == "a");
  CHECK(shared.sources[1].name == "b");
  CHECK_FALSE(shared.refusal);
  CHECK(shared.key_algorithm == "ecdsa-p256");
  CHECK(state.certificates.at("default/other").names == Names{"other.example.com"});
}

TEST_CASE("the same secretName in two namespaces gives two certificates") {
  auto state = desired_certificates({ing("a", {{{"a.example"}, "tls"}}, {}, "ns1"),
                                     ing("a", {{{"b.example"}, "tls"}}, {}, "ns2")},
                                    DesiredConfig{});
  CHECK(state.certificates.size() == 2);
  CHECK(state.certificates.count("ns1/tls") == 1);
  CHECK(state.certificates.count("ns2/tls") == 1);
}

TEST_CASE("unissuable names are dropped with a reason, the rest is kept") {
  auto state = desired_certificates(
      {ing("a", {{{"*.example.com", "10.0.0.1", "ok.example.com", "", "bad_name.example"}, "tls"}})},
      DesiredConfig{});
  const auto& cert = state.certificates.at("default/tls");
  CHECK(cert.names == Names{"ok.example.com"});
  REQUIRE(cert.rejected_names.size() == 4);
  CHECK(cert.rejected_names[0].problem == NameProblem::Wildcard);
  CHECK(cert.rejected_names[1].problem == NameProblem::IpAddress);
  CHECK(cert.rejected_names[2].problem == NameProblem::Empty);
  CHECK(cert.rejected_names[3].problem == NameProblem::InvalidCharacters);
  CHECK(cert.rejected_names[0].source.name == "a");
}

TEST_CASE("a Secret with only unissuable names is refused") {
  auto state = desired_certificates({ing("a", {{{"*.example.com"}, "tls"}})}, DesiredConfig{});
  const auto& cert = state.certificates.at("default/tls");
  CHECK(cert.names.empty());
  REQUIRE(cert.refusal);
}

TEST_CASE("too many names refuses the certificate instead of truncating") {
  auto [profile, count, refused] = GENERATE(table<std::string, int, bool>({
      {"", 100, false},
      {"", 101, true},
      {"classic", 100, false},
      {"tlsserver", 25, false},
      {"tlsserver", 26, true},
      {"shortlived", 26, true},
  }));
  CAPTURE(profile, count);
  Names hosts;
  for (int i = 0; i < count; ++i) hosts.push_back("h" + std::to_string(i) + ".example.com");
  std::map<std::string, std::string> ann;
  if (!profile.empty()) ann["acme-sidecar.io/profile"] = profile;
  auto state = desired_certificates({ing("a", {{hosts, "tls"}}, ann)}, DesiredConfig{});
  const auto& cert = state.certificates.at("default/tls");
  CHECK(cert.names.size() == static_cast<std::size_t>(count));
  CHECK(cert.refusal.has_value() == refused);
  CHECK(cert.profile == profile);
}

TEST_CASE("TLS entries without secretName or hosts are skipped and reported") {
  auto state = desired_certificates(
      {ing("a", {{{"x.example"}, ""}, {{}, "empty"}, {{"y.example"}, "Bad_Name"}, {{"z.example"}, "good"}})},
      DesiredConfig{});
  CHECK(state.certificates.size() == 1);
  CHECK(state.certificates.count("default/good") == 1);
  REQUIRE(state.issues.size() == 3);
  CHECK(state.issues[0].reason == "tls_without_secret");
  CHECK(state.issues[1].reason == "tls_without_hosts");
  CHECK(state.issues[2].reason == "invalid_secret_name");
}

TEST_CASE("Ingresses that are not ours contribute nothing") {
  auto other = ing("other", {{{"x.example"}, "tls"}});
  other.ingress_class_name = "traefik";
  auto state = desired_certificates({other, ing("mine", {{{"y.example"}, "tls"}})}, DesiredConfig{});
  CHECK(state.certificates.at("default/tls").names == Names{"y.example"});
  REQUIRE(state.ignored.size() == 1);
  CHECK(state.ignored[0].second.reason == SelectReason::OtherClass);
}

TEST_CASE("conflicting annotations: first Ingress by name wins, the others are reported") {
  auto state = desired_certificates(
      {ing("z", {{{"a.example"}, "tls"}}, {{"acme-sidecar.io/key-algorithm", "rsa-2048"}}),
       ing("m", {{{"b.example"}, "tls"}}, {{"acme-sidecar.io/key-algorithm", "ecdsa-p384"},
                                            {"acme-sidecar.io/profile", "tlsserver"}}),
       ing("a", {{{"c.example"}, "tls"}}, {{"acme-sidecar.io/key-algorithm", "bogus"}})},
      DesiredConfig{});
  const auto& cert = state.certificates.at("default/tls");
  CHECK(cert.key_algorithm == "ecdsa-p384");
  CHECK(cert.profile == "tlsserver");
  REQUIRE(cert.issues.size() == 1);
  CHECK(cert.issues[0].ingress.name == "z");
  CHECK(cert.issues[0].reason == "annotation_conflict");
  REQUIRE(state.issues.size() == 1);
  CHECK(state.issues[0].reason == "invalid_key_algorithm");
  CHECK(state.issues[0].ingress.name == "a");
}

TEST_CASE("the result does not depend on the order of the cache") {
  auto a = ing("a", {{{"a.example"}, "tls"}}, {{"acme-sidecar.io/profile", "p1"}});
  auto b = ing("b", {{{"b.example"}, "tls"}}, {{"acme-sidecar.io/profile", "p2"}});
  auto s1 = desired_certificates({a, b}, DesiredConfig{});
  auto s2 = desired_certificates({b, a}, DesiredConfig{});
  CHECK(s1.certificates.at("default/tls").fingerprint() == s2.certificates.at("default/tls").fingerprint());
  CHECK(s1.certificates.at("default/tls").profile == "p1");
}

TEST_CASE("certificate_keys and split_key") {
  auto v = ing("a", {{{"x"}, "s2"}, {{"y"}, "s1"}, {{"z"}, "s1"}, {{"w"}, ""}});
  CHECK(certificate_keys(v) == Names{"default/s1", "default/s2"});
  CHECK(split_key("ns/name") == std::make_pair(std::string("ns"), std::string("name")));
  CHECK_FALSE(split_key("ns/").has_value());
  CHECK_FALSE(split_key("/x").has_value());
  CHECK_FALSE(split_key("a/b/c").has_value());
  CHECK_FALSE(split_key("plain").has_value());
}
