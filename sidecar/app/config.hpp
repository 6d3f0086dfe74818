#pragma once
#include <string>
namespace acme_sidecar::app {
struct Config { std::string log_level = "info"; };
}
