#include "app/oneshot.hpp"

#include "acme/oneshot.hpp"

namespace acme_sidecar::app {

int run_oneshot(const Config& cfg, core::Logger log, std::stop_token stop) {
  acme::OneShotOptions o;
  o.domains = cfg.issue_domains;
  o.out_dir = cfg.issue_out_dir;
  o.challenge_listen = cfg.challenge_listen.str();
  // One-shot mode may answer the CA directly (e.g. 0.0.0.0:80 in a Job); the daemon never does.
  o.allow_non_loopback_listen = !is_loopback_host(cfg.challenge_listen.host);
  o.acme_directory = cfg.acme_directory;
  o.acme_ca_bundle = cfg.acme_ca_bundle;
  o.acme_email = cfg.acme_email;
  o.acme_eab_kid = cfg.acme_eab_kid;
  o.acme_eab_hmac_file = cfg.acme_eab_hmac_file;
  o.acme_profile = cfg.acme_profile;
  o.acme_preferred_chain = cfg.acme_preferred_chain;
  o.key_algorithm = cfg.key_algorithm;
  return acme::run_issue(o, log, std::move(stop));
}

}  // namespace acme_sidecar::app
