#include <catch2/catch.hpp>

#include "core/ingress.hpp"

using namespace acme_sidecar::core;

namespace {
using Ann = std::map<std::string, std::string>;

IngressView ingress(std::optional<std::string> cls, Ann annotations, bool with_tls = true) {
  IngressView v;
  v.namespace_name = "default";
  v.name = "web";
  v.ingress_class_name = std::move(cls);
  v.annotations = std::move(annotations);
  if (with_tls) v.tls.push_back({{"example.com"}, "web-tls"});
  return v;
}
}  // namespace

TEST_CASE("select_ingress decides by class, opt-in/out and cert-manager annotations") {
  using O = std::optional<std::string>;
  // class field, annotations, class-is-default, watch-without-class, require-opt-in, expected reason
  auto [cls, ann, is_default, without_class, opt_in, expected] =
      GENERATE(table<O, Ann, bool, bool, bool, SelectReason>({
          {O("nginx"), {}, false, false, false, SelectReason::Selected},
          {O("traefik"), {}, false, false, false, SelectReason::OtherClass},
          {std::nullopt, {{"kubernetes.io/ingress.class", "nginx"}}, false, false, false, SelectReason::Selected},
          {std::nullopt, {{"kubernetes.io/ingress.class", "haproxy"}}, false, false, false, SelectReason::OtherClass},
          // the field wins over the legacy annotation
          {O("nginx"), {{"kubernetes.io/ingress.class", "haproxy"}}, false, false, false, SelectReason::Selected},
          {O(""), {{"kubernetes.io/ingress.class", "nginx"}}, false, false, false, SelectReason::Selected},
          {std::nullopt, {}, false, false, false, SelectReason::NoClass},
          {std::nullopt, {}, true, false, false, SelectReason::Selected},
          {std::nullopt, {}, false, true, false, SelectReason::Selected},
          // a default class does not capture Ingresses of another class
          {O("traefik"), {}, true, true, false, SelectReason::OtherClass},
          {O("nginx"), {{"acme-sidecar.io/enabled", "false"}}, false, false, false, SelectReason::OptedOut},
          {O("nginx"), {{"acme-sidecar.io/enabled", "FALSE"}}, false, false, false, SelectReason::OptedOut},
          {O("nginx"), {{"acme-sidecar.io/enabled", "maybe"}}, false, false, false, SelectReason::Selected},
          {O("nginx"), {}, false, false, true, SelectReason::NotOptedIn},
          {O("nginx"), {{"acme-sidecar.io/enabled", "true"}}, false, false, true, SelectReason::Selected},
          {O("nginx"), {{"kubernetes.io/tls-acme", "true"}}, false, false, true, SelectReason::Selected},
          {O("nginx"), {{"kubernetes.io/tls-acme", "false"}}, false, false, true, SelectReason::NotOptedIn},
          // opt-out beats kube-lego's opt-in
          {O("nginx"), {{"kubernetes.io/tls-acme", "true"}, {"acme-sidecar.io/enabled", "false"}}, false, false, true,
           SelectReason::OptedOut},
          {O("nginx"), {{"cert-manager.io/cluster-issuer", "letsencrypt"}}, false, false, false,
           SelectReason::CertManager},
          {O("nginx"), {{"cert-manager.io/issuer", "x"}, {"acme-sidecar.io/enabled", "true"}}, false, false, true,
           SelectReason::CertManager},
          {O("nginx"), {{"certmanager.k8s.io/cluster-issuer", "x"}}, false, false, false, SelectReason::CertManager},
      }));
  ClassConfig config;
  config.class_is_default = is_default;
  config.watch_without_class = without_class;
  config.require_opt_in = opt_in;
  auto sel = select_ingress(ingress(cls, ann), config);
  CAPTURE(to_string(expected), sel.message);
  CHECK(sel.reason == expected);
  CHECK(sel.ours == (expected == SelectReason::Selected));
  CHECK_FALSE(sel.message.empty());
}

TEST_CASE("select_ingress ignores Ingresses without spec.tls") {
  auto sel = select_ingress(ingress(std::string("nginx"), {}, false), ClassConfig{});
  CHECK_FALSE(sel.ours);
  CHECK(sel.reason == SelectReason::NoTls);
}

TEST_CASE("class_is_default finds our class by name") {
  std::vector<IngressClassView> classes{{"nginx", "k8s.io/ingress-nginx", true}, {"traefik", "traefik.io", false}};
  CHECK(class_is_default(classes, "nginx"));
  CHECK_FALSE(class_is_default(classes, "traefik"));
  CHECK_FALSE(class_is_default(classes, "haproxy"));
}

TEST_CASE("parse_bool_annotation is strict about values") {
  CHECK(parse_bool_annotation("true") == true);
  CHECK(parse_bool_annotation(" True ") == true);
  CHECK(parse_bool_annotation("false") == false);
  CHECK_FALSE(parse_bool_annotation("yes").has_value());
  CHECK_FALSE(parse_bool_annotation("").has_value());
}

TEST_CASE("decision_annotation keeps exactly what selection and the desired state read") {
  struct Row {
    const char* key;
    bool kept;
  };
  const Row rows[] = {
      {"acme-sidecar.io/enabled", true},
      {"acme-sidecar.io/key-algorithm", true},
      {"acme-sidecar.io/profile", true},
      {"kubernetes.io/ingress.class", true},
      {"kubernetes.io/tls-acme", true},
      {"cert-manager.io/cluster-issuer", true},
      {"certmanager.k8s.io/issuer", true},
      {"acme-sidecar.io/unknown", false},
      {"kubectl.kubernetes.io/last-applied-configuration", false},
      {"nginx.ingress.kubernetes.io/rewrite-target", false},
      {"kubernetes.io/ingress.class.extra", false},
      {"", false},
  };
  for (const auto& r : rows) {
    INFO(r.key);
    CHECK(decision_annotation(r.key) == r.kept);
  }
}
