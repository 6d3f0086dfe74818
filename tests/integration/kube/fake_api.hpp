#pragma once
// Starts the fake-apiserver binary for one test and talks to its fault-control port.
#include <nlohmann/json.hpp>

#include <memory>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "http/curl_client.hpp"
#include "kube/config.hpp"
#include "tests/support/process.hpp"

namespace acme_sidecar::kube::it {

using namespace std::chrono_literals;

class FakeApi {
 public:
  explicit FakeApi(const std::string& bookmark_interval = "0.5") {
    namespace t = acme_sidecar::testing;
    t::Subprocess::Options o;
    o.argv = {FAKE_APISERVER_BIN, "--listen", "127.0.0.1:0", "--control-listen", "127.0.0.1:0",
              "--dir", dir_.path().string(), "--token", "a=token-a", "--token", "b=token-b",
              "--bookmark-interval", bookmark_interval};
    o.log_file = dir_ / "fake-apiserver.log";
    proc_ = std::make_unique<t::Subprocess>(o);
    if (!t::poll_until([&] { return std::filesystem::exists(dir_ / "ready"); }, 30s)) {
      throw std::runtime_error("fake-apiserver did not become ready: " + proc_->log());
    }
    ready_ = nlohmann::json::parse(t::read_file(dir_ / "ready"));
  }

  // Admin (empty user) or one of the token users "a", "b".
  KubeConfig config(const std::string& user = "") const {
    return load_kubeconfig(dir_ / (user.empty() ? "kubeconfig" : "kubeconfig-" + user));
  }

  nlohmann::json control(const std::string& method, const std::string& path, const nlohmann::json& body = {}) {
    http::Request r;
    r.method = method;
    r.url = ready_["control_url"].get<std::string>() + path;
    if (!body.is_null()) {
      r.body = body.dump();
      r.headers = {{"Content-Type", "application/json"}};
    }
    auto resp = control_http_.send(r);
    if (resp.status != 200) throw std::runtime_error("control " + path + ": " + resp.body);
    return nlohmann::json::parse(resp.body);
  }

  nlohmann::json request_log() { return control("GET", "/requests"); }
  std::string log() const { return proc_->log(); }

 private:
  acme_sidecar::testing::TempDir dir_{"kube-it"};
  std::unique_ptr<acme_sidecar::testing::Subprocess> proc_;
  nlohmann::json ready_;
  http::CurlClient control_http_;
};

}  // namespace acme_sidecar::kube::it
