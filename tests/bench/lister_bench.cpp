// bench-lister [N...]: the cost of one reconcile's Ingress gathering, before and after the fix (the
// indexed app::InformerIngressLister, measured first). The old path, which the sidecar paid once per
// certificate key. It mirrors the production path exactly: kube::Informer::list() copies every cached
// object under the informer's lock, app::InformerIngressLister::list(ns) decodes each with
// controller::decode_ingress and filters by namespace afterwards, then core::desired_certificates runs
// over the namespace's Ingresses. Prints milliseconds per call and the implied startup cost (N calls).
#include "app/kube_adapters.hpp"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/decode.hpp"
#include "core/desired.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

static json ingress(int i) {
  std::string n = std::to_string(i), host = "s" + n + ".bench.example";
  return json{{"apiVersion", "networking.k8s.io/v1"},
              {"kind", "Ingress"},
              {"metadata",
               {{"name", "ing-" + n},
                {"namespace", "bench"},
                {"uid", "0f0e0d0c-0b0a-0908-0706-05040302" + std::to_string(1000 + i % 9000)},
                {"resourceVersion", std::to_string(100 + i)},
                {"generation", 1},
                {"creationTimestamp", "2026-11-23T21:00:00Z"}}},
              {"spec",
               {{"ingressClassName", "nginx"},
                {"tls", json::array({{{"hosts", {host}}, {"secretName", "tls-" + n}}})},
                {"rules", json::array({{{"host", host},
                                        {"http",
                                         {{"paths", json::array({{{"path", "/"},
                                                                  {"pathType", "Prefix"},
                                                                  {"backend",
                                                                   {{"service",
                                                                     {{"name", "web"},
                                                                      {"port", {{"number", 80}}}}}}}}})}}}}})}}},
              {"status", {{"loadBalancer", json::object()}}}};
}

int main(int argc, char** argv) {
  std::vector<int> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  if (sizes.empty()) sizes = {100, 1000, 10000};
  acme_sidecar::core::DesiredConfig cfg;
  cfg.classes.ingress_class = "nginx";
  for (int n : sizes) {
    std::map<std::string, json> cache;  // the informer's cache
    for (int i = 0; i < n; ++i) cache.emplace("bench/ing-" + std::to_string(i), ingress(i));
    int iters = n >= 10000 ? 10 : n >= 1000 ? 50 : 500;
    double copy_ms = 0, decode_ms = 0, desired_ms = 0;
    std::size_t certs = 0;
    for (int it = 0; it < iters; ++it) {
      auto t0 = Clock::now();
      std::vector<json> objs;  // Informer::list()
      objs.reserve(cache.size());
      for (const auto& [k, v] : cache) objs.push_back(v);
      auto t1 = Clock::now();
      std::vector<acme_sidecar::core::IngressView> views;  // InformerIngressLister::list("bench")
      for (const auto& o : objs) {
        auto d = acme_sidecar::controller::decode_ingress(o);
        if (d.value.namespace_name != "bench") continue;
        views.push_back(std::move(d.value));
      }
      auto t2 = Clock::now();
      auto state = acme_sidecar::core::desired_certificates(views, cfg);
      auto t3 = Clock::now();
      certs = state.certificates.size();
      copy_ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
      decode_ms += std::chrono::duration<double, std::milli>(t2 - t1).count();
      desired_ms += std::chrono::duration<double, std::milli>(t3 - t2).count();
    }
    // Now: the indexed lister the daemon uses (decoded once per change, looked up by Secret).
    acme_sidecar::app::InformerIngressLister lister(nullptr, acme_sidecar::core::Logger::discard());
    for (const auto& [k, v] : cache) lister.upsert(v);
    double indexed_ms = 0;
    for (int it = 0; it < iters; ++it) {
      auto t0 = Clock::now();
      auto views = lister.list_for_secret("bench", "tls-" + std::to_string(it % n));
      auto state = acme_sidecar::core::desired_certificates(views, cfg);
      indexed_ms += std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    }
    std::printf("N=%d: indexed lister per reconcile %.3f ms; x N keys = %.2f s of CPU\n", n, indexed_ms / iters,
                indexed_ms / iters * n / 1000.0);
    double per = (copy_ms + decode_ms + desired_ms) / iters;
    std::printf("N=%d: per reconcile %.2f ms (copy %.2f, decode %.2f, desired_certificates %.2f; %zu certificates); "
                "x N keys at startup = %.1f s of CPU\n",
                n, per, copy_ms / iters, decode_ms / iters, desired_ms / iters, certs, per * n / 1000.0);
  }
  return 0;
}
