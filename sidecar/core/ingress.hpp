#pragma once
// Which Ingresses are ours: pure vocabulary of the cached Kubernetes objects and the selection rule.
// Views are plain values decoded elsewhere (controller/decode) so this header stays I/O- and JSON-free.
#include <compare>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acme_sidecar::core {

struct IngressTls {
  std::vector<std::string> hosts;  // as written by the user (not yet normalised)
  std::string secret_name;         // empty when absent
};

struct IngressView {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::optional<std::string> ingress_class_name;  // spec.ingressClassName
  std::map<std::string, std::string> annotations;
  std::vector<IngressTls> tls;

  std::string key() const { return namespace_name + "/" + name; }
};

struct IngressClassView {
  std::string name;
  std::string controller;  // spec.controller
  bool is_default = false;  // ingressclass.kubernetes.io/is-default-class: "true"
};

struct ClassConfig {
  std::string ingress_class = "nginx";  // --ingress-class
  bool watch_without_class = false;     // --watch-ingress-without-class
  bool require_opt_in = false;          // --require-opt-in
  bool class_is_default = false;        // our IngressClass carries the is-default-class annotation
};

// True when an IngressClass named `ingress_class` is marked default.
bool class_is_default(const std::vector<IngressClassView>& classes, std::string_view ingress_class);

// Bounded set of reasons (usable as a metric label).
enum class SelectReason {
  Selected,     // ours
  OtherClass,   // class names another controller
  NoClass,      // class-less and we do not take class-less Ingresses
  OptedOut,     // acme-sidecar.io/enabled: "false"
  NotOptedIn,   // --require-opt-in and no opt-in annotation
  CertManager,  // carries cert-manager annotations: left to cert-manager
  NoTls,        // no spec.tls entry at all
};
std::string_view to_string(SelectReason reason);

struct Selection {
  bool ours = false;
  SelectReason reason = SelectReason::Selected;
  std::string message;  // human explanation for logs
};

// Rules, in order: no spec.tls → NoTls; cert-manager annotations → CertManager; class (spec.ingressClassName,
// else the legacy annotation; class-less only when our class is default or watch_without_class) →
// OtherClass / NoClass; acme-sidecar.io/enabled "false" → OptedOut; --require-opt-in without
// acme-sidecar.io/enabled "true" or kubernetes.io/tls-acme "true" → NotOptedIn.
Selection select_ingress(const IngressView& ingress, const ClassConfig& config);

// True for the Ingress annotations a decision reads (selection, key algorithm, profile): a cache keeps
// only those, not e.g. kubectl's last-applied copy or the controller's own dozens of annotations.
bool decision_annotation(std::string_view key);

// Annotation value as a boolean: "true"/"false" (ASCII case-insensitive, surrounding blanks ignored);
// anything else → nullopt.
std::optional<bool> parse_bool_annotation(std::string_view value);

}  // namespace acme_sidecar::core
