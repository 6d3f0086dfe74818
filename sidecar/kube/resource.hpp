#pragma once
// Which REST collection a request addresses: group/version/resource (plural) and its scope.
#include <string>

namespace acme_sidecar::kube {

struct ResourceRef {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string resource; // plural, e.g. "ingresses"
  bool namespaced = true;

  // "/api/v1" or "/apis/<group>/<version>"
  std::string api_prefix() const { return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version; }
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
};

namespace resources {
inline ResourceRef ingresses() { return {"networking.k8s.io", "v1", "ingresses", true}; }
inline ResourceRef secrets() { return {"", "v1", "secrets", true}; }
inline ResourceRef configmaps() { return {"", "v1", "configmaps", true}; }
inline ResourceRef events() { return {"", "v1", "events", true}; }
inline ResourceRef leases() { return {"coordination.k8s.io", "v1", "leases", true}; }
inline ResourceRef namespaces() { return {"", "v1", "namespaces", false}; }
}  // namespace resources

}  // namespace acme_sidecar::kube
