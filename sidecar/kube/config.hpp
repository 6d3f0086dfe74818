#pragma once
// Where the API server is and how to authenticate: in-cluster service account or a kubeconfig file.
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "http/client.hpp"

namespace acme_sidecar::kube {

// Reads a bearer token from a file and re-reads it whenever the file changes (bound service-account
// tokens rotate roughly hourly; the kubelet swaps the file underneath us).
class TokenFile {
 public:
  explicit TokenFile(std::filesystem::path path);
  // The current token; throws core::Error(Unauthorized) when the file cannot be read.
  std::string token();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::mutex mu_;
  std::filesystem::file_time_type mtime_{};
  std::uintmax_t size_ = 0;
  std::string token_;
  bool loaded_ = false;
};

struct KubeConfig {
  std::string server;  // "https://10.0.0.1:443", no trailing slash
  http::TlsOptions tls;
  std::string token;                     // static bearer token (kubeconfig `token`)
  std::shared_ptr<TokenFile> token_file; // re-read on change (in-cluster, kubeconfig `tokenFile`)
  std::string namespace_name;            // default namespace (service account or context), may be empty

  // Authorization header value or empty.
  std::string authorization() const;
};

struct InClusterPaths {
  std::filesystem::path token = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::filesystem::path ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::filesystem::path namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};

using Getenv = std::function<std::optional<std::string>(const std::string&)>;
Getenv process_env();

// True when KUBERNETES_SERVICE_HOST/PORT are set.
bool in_cluster_available(const Getenv& env = process_env());
// Throws core::Error(Config) when not in a cluster or the files are missing.
KubeConfig in_cluster_config(const Getenv& env = process_env(), const InClusterPaths& paths = {});
// Loads a kubeconfig; `context` empty = current-context. Relative file paths resolve against the
// kubeconfig's directory. Throws core::Error(Config) with the offending field on bad input.
KubeConfig load_kubeconfig(const std::filesystem::path& path, const std::string& context = "");
// --kubeconfig if given, else in-cluster, else $KUBECONFIG (first entry), else ~/.kube/config.
KubeConfig load_default_config(const std::string& kubeconfig_flag, const std::string& context = "",
                               const Getenv& env = process_env(), const InClusterPaths& paths = {});

// RFC 4648 base64 (standard alphabet, padding optional, whitespace ignored). Throws core::Error(Config).
std::string base64_decode(std::string_view text);

}  // namespace acme_sidecar::kube
