#pragma once
#include <stop_token>

#include "app/config.hpp"
#include "core/log.hpp"

namespace acme_sidecar::app {

// `acme-sidecar issue`: one certificate with the built-in responder, written to --out as tls.crt and
// tls.key (0600). Returns the exit status.
int run_oneshot(const Config& config, core::Logger log, std::stop_token stop);

}  // namespace acme_sidecar::app
