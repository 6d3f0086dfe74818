// The only place that builds the process-wide pieces (logger, signal handling) and hands them to app/.
#include <signal.h>

#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>

#include "app/config.hpp"
#include "app/daemon.hpp"
#include "app/oneshot.hpp"
#include "core/log.hpp"

int main(int argc, char** argv) {
  using namespace acme_sidecar;
  const std::string version = std::string("acme-sidecar ") + ACME_SIDECAR_VERSION + " (revision " +
                              ACME_SIDECAR_REVISION + ")";
  auto parsed = app::parse_config(argc, argv, version);
  if (!parsed.config) {
    std::fprintf(parsed.exit_code == 0 ? stdout : stderr, "%s\n", parsed.message.c_str());
    return parsed.exit_code;
  }
  const app::Config& config = *parsed.config;
  core::Logger log(core::stderr_sink(), core::parse_log_level(config.log_level));

  // SIGTERM/SIGINT become a stop request, handled on a dedicated thread (no work in a signal handler).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  std::stop_source stop;
  std::thread([signals, &stop]() mutable {
    int sig = 0;
    sigwait(&signals, &sig);
    stop.request_stop();
  }).detach();

  if (config.mode == app::Config::Mode::Issue) return app::run_oneshot(config, log, stop.get_token());
  return app::run_daemon(config, app::BuildInfo{ACME_SIDECAR_VERSION, ACME_SIDECAR_REVISION}, log, stop.get_token());
}
