// bench-responder PORT TOKEN KEY_AUTHORIZATION: the sidecar's HTTP-01 responder (challenge::Responder
// over an InMemoryChallengeStore holding one token) on 127.0.0.1:PORT, until SIGTERM/SIGINT.
// Lets tests/bench measure the responder alone with wrk, without Kubernetes or a CA.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "challenge/responder.hpp"
#include "challenge/store.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s PORT TOKEN KEY_AUTHORIZATION\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before the responder's threads start: they inherit it

  acme_sidecar::challenge::InMemoryChallengeStore store;
  store.put(argv[2], argv[3]);
  acme_sidecar::challenge::ResponderOptions options;
  options.listen = std::string("127.0.0.1:") + argv[1];
  acme_sidecar::challenge::Responder responder(store, options);
  std::printf("listening 127.0.0.1:%u\n", static_cast<unsigned>(responder.port()));
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
