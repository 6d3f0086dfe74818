#pragma once
// Product names shared by the decisions and the adapters: annotations, labels, Secret type.
// One place so an Ingress author, the README and the code never disagree.
#include <string_view>

namespace acme_sidecar::core::names {

// Ingress annotations we read.
inline constexpr std::string_view kEnabled = "acme-sidecar.io/enabled";              // "true" / "false"
inline constexpr std::string_view kKeyAlgorithm = "acme-sidecar.io/key-algorithm";  // ecdsa-p256 ...
inline constexpr std::string_view kProfile = "acme-sidecar.io/profile";              // ACME profile name
inline constexpr std::string_view kLegacyClass = "kubernetes.io/ingress.class";
inline constexpr std::string_view kKubeLegoTlsAcme = "kubernetes.io/tls-acme";
// Any annotation under these prefixes hands the Ingress to cert-manager.
inline constexpr std::string_view kCertManagerPrefix = "cert-manager.io/";
inline constexpr std::string_view kCertManagerLegacyPrefix = "certmanager.k8s.io/";
// IngressClass annotation.
inline constexpr std::string_view kDefaultClass = "ingressclass.kubernetes.io/is-default-class";

// Secret metadata we write (and read back).
inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kManagedByValue = "acme-sidecar";
inline constexpr std::string_view kSecretNames = "acme-sidecar.io/names";          // comma-separated
inline constexpr std::string_view kSecretIssuer = "acme-sidecar.io/issuer";        // directory URL
inline constexpr std::string_view kSecretNotAfter = "acme-sidecar.io/not-after";   // RFC 3339
inline constexpr std::string_view kSecretIngresses = "acme-sidecar.io/ingresses";  // ns/name,...
inline constexpr std::string_view kTlsSecretType = "kubernetes.io/tls";
inline constexpr std::string_view kTlsCert = "tls.crt";
inline constexpr std::string_view kTlsKey = "tls.key";

}  // namespace acme_sidecar::core::names
