#include "core/ingress.hpp"

#include <algorithm>
#include <cctype>

#include "core/names.hpp"

namespace acme_sidecar::core {

namespace {

std::optional<std::string_view> annotation(const IngressView& ing, std::string_view key) {
  auto it = ing.annotations.find(std::string(key));
  if (it == ing.annotations.end()) return std::nullopt;
  return std::string_view(it->second);
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

Selection no(SelectReason reason, std::string message) { return Selection{false, reason, std::move(message)}; }

}  // namespace

std::optional<bool> parse_bool_annotation(std::string_view value) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  std::string lower(value);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "true") return true;
  if (lower == "false") return false;
  return std::nullopt;
}

bool class_is_default(const std::vector<IngressClassView>& classes, std::string_view ingress_class) {
  return std::any_of(classes.begin(), classes.end(),
                     [&](const IngressClassView& c) { return c.name == ingress_class && c.is_default; });
}

std::string_view to_string(SelectReason reason) {
  switch (reason) {
    case SelectReason::Selected: return "selected";
    case SelectReason::OtherClass: return "other_class";
    case SelectReason::NoClass: return "no_class";
    case SelectReason::OptedOut: return "opted_out";
    case SelectReason::NotOptedIn: return "not_opted_in";
    case SelectReason::CertManager: return "cert_manager";
    case SelectReason::NoTls: return "no_tls";
  }
  return "unknown";
}

bool decision_annotation(std::string_view key) {
  return starts_with(key, names::kCertManagerPrefix) || starts_with(key, names::kCertManagerLegacyPrefix) ||
         key == names::kLegacyClass || key == names::kEnabled || key == names::kKubeLegoTlsAcme ||
         key == names::kKeyAlgorithm || key == names::kProfile;
}

Selection select_ingress(const IngressView& ing, const ClassConfig& config) {
  if (ing.tls.empty()) return no(SelectReason::NoTls, "Ingress has no spec.tls entry");

  for (const auto& [key, value] : ing.annotations) {
    if (starts_with(key, names::kCertManagerPrefix) || starts_with(key, names::kCertManagerLegacyPrefix)) {
      return no(SelectReason::CertManager, "annotation " + key + " hands this Ingress to cert-manager");
    }
  }

  // spec.ingressClassName is the current API; the legacy annotation only counts when the field is unset.
  std::optional<std::string> cls = ing.ingress_class_name;
  std::string source = "spec.ingressClassName";
  if (!cls || cls->empty()) {
    cls.reset();
    if (auto legacy = annotation(ing, names::kLegacyClass); legacy && !legacy->empty()) {
      cls = std::string(*legacy);
      source = std::string(names::kLegacyClass);
    }
  }
  if (cls) {
    if (*cls != config.ingress_class) {
      return no(SelectReason::OtherClass,
                source + " is \"" + *cls + "\", not \"" + config.ingress_class + "\"");
    }
  } else if (!config.class_is_default && !config.watch_without_class) {
    return no(SelectReason::NoClass, "Ingress has no class and IngressClass \"" + config.ingress_class +
                                         "\" is not the default (see --watch-ingress-without-class)");
  }

  std::optional<bool> enabled;
  if (auto v = annotation(ing, names::kEnabled)) enabled = parse_bool_annotation(*v);
  if (enabled == false) return no(SelectReason::OptedOut, std::string(names::kEnabled) + " is \"false\"");

  if (config.require_opt_in && enabled != true) {
    std::optional<bool> lego;
    if (auto v = annotation(ing, names::kKubeLegoTlsAcme)) lego = parse_bool_annotation(*v);
    if (lego != true) {
      return no(SelectReason::NotOptedIn, "--require-opt-in is set and neither " + std::string(names::kEnabled) +
                                              " nor " + std::string(names::kKubeLegoTlsAcme) + " is \"true\"");
    }
  }
  return Selection{true, SelectReason::Selected, "selected"};
}

}  // namespace acme_sidecar::core
