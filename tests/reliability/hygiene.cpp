#include "tests/reliability/hygiene.hpp"

#include <catch2/catch.hpp>
#include <iostream>
#include <set>
#include <sstream>

#include "crypto/encoding.hpp"
#include "tests/reliability/rig.hpp"

namespace acme_sidecar::reliability {

using nlohmann::json;

namespace {
std::string decode(const std::string& b64) {
  try {
    auto b = crypto::base64_decode(b64);
    return std::string(b.begin(), b.end());
  } catch (const std::exception&) {
    return {};
  }
}

// Slices that identify a key: pieces of its PEM body (base64 text) and of the base64 of the whole PEM.
std::vector<std::string> fingerprints_of(const std::string& pem, const std::string& stored_b64) {
  std::vector<std::string> out;
  std::string body;
  std::istringstream in(pem);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("-----", 0) != 0) body += line;
  for (std::size_t off = 0; off + 48 <= body.size(); off += 97) out.push_back(body.substr(off, 48));
  for (std::size_t off = 64; off + 48 <= stored_b64.size(); off += 131) out.push_back(stored_b64.substr(off, 48));
  return out;
}
}  // namespace

HygieneReport scan_hygiene(Rig& rig, const std::vector<std::string>& extra_keys) {
  HygieneReport rep;
  std::vector<std::string> needles;
  std::set<std::string> seen;
  auto add_key = [&](const std::string& pem, const std::string& stored) {
    if (pem.find("PRIVATE KEY") == std::string::npos || !seen.insert(pem).second) return;
    ++rep.keys;
    for (auto& n : fingerprints_of(pem, stored)) needles.push_back(n);
  };
  for (const auto& s : rig.api().list("secrets")) {
    if (!s.contains("data") || !s["data"].is_object()) continue;
    for (const auto& [k, v] : s["data"].items())
      if (v.is_string()) add_key(decode(v.get<std::string>()), v.get<std::string>());
  }
  for (const auto& pem : extra_keys) add_key(pem, crypto::base64_encode(std::string_view(pem)));

  std::vector<std::pair<std::string, std::string>> haystacks;
  for (int i = 0; i < rig.replicas(); ++i) {
    haystacks.emplace_back("sidecar-" + std::to_string(i) + " log", rig.sidecar_log(i));
    haystacks.emplace_back("sidecar-" + std::to_string(i) + " metrics", rig.metrics(i));
  }
  std::string events;
  for (const auto& e : rig.api().list("events")) events += e.dump() + "\n";
  for (const auto& e : rig.api().list("events.events.k8s.io")) events += e.dump() + "\n";
  haystacks.emplace_back("Events", events);
  std::string cms;
  for (const auto& c : rig.api().list("configmaps")) cms += c.dump() + "\n";
  haystacks.emplace_back("ConfigMaps", cms);

  for (const auto& [what, text] : haystacks) {
    rep.bytes_scanned += text.size();
    if (text.find("PRIVATE KEY") != std::string::npos) rep.findings.push_back(what + ": PEM armour \"PRIVATE KEY\"");
    for (const auto& n : needles)
      if (text.find(n) != std::string::npos) {
        rep.findings.push_back(what + ": key material " + n.substr(0, 12) + "...");
        break;
      }
  }
  return rep;
}

void check_hygiene(Rig& rig, const std::vector<std::string>& extra_keys) {
  auto rep = scan_hygiene(rig, extra_keys);
  std::cout << "[hygiene] scanned " << rep.bytes_scanned << " bytes of logs, Events, ConfigMaps and metrics for "
            << rep.keys << " private keys: " << rep.findings.size() << " findings\n";
  for (const auto& f : rep.findings) UNSCOPED_INFO(f);
  CHECK(rep.keys > 0);
  CHECK(rep.findings.empty());
}

}  // namespace acme_sidecar::reliability
