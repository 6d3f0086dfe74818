// Crash safety: SIGKILL the issuing sidecar at observed phases of an issuance (order created, challenge
// answered, finalized, Secret write in flight), restart it, repeat. A SecretWatcher checks every watch
// event of every managed Secret: each version must be a valid pair (key matches leaf, chain verifies).
// Afterwards every certificate is valid and the certificates Pebble issued stay within the resumable-order
// design (at most one extra per kill; counted from Pebble's own log).
// RELIABILITY_KILLS / RELIABILITY_LEADER_KILLS scale the loops (defaults 40 and 20: about 2.5 and 3.5
// minutes here; the full run sets both to 50).
#include <catch2/catch.hpp>
#include <iostream>

#include "tests/reliability/hygiene.hpp"
#include "tests/reliability/rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::reliability;
using nlohmann::json;

namespace {

const char* const kPhaseNames[] = {"before the order", "order created", "challenge answered", "finalized",
                                   "issued, Secret write in flight", "Secret written"};

std::vector<std::string> names_for(int i) {
  std::vector<std::string> n = {"crash.demo.example", "v" + std::to_string(i) + ".demo.example"};
  std::sort(n.begin(), n.end());
  return n;
}

void kill_loop(Rig& rig, int kills) {
  SecretWatcher watcher(rig);
  rig.apply(ingress_yaml("demo", "crash", names_for(0), "crash-tls"));
  rig.wait_valid("demo", "crash-tls", names_for(0));
  std::map<int, int> hits;
  int handovers = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= kills; ++i) {
    int target = -1;
    REQUIRE(testing::poll_until([&] { return (target = rig.leader()) >= 0; }, 60s));
    int aim = (i - 1) % 4;  // 0 order created, 1 challenge answered, 2 finalized, 3 Secret write
    auto log_from = rig.sidecar_log_size(target);
    auto chal_before = rig.pebble_count("POST /chalZ/");
    // The Secret write takes 800 ms at the API server, so a kill right after "certificate issued"
    // lands while the write is in flight.
    if (aim == 3) rig.api().set_latency(800ms, "PUT|POST", "/api/v1/namespaces/demo/secrets");
    rig.apply(ingress_yaml("demo", "crash", names_for(i), "crash-tls"));
    auto since = [&] { return rig.sidecar_log_from(target, log_from); };
    auto written = [&] {
      auto s = rig.secret("demo", "crash-tls");
      try {
        return s && Rig::leaf_names(*s) == names_for(i);
      } catch (const std::exception&) {
        return false;
      }
    };
    testing::poll_until(
        [&] {
          if (written()) return true;  // missed every phase: kill anyway
          switch (aim) {
            case 0: return since().find("created ACME order") != std::string::npos;
            case 1: return rig.pebble_count("POST /chalZ/") > chal_before;
            case 2: return since().find("finalized ACME order") != std::string::npos;
            default: return since().find("certificate issued") != std::string::npos;
          }
        },
        60s);
    rig.kill_sidecar(target);
    // Classify by what had been observed when the process died.
    auto log = since();
    int phase = 0;
    if (log.find("created ACME order") != std::string::npos || log.find("resuming ACME order") != std::string::npos)
      phase = 1;
    if (rig.pebble_count("POST /chalZ/") > chal_before) phase = 2;
    if (log.find("finalized ACME order") != std::string::npos) phase = 3;
    if (log.find("certificate issued") != std::string::npos) phase = 4;
    if (written()) phase = 5;
    ++hits[phase];
    rig.api().set_latency(0ms);
    if (rig.replicas() > 1) {
      // The other replica takes over once the Lease expires and resumes the order.
      if (testing::poll_until([&] { int l = rig.leader(); return l >= 0 && l != target; }, 30s)) ++handovers;
    }
    rig.start_sidecar(target);
    rig.wait_valid("demo", "crash-tls", names_for(i), 180s);
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto w = watcher.stats();
  auto finalizes = rig.pebble_count("POST /finalize-order");
  auto orders = rig.pebble_count("POST /order-plz");
  auto name_sets = static_cast<std::size_t>(kills + 1);
  std::cout << "[crash" << (rig.replicas() > 1 ? "/leader" : "") << "] injected: " << kills
            << " SIGKILLs of the issuing replica in " << secs << " s; kills by observed phase:";
  for (int p = 0; p < 6; ++p) std::cout << " [" << kPhaseNames[p] << "] " << hits[p];
  std::cout << "\n[crash" << (rig.replicas() > 1 ? "/leader" : "") << "] observed: " << name_sets << " name sets, Pebble orders " << orders << ", finalizes "
            << finalizes << ", distinct leaves in Secret events " << w.fingerprints.size() << ", secret events "
            << w.events << ", invalid " << w.invalid << ", watcher relists " << w.relists << ", leader handovers " << handovers << "\n";
  for (const auto& p : w.problems) UNSCOPED_INFO(p);
  CHECK(w.invalid == 0);
  CHECK(finalizes >= name_sets);
  CHECK(finalizes <= name_sets + static_cast<std::size_t>(kills));  // resumable orders: at most one extra per kill
  CHECK(orders <= name_sets + static_cast<std::size_t>(kills));
  for (const auto& s : rig.managed_secrets()) CHECK(rig.valid(s));
  check_hygiene(rig);
}

}  // namespace

TEST_CASE("SIGKILL at every phase of an issuance: only valid pairs are ever written, orders are resumed") {
  Rig rig;
  kill_loop(rig, env_int("RELIABILITY_KILLS", 40));
}

TEST_CASE("SIGKILL of the leader of two replicas at every phase: the other resumes, only valid pairs") {
  RigOptions o;
  o.replicas = 2;
  o.leader_elect = true;
  Rig rig(o);
  kill_loop(rig, env_int("RELIABILITY_LEADER_KILLS", 20));
}
