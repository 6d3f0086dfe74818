#pragma once
// Secrets hygiene: no private key material in any sidecar log line, Event, ConfigMap or metric.
#include <string>
#include <vector>

#include "tests/reliability/rig.hpp"

namespace acme_sidecar::reliability {

struct HygieneReport {
  std::size_t keys = 0;           // private keys looked for
  std::size_t bytes_scanned = 0;  // logs + Events + ConfigMaps + metrics
  std::vector<std::string> findings;
};

// Collects every private key in the API store (tls.key, order-state key.pem, account keys) plus
// `extra_keys` (PEM) and looks for the PEM armour "PRIVATE KEY", 48-character slices of each key's
// base64 body, and of the base64 of the whole PEM (as it sits in Secret data), in every replica's log,
// all Events, all ConfigMaps and each replica's /metrics.
HygieneReport scan_hygiene(Rig& rig, const std::vector<std::string>& extra_keys = {});
// scan_hygiene + CHECK that nothing was found + a line on stdout.
void check_hygiene(Rig& rig, const std::vector<std::string>& extra_keys = {});

}  // namespace acme_sidecar::reliability
