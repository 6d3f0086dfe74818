#pragma once
// Served-certificate probe: completes a TLS handshake with the local ingress controller (SNI = host)
// and reports the leaf it serves, so "renewed Secret, old certificate still served" becomes visible.
#include <chrono>
#include <string>

#include "app/config.hpp"
#include "core/clock.hpp"

namespace acme_sidecar::app {

struct ServedCertificate {
  std::string sha256_fingerprint;  // lower-case hex of the leaf's DER
  core::TimePoint not_after;
};

// Throws core::Error(Transport|Timeout) when no handshake completes, Crypto when no certificate comes.
// The peer is not verified: we only compare what is served with what we wrote.
ServedCertificate fetch_served_certificate(const HostPort& address, const std::string& sni,
                                           std::chrono::milliseconds timeout);

}  // namespace acme_sidecar::app
