#include "kube/config.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace acme_sidecar::kube {
namespace {

using core::Error;
using core::ErrorKind;
namespace fs = std::filesystem;

std::optional<std::string> read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

std::string require_file(const fs::path& p, const std::string& what) {
  auto text = read_text(p);
  if (!text) throw Error(ErrorKind::Config, "cannot read " + what, {{"path", p.string()}});
  return *text;
}

std::string scalar(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap() || !n[key]) return {};
  const auto& v = n[key];
  if (!v.IsScalar()) throw Error(ErrorKind::Config, std::string("kubeconfig field is not a string: ") + key);
  return v.as<std::string>();
}

// Finds the entry of `list` (clusters/users/contexts) named `name` and returns its `field` map.
YAML::Node named(const YAML::Node& root, const char* list, const std::string& name, const char* field) {
  const auto& items = root[list];
  if (items && items.IsSequence()) {
    for (const auto& item : items) {
      if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].as<std::string>() == name) {
        return item[field];
      }
    }
  }
  throw Error(ErrorKind::Config, std::string("kubeconfig has no ") + list + " entry named '" + name + "'");
}

fs::path resolve(const fs::path& base_dir, const std::string& p) {
  fs::path path(p);
  return path.is_absolute() ? path : base_dir / path;
}

}  // namespace

TokenFile::TokenFile(fs::path path) : path_(std::move(path)) {}

std::string TokenFile::token() {
  std::lock_guard lock(mu_);
  std::error_code ec;
  auto mtime = fs::last_write_time(path_, ec);
  auto size = ec ? 0 : fs::file_size(path_, ec);
  if (ec) {
    // Keep using a token we already have when the file is briefly missing during the kubelet's swap.
    if (loaded_) return token_;
    throw Error(ErrorKind::Unauthorized, "cannot read service-account token", {{"path", path_.string()}});
  }
  if (!loaded_ || mtime != mtime_ || size != size_) {
    auto text = read_text(path_);
    if (!text) {
      if (loaded_) return token_;
      throw Error(ErrorKind::Unauthorized, "cannot read service-account token", {{"path", path_.string()}});
    }
    token_ = trim(*text);
    mtime_ = mtime;
    size_ = size;
    loaded_ = true;
  }
  return token_;
}

std::string KubeConfig::authorization() const {
  if (token_file) return "Bearer " + token_file->token();
  if (!token.empty()) return "Bearer " + token;
  return {};
}

Getenv process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

bool in_cluster_available(const Getenv& env) {
  auto host = env("KUBERNETES_SERVICE_HOST");
  auto port = env("KUBERNETES_SERVICE_PORT");
  return host && !host->empty() && port && !port->empty();
}

KubeConfig in_cluster_config(const Getenv& env, const InClusterPaths& paths) {
  if (!in_cluster_available(env)) {
    throw Error(ErrorKind::Config, "not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  std::string host = *env("KUBERNETES_SERVICE_HOST");
  const std::string port = *env("KUBERNETES_SERVICE_PORT");
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";  // IPv6
  KubeConfig c;
  c.server = "https://" + host + ":" + port;
  c.tls.ca_pem = require_file(paths.ca, "service-account CA");
  c.token_file = std::make_shared<TokenFile>(paths.token);
  c.token_file->token();  // fail now, clearly, rather than on the first request
  if (auto ns = read_text(paths.namespace_file)) c.namespace_name = trim(*ns);
  return c;
}

KubeConfig load_kubeconfig(const fs::path& path, const std::string& context_name) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::Config, std::string("cannot parse kubeconfig: ") + e.what(), {{"path", path.string()}});
  }
  if (!root.IsMap()) throw Error(ErrorKind::Config, "kubeconfig is not a map", {{"path", path.string()}});
  const fs::path dir = path.parent_path();
  try {
    std::string ctx_name = context_name.empty() ? scalar(root, "current-context") : context_name;
    if (ctx_name.empty()) throw Error(ErrorKind::Config, "kubeconfig has no current-context");
    YAML::Node ctx = named(root, "contexts", ctx_name, "context");
    const std::string cluster_name = scalar(ctx, "cluster");
    const std::string user_name = scalar(ctx, "user");
    if (cluster_name.empty()) throw Error(ErrorKind::Config, "kubeconfig context has no cluster");
    YAML::Node cluster = named(root, "clusters", cluster_name, "cluster");

    KubeConfig c;
    c.namespace_name = scalar(ctx, "namespace");
    c.server = scalar(cluster, "server");
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    if (c.server.empty()) throw Error(ErrorKind::Config, "kubeconfig cluster has no server");
    if (!c.server.starts_with("https://") && !c.server.starts_with("http://")) {
      throw Error(ErrorKind::Config, "kubeconfig server must be an http(s) URL", {{"server", c.server}});
    }
    if (auto data = scalar(cluster, "certificate-authority-data"); !data.empty()) {
      c.tls.ca_pem = base64_decode(data);
    } else if (auto file = scalar(cluster, "certificate-authority"); !file.empty()) {
      c.tls.ca_file = resolve(dir, file).string();
      require_file(c.tls.ca_file, "certificate-authority");
    }
    auto insecure = scalar(cluster, "insecure-skip-tls-verify");
    c.tls.insecure_skip_verify = insecure == "true";

    if (!user_name.empty()) {
      YAML::Node user = named(root, "users", user_name, "user");
      if (user && user.IsMap()) {
        if (user["exec"] || user["auth-provider"]) {
          throw Error(ErrorKind::Config, "kubeconfig exec/auth-provider credentials are not supported",
                      {{"user", user_name}});
        }
        c.token = trim(scalar(user, "token"));
        if (auto tf = scalar(user, "tokenFile"); !tf.empty()) {
          c.token_file = std::make_shared<TokenFile>(resolve(dir, tf));
          c.token_file->token();
        }
        if (auto d = scalar(user, "client-certificate-data"); !d.empty()) {
          c.tls.client_cert_pem = base64_decode(d);
        } else if (auto f = scalar(user, "client-certificate"); !f.empty()) {
          c.tls.client_cert_pem = require_file(resolve(dir, f), "client-certificate");
        }
        if (auto d = scalar(user, "client-key-data"); !d.empty()) {
          c.tls.client_key_pem = base64_decode(d);
        } else if (auto f = scalar(user, "client-key"); !f.empty()) {
          c.tls.client_key_pem = require_file(resolve(dir, f), "client-key");
        }
        if (c.tls.client_cert_pem.empty() != c.tls.client_key_pem.empty()) {
          throw Error(ErrorKind::Config, "kubeconfig user needs both client certificate and key",
                      {{"user", user_name}});
        }
        if (!scalar(user, "username").empty()) {
          throw Error(ErrorKind::Config, "kubeconfig basic auth is not supported", {{"user", user_name}});
        }
      }
    }
    return c;
  } catch (const Error& e) {
    throw e.with("path", path.string());
  } catch (const YAML::Exception& e) {
    throw Error(ErrorKind::Config, std::string("bad kubeconfig: ") + e.what(), {{"path", path.string()}});
  }
}

KubeConfig load_default_config(const std::string& kubeconfig_flag, const std::string& context, const Getenv& env,
                               const InClusterPaths& paths) {
  if (!kubeconfig_flag.empty()) return load_kubeconfig(kubeconfig_flag, context);
  if (in_cluster_available(env)) return in_cluster_config(env, paths);
  if (auto kc = env("KUBECONFIG"); kc && !kc->empty()) {
    return load_kubeconfig(kc->substr(0, kc->find(':')), context);
  }
  if (auto home = env("HOME"); home && !home->empty()) {
    return load_kubeconfig(fs::path(*home) / ".kube" / "config", context);
  }
  throw Error(ErrorKind::Config, "no Kubernetes configuration: not in a cluster and no kubeconfig");
}

std::string base64_decode(std::string_view text) {
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  size_t pad = 0;
  for (char ch : text) {
    if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
    if (ch == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) throw Error(ErrorKind::Config, "invalid base64: data after padding");
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '+') v = 62;
    else if (ch == '/') v = 63;
    else throw Error(ErrorKind::Config, "invalid base64 character");
    buf = (buf << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xff));
    }
  }
  if (pad > 2 || bits >= 6) throw Error(ErrorKind::Config, "invalid base64 length");
  return out;
}

}  // namespace acme_sidecar::kube
