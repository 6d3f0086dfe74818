// The only place that builds real adapters and wires them (see app/).
#include <cstdio>
#include <string>

#include "app/config.hpp"

int main(int argc, char** argv) {
  using acme_sidecar::app::Config;
  const std::string version = std::string("acme-sidecar ") + ACME_SIDECAR_VERSION + " (revision " +
                              ACME_SIDECAR_REVISION + ")";
  auto parsed = acme_sidecar::app::parse_config(argc, argv, version);
  if (!parsed.config) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exit_code;
  }
  std::fprintf(stderr, "acme-sidecar: the daemon is not wired yet\n");
  return 1;
}
