#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "controller/decode.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using nlohmann::json;

namespace {
json good_ingress() {
  return json::parse(R"({
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"namespace": "shop", "name": "web", "uid": "u-1", "resourceVersion": "42",
                 "annotations": {"acme-sidecar.io/profile": "tlsserver"}},
    "spec": {"ingressClassName": "nginx",
             "tls": [{"hosts": ["a.example", "B.example"], "secretName": "web-tls"}],
             "rules": [{"host": "a.example"}, {"http": {}}]}
  })");
}
}  // namespace

TEST_CASE("decode_ingress reads every field we use") {
  auto d = decode_ingress(good_ingress());
  CHECK(d.usable);
  CHECK(d.problems.empty());
  const auto& v = d.value;
  CHECK(v.namespace_name == "shop");
  CHECK(v.name == "web");
  CHECK(v.uid == "u-1");
  CHECK(v.resource_version == "42");
  CHECK(v.ingress_class_name == "nginx");
  CHECK(v.annotations.at("acme-sidecar.io/profile") == "tlsserver");
  REQUIRE(v.tls.size() == 1);
  CHECK(v.tls[0].secret_name == "web-tls");
  CHECK(v.tls[0].hosts == std::vector<std::string>{"a.example", "B.example"});
}

TEST_CASE("decode_ingress records problems for wrong types and keeps the rest") {
  auto j = good_ingress();
  j["metadata"]["annotations"]["bad"] = 5;
  j["spec"]["ingressClassName"] = 7;
  j["spec"]["tls"].push_back("not an object");
  j["spec"]["tls"].push_back({{"hosts", {"c.example", 3, nullptr}}, {"secretName", true}});
  j["spec"]["tls"].push_back({{"hosts", "a-string"}});
  j["spec"]["rules"] = {{{"host", 12}}};
  auto d = decode_ingress(j);
  CHECK(d.usable);
  CHECK(d.problems.size() == 8);
  CHECK_FALSE(d.value.ingress_class_name);
  CHECK(d.value.annotations.count("bad") == 0);
  REQUIRE(d.value.tls.size() == 3);
  CHECK(d.value.tls[1].hosts == std::vector<std::string>{"c.example"});
  CHECK(d.value.tls[1].secret_name.empty());
  CHECK(d.value.tls[2].hosts.empty());
}

TEST_CASE("decode_ingress survives hostile shapes without throwing") {
  auto input = GENERATE(as<std::string>{}, "null", "[]", "\"x\"", "42", "{}", R"({"metadata": 1})",
                        R"({"metadata": {"name": "a"}})", R"({"metadata": {"name": "a", "namespace": "b"}, "spec": []})",
                        R"({"metadata": {"name": "a", "namespace": "b"}, "spec": {"tls": {}}})",
                        R"({"metadata": {"name": "a", "namespace": "b"}, "spec": {"tls": [{"hosts": [[]]}]}})",
                        "{", "", "\xff\xfe", R"({"metadata": {"name": "\u00e9\u2603", "namespace": "b"}})");
  CAPTURE(input);
  Decoded<core::IngressView> d;
  CHECK_NOTHROW(d = decode_ingress_text(input));
  if (!d.usable) CHECK_FALSE(d.problems.empty());
}

TEST_CASE("decode_ingress keeps 300 names and empty hosts for the decisions to judge") {
  auto j = good_ingress();
  json hosts = json::array();
  for (int i = 0; i < 300; ++i) hosts.push_back("h" + std::to_string(i) + ".example");
  hosts.push_back("");
  hosts.push_back("b\u00fccher.example");
  j["spec"]["tls"][0]["hosts"] = hosts;
  auto d = decode_ingress(j);
  CHECK(d.problems.empty());
  CHECK(d.value.tls[0].hosts.size() == 302);
}

TEST_CASE("decode_ingress_class reads the default-class annotation") {
  auto d = decode_ingress_class(json::parse(R"({"metadata": {"name": "nginx",
      "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
      "spec": {"controller": "k8s.io/ingress-nginx"}})"));
  CHECK(d.usable);
  CHECK(d.value.is_default);
  CHECK(d.value.controller == "k8s.io/ingress-nginx");
  auto no = decode_ingress_class(json::parse(R"({"metadata": {"name": "x",
      "annotations": {"ingressclass.kubernetes.io/is-default-class": "yes"}}})"));
  CHECK_FALSE(no.value.is_default);
}

TEST_CASE("Secrets round-trip through encode_secret / decode_secret") {
  SecretData s;
  s.namespace_name = "shop";
  s.name = "web-tls";
  s.resource_version = "7";
  s.type = "kubernetes.io/tls";
  s.labels["app.kubernetes.io/managed-by"] = "acme-sidecar";
  s.annotations["acme-sidecar.io/names"] = "a.example";
  s.data["tls.crt"] = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
  s.data["tls.key"] = std::string("\x00\x01\xff", 3);
  s.owner_references.push_back({"networking.k8s.io/v1", "Ingress", "web", "u-1"});
  auto j = encode_secret(s);
  CHECK(j["apiVersion"] == "v1");
  CHECK(j["kind"] == "Secret");
  CHECK(j["data"]["tls.key"] == "AAH/");
  auto d = decode_secret(j);
  CHECK(d.usable);
  CHECK(d.problems.empty());
  CHECK(d.value.data == s.data);
  CHECK(d.value.labels == s.labels);
  CHECK(d.value.annotations == s.annotations);
  CHECK(d.value.resource_version == "7");
  CHECK(d.value.owner_references == s.owner_references);
  s.resource_version.clear();
  CHECK_FALSE(encode_secret(s)["metadata"].contains("resourceVersion"));
}

TEST_CASE("encode_secret_text writes the same object as encode_secret") {
  SecretData s;
  s.namespace_name = "shop";
  s.name = "web-tls";
  s.type = "kubernetes.io/tls";
  const auto same = [&] {
    auto text = encode_secret_text(s);
    auto parsed = json::parse(text);  // throws if the text is not JSON
    CHECK(parsed == encode_secret(s));
  };
  same();  // no data, labels, annotations or owners
  s.resource_version = "7";
  s.labels["app.kubernetes.io/managed-by"] = "acme-sidecar";
  s.labels["quote\"back\\slash"] = "line\nfeed\ttab\x01";
  s.annotations["acme-sidecar.io/names"] = "a.example,caf\xC3\xA9.example";
  s.data["tls.crt"] = "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n";
  s.data["tls.key"] = std::string("\x00\x01\xff", 3);
  s.owner_references.push_back({"networking.k8s.io/v1", "Ingress", "web", "u-1"});
  s.owner_references.push_back({"networking.k8s.io/v1", "Ingress", "api", "u-2"});
  same();
  auto without = json::parse(encode_secret_text(s, /*with_resource_version=*/false));
  CHECK_FALSE(without["metadata"].contains("resourceVersion"));
  CHECK(decode_secret_text(encode_secret_text(s)).value.data == s.data);
}

TEST_CASE("decode_secret drops undecodable data with a problem") {
  auto d = decode_secret_text(R"({"metadata": {"name": "s", "namespace": "n"}, "type": 5,
      "data": {"tls.crt": "!!!not base64", "tls.key": "YWJj", "x": 1}})");
  CHECK(d.usable);
  CHECK(d.value.data.size() == 1);
  CHECK(d.value.data.at("tls.key") == "abc");
  CHECK(d.value.type.empty());
  CHECK(d.problems.size() == 3);
}
