#pragma once
#include <stop_token>
#include <string>

#include "app/config.hpp"
#include "core/log.hpp"

namespace acme_sidecar::app {

struct BuildInfo {
  std::string version;
  std::string revision;
};

// Builds the real adapters from `config` and runs the sidecar until `stop` is requested (SIGTERM).
// Returns the process exit status: 0 after a clean shutdown, 1 when start-up failed.
int run_daemon(const Config& config, const BuildInfo& build, core::Logger log, std::stop_token stop);

}  // namespace acme_sidecar::app
