#include "app/daemon.hpp"

#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <malloc.h>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "acme/client.hpp"
#include "acme/oneshot.hpp"
#include "app/acme_issuer.hpp"
#include "app/event_sink.hpp"
#include "app/kube_adapters.hpp"
#include "app/observers.hpp"
#include "app/served_probe.hpp"
#include "challenge/responder.hpp"
#include "controller/controller.hpp"
#include "controller/crypto_inspector.hpp"
#include "controller/reconciler.hpp"
#include "core/error.hpp"
#include "crypto/encoding.hpp"
#include "crypto/x509.hpp"
#include "http/http1_client.hpp"
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/events.hpp"
#include "kube/informer.hpp"
#include "kube/leader.hpp"
#include "metrics/metrics.hpp"
#include "metrics/server.hpp"

namespace acme_sidecar::app {

using core::Error;
using core::ErrorKind;
using nlohmann::json;

namespace {

kube::ResourceRef ingress_classes() { return {"networking.k8s.io", "v1", "ingressclasses", false}; }

std::string own_namespace(const Config& c, const kube::KubeConfig& kc) {
  if (!c.namespace_.empty()) return c.namespace_;
  if (!kc.namespace_name.empty()) return kc.namespace_name;
  return "default";
}

std::string own_identity(const Config& c) {
  if (!c.pod_name.empty()) return c.pod_name;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0]) return std::string(host) + "-" + std::to_string(getpid());
  return "acme-sidecar-" + std::to_string(getpid());
}

// Events on Ingresses through the de-duplicating recorder.
class KubeEventSink final : public controller::EventSink {
 public:
  explicit KubeEventSink(kube::EventRecorder& recorder) : recorder_(recorder) {}
  void event(const core::IngressRef& ingress, controller::EventType type, std::string_view reason,
             std::string_view message) override {
    kube::ObjectReference ref;
    ref.api_version = "networking.k8s.io/v1";
    ref.kind = "Ingress";
    ref.namespace_name = ingress.namespace_name;
    ref.name = ingress.name;
    ref.uid = ingress.uid;
    recorder_.record(ref, type == controller::EventType::Warning ? kube::EventType::Warning : kube::EventType::Normal,
                     reason, message);
  }

 private:
  kube::EventRecorder& recorder_;
};

// The controller of one leadership term (a Controller runs once); informer handlers enqueue into it.
class ControllerSlot {
 public:
  void set(controller::Controller* c) {
    std::lock_guard lock(mu_);
    current_ = c;
  }
  template <typename F>
  void with(F&& f) {
    std::lock_guard lock(mu_);
    if (current_) f(*current_);
  }

 private:
  std::mutex mu_;
  controller::Controller* current_ = nullptr;
};

// Compares what the controller serves for each host with the leaf in the managed Secret (its digest was
// recorded when the Secret's resourceVersion was inspected).
void probe_served_certificates(const SecretCache& secrets, const HostPort& https, metrics::Metrics& m,
                               std::set<std::string>& known_hosts, const core::Logger& log) {
  std::set<std::string> seen;
  for (const auto& s : secrets.served_targets()) {
    const std::string expected = crypto::hex_encode(crypto::ByteView(s.leaf_sha256.data(), s.leaf_sha256.size()));
    const std::string& names = s.names;
    std::size_t start = 0;
    while (start <= names.size()) {
      auto comma = names.find(',', start);
      auto host = names.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      start = comma == std::string::npos ? names.size() + 1 : comma + 1;
      if (host.empty()) continue;
      seen.insert(host);
      try {
        auto served = fetch_served_certificate(https, host, std::chrono::seconds(5));
        m.served_certificate(s.namespace_name, s.name, host, served.sha256_fingerprint == expected, served.not_after);
      } catch (const Error& e) {
        m.served_certificate(s.namespace_name, s.name, host, false, std::nullopt);
        log.debug("served-certificate probe failed", {{"host", host}, {"error", e.what()}});
      }
    }
  }
  for (const auto& h : known_hosts)
    if (!seen.count(h)) m.remove_served_host(h);
  known_hosts = std::move(seen);
}

}  // namespace

int run_daemon(const Config& cfg, const BuildInfo& build, core::Logger log, std::stop_token stop) {
  // glibc gives each of the ~20 threads its own arena; freed memory then stays spread over all of them.
  // Two arenas keep the footprint near what is live (MALLOC_ARENA_MAX still wins when set).
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  // A fixed mmap threshold: glibc otherwise raises it to the largest block freed so far, and then each
  // scrape's ~5 MiB body (10,000 certificates) and each page of a list is carved from the heap and stays
  // resident after it is freed.
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") == nullptr) mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  core::SystemClock clock;
  auto random = core::default_random_source();
  prometheus::Registry registry;
  metrics::Metrics m(registry);
  m.build_info(build.version, build.revision);
  MetricsObserver observer(m);

  // --- Kubernetes -----------------------------------------------------------------------------
  kube::KubeConfig kube_config;
  try {
    kube_config = kube::load_default_config(cfg.kubeconfig, cfg.kube_context);
  } catch (const Error& e) {
    log.error("cannot load Kubernetes configuration", {{"error", e.what()}});
    return 1;
  }
  const std::string ns = own_namespace(cfg, kube_config);
  const std::string identity = own_identity(cfg);
  log = log.with("pod", identity);
  // Every issuance in flight holds a kept-alive connection per client; a pool smaller than that closes
  // connections after each burst of requests and the next request pays a new TCP and TLS handshake.
  // Sized to the workers, plus the informers' watches and the Lease.
  http::Http1Options pool;
  pool.max_idle_per_origin = static_cast<std::size_t>(std::max(cfg.max_concurrent_issuances, 1)) + 8;
  http::Http1Client kube_http(kube_config.tls, pool);
  kube::Client kube(kube_http, kube_config);
  kube.set_observer([&m](std::string_view verb, std::string_view resource, int code) {
    m.kube_request(verb, resource, code);
  });

  auto informer_metrics = [&m](const std::string& resource) {
    kube::InformerMetrics im;
    im.on_watch_restart = [&m, resource](std::string_view reason) { m.kube_watch_restart(resource, reason); };
    im.on_event = [&m, resource](core::TimePoint t) { m.kube_watch_event(resource, t); };
    return im;
  };

  ControllerSlot slot;
  const std::string managed_selector = std::string(kManagedByLabel) + "=" + kManagedByValue;

  // Ingresses of every watched namespace, decoded once into the lister's index; each change enqueues
  // the certificates it points at (before and after an update).
  kube::InformerHandlers class_handlers;
  kube::InformerOptions class_opts;
  class_opts.resource = ingress_classes();
  auto rescan = [&] { slot.with([](controller::Controller& c) { c.rescan(); }); };
  class_handlers.on_add = [&](const json&) { rescan(); };
  class_handlers.on_update = [&](const json&, const json&) { rescan(); };
  class_handlers.on_delete = [&](const json&) { rescan(); };
  kube::Informer classes(kube, class_opts, class_handlers, clock, random, log.with("informer", "ingressclasses"),
                         informer_metrics("ingressclasses"));
  InformerIngressLister lister(&classes, log.with("component", "ingresses"));

  // The informer keeps only metadata; the lister keeps the decoded views and hands back the previous
  // one, so an update or delete also enqueues the certificates the Ingress used to point at.
  auto enqueue_views = [&](const InformerIngressLister::Change& change) {
    slot.with([&](controller::Controller& c) {
      if (change.before) c.enqueue_ingress(*change.before);
      if (change.after) c.enqueue_ingress(*change.after);
    });
  };
  kube::InformerHandlers ingress_handlers;
  ingress_handlers.on_add = [&](const json& obj) { enqueue_views(lister.upsert(obj)); };
  ingress_handlers.on_update = [&](const json&, const json& new_obj) { enqueue_views(lister.upsert(new_obj)); };
  ingress_handlers.on_delete = [&](const json& obj) { enqueue_views({lister.erase(obj), std::nullopt}); };
  kube::InformerOptions ingress_opts;
  ingress_opts.resource = kube::resources::ingresses();
  ingress_opts.namespace_name = cfg.watch_namespace;
  ingress_opts.keys_only = true;  // the lister keeps the decoded Ingresses
  kube::Informer ingresses(kube, ingress_opts, ingress_handlers, clock, random, log.with("informer", "ingresses"),
                           informer_metrics("ingresses"));

  // Managed Secrets only (label-selected: never a cache of every Secret of the cluster), kept as
  // metadata + inspected facts by the SecretCache; the informer itself keeps only metadata.
  // The SecretCache inspects once per resourceVersion; the memo only has to bridge a write and its own
  // watch event (the same bytes), so a small one will do: 2 × 4096 entries held ~2 MiB at 10,000 Secrets.
  controller::CryptoInspector inspector(512);
  SecretCache secret_cache(inspector);
  kube::InformerHandlers secret_handlers;
  auto secret_changed = [&](const json& obj) {
    auto key = kube::Informer::key_of(obj);
    slot.with([&](controller::Controller& c) { c.enqueue(key); });
  };
  // The echo of our own write is not reconciled again: the reconcile that wrote it returned with the
  // certificate's renewal time, and a change to its Ingress arrives through the Ingress informer.
  secret_handlers.on_add = [&](const json& obj) {
    if (!secret_cache.upsert(obj)) secret_changed(obj);
  };
  secret_handlers.on_update = [&](const json&, const json& obj) {
    if (!secret_cache.upsert(obj)) secret_changed(obj);
  };
  secret_handlers.on_delete = [&](const json& obj) {
    secret_cache.erase(obj);
    secret_changed(obj);
  };
  kube::InformerOptions secret_opts;
  secret_opts.resource = kube::resources::secrets();
  secret_opts.namespace_name = cfg.watch_namespace;
  // Not the order-state Secrets (they carry our label too): each issuance would otherwise bring two watch
  // events (create, delete) with a private key to decode, cache and reconcile for nothing.
  secret_opts.label_selector = managed_selector + ",!" + kOrderLabel;
  secret_opts.keys_only = true;  // the SecretCache keeps what it needs
  kube::Informer secrets(kube, secret_opts, secret_handlers, clock, random, log.with("informer", "secrets"),
                         informer_metrics("secrets"));
  // Which Secrets exist at all, ours or not: metadata only (no data on the wire), keys only in memory.
  // A new certificate's Secret name that is not there needs no GET before the CA is asked.
  kube::InformerOptions names_opts;
  names_opts.resource = kube::resources::secrets();
  names_opts.namespace_name = cfg.watch_namespace;
  names_opts.label_selector = std::string("!") + kOrderLabel;  // order states are ours and never a target
  names_opts.representation = kube::Representation::MetadataOnly;
  names_opts.keys_only = true;
  kube::Informer secret_names(kube, names_opts, {}, clock, random, log.with("informer", "secret-names"),
                              informer_metrics("secrets-metadata"));

  // --- Challenges -----------------------------------------------------------------------------
  std::unique_ptr<KubeChallengeStore> kube_challenges;
  std::unique_ptr<challenge::InMemoryChallengeStore> memory_challenges;
  std::unique_ptr<kube::Informer> challenge_informer;
  challenge::ChallengeStore* store = nullptr;
  acme::ChallengePublisher* publisher = nullptr;
  // A single replica keeps challenges in memory; with several, they are shared through ConfigMaps.
  std::unique_ptr<acme::StorePublisher> memory_publisher;
  if (cfg.leader_elect) {
    kube_challenges = std::make_unique<KubeChallengeStore>(kube, ns, log.with("component", "challenges"));
    kube::InformerOptions cm_opts;
    cm_opts.resource = kube::resources::configmaps();
    cm_opts.namespace_name = ns;
    cm_opts.label_selector = std::string(kChallengeLabel) + "=true";
    challenge_informer = std::make_unique<kube::Informer>(kube, cm_opts, kube_challenges->handlers(), clock, random,
                                                          log.with("informer", "challenges"),
                                                          informer_metrics("configmaps"));
    store = kube_challenges.get();
    publisher = kube_challenges.get();
  } else {
    memory_challenges = std::make_unique<challenge::InMemoryChallengeStore>();
    memory_publisher = std::make_unique<acme::StorePublisher>(*memory_challenges);
    store = memory_challenges.get();
    publisher = memory_publisher.get();
  }

  std::unique_ptr<challenge::Responder> responder;
  std::unique_ptr<metrics::Server> metrics_server;
  try {
    challenge::ResponderOptions ropts;
    ropts.listen = cfg.challenge_listen.str();
    ropts.observer = [&m](challenge::Result r) { m.challenge_request(challenge::to_string(r)); };
    responder = std::make_unique<challenge::Responder>(*store, ropts, log.with("component", "responder"));
    metrics::ServerOptions mopts;
    mopts.listen = cfg.metrics_listen.str();
    mopts.readiness = [&]() {
      std::vector<metrics::ReadinessCheck> checks;
      checks.push_back({"informer-ingresses", ingresses.synced(), "Ingress list not complete yet"});
      checks.push_back({"informer-secrets", secrets.synced(), "Secret list not complete yet"});
      if (challenge_informer) checks.push_back({"informer-challenges", challenge_informer->synced(), "not synced"});
      return checks;
    };
    metrics_server = std::make_unique<metrics::Server>([&m](std::string& out) { m.append_exposition(out); }, mopts);
  } catch (const Error& e) {
    log.error("cannot listen", {{"error", e.what()}});
    return 1;
  }
  log.info("listening", {{"challenges", responder->host() + ":" + std::to_string(responder->port())},
                         {"metrics", metrics_server->host() + ":" + std::to_string(metrics_server->port())}});

  // --- ACME -----------------------------------------------------------------------------------
  http::TlsOptions acme_tls;
  acme_tls.ca_file = cfg.acme_ca_bundle;
  http::Http1Client acme_http(acme_tls, pool);
  SecretAccountKeyStore account_keys(kube, ns, cfg.acme_directory);
  acme::ClientOptions acme_opts;
  acme_opts.directory_url = cfg.acme_directory;
  if (!cfg.acme_email.empty()) acme_opts.contact.push_back("mailto:" + cfg.acme_email);
  acme_opts.preferred_chain = cfg.acme_preferred_chain;
  if (!cfg.acme_eab_kid.empty()) {
    std::ifstream in(cfg.acme_eab_hmac_file);
    std::string hmac;
    std::getline(in, hmac);
    acme_opts.eab = acme::ExternalAccountBinding{cfg.acme_eab_kid, hmac};
  }
  acme::AcmeClient acme_client(acme_http, clock, log.with("component", "acme"), account_keys, acme_opts, &observer);
  OrderStateStore orders(kube, ns, log.with("component", "orders"));
  http::Http1Client self_check_http({}, pool);
  acme::SelfCheck self_check;
  if (cfg.self_check) self_check = make_self_check(self_check_http, cfg.controller_http, clock, log);
  AcmeIssuer issuer(acme_client, *publisher, &orders, self_check, cfg.acme_directory, log.with("component", "issuer"));
  AriSource ari(acme_client, clock, cfg.ari_check_interval, random, log.with("component", "ari"));

  // --- Controller -----------------------------------------------------------------------------
  KubeSecretStore secret_store(
      kube, &secret_cache, [&orders](const std::string& key) { orders.remove(key); }, &secret_names);
  kube::EventRecorderOptions event_opts;
  event_opts.host = identity;
  kube::EventRecorder recorder(kube, clock, log.with("component", "events"), event_opts);
  KubeEventSink kube_events(recorder);
  // An issuance that ends within this delay writes its outcome Event only, not "Issuing" as well.
  DeferredEventSink events(kube_events, clock, std::chrono::seconds(10));

  controller::ReconcilerConfig rc;
  rc.desired.classes.ingress_class = cfg.ingress_class;
  rc.desired.classes.watch_without_class = cfg.watch_ingress_without_class;
  rc.desired.classes.require_opt_in = cfg.require_opt_in;
  rc.desired.default_key_algorithm = cfg.key_algorithm;
  rc.desired.default_profile = cfg.acme_profile;
  rc.renewal.renew_before_fraction = cfg.renew_before_fraction;
  rc.renewal.issuer = cfg.acme_directory;
  rc.owner_references = cfg.owner_references;
  controller::Reconciler reconciler(
      controller::ReconcilerDeps{lister, secret_store, issuer, inspector, events, clock,
                                 log.with("component", "reconciler"), random, &observer, &ari},
      rc);
  controller::ControllerConfig cc;
  cc.max_concurrent_issuances = static_cast<std::size_t>(cfg.max_concurrent_issuances);
  cc.rescan_interval = cfg.rescan_interval;
  cc.failure_backoff = cfg.failure_backoff;
  // Deciding thousands of certificates after a (re)start or rescan leaves freed pages in the allocator's
  // arenas (transient Secret reads, reports, log lines): hand them back once the burst is over.
  cc.after_rescan_drained = [] { malloc_trim(0); };

  // One leadership term: a fresh Controller that runs until the term ends.
  std::mutex term_mu;
  std::jthread term;
  auto start_term = [&] {
    std::lock_guard lock(term_mu);
    m.leader(true);
    orders.begin_term();  // a previous leader may have left order states to resume
    if (kube_challenges) kube_challenges->clean_stale(clock.now(), std::chrono::hours(1));
    term = std::jthread([&](std::stop_token term_stop) {
      controller::Controller c(reconciler, clock, random, log.with("component", "controller"), cc, &observer);
      slot.set(&c);
      c.rescan();
      c.run(term_stop);
      slot.set(nullptr);
    });
  };
  auto end_term = [&] {
    std::lock_guard lock(term_mu);
    m.leader(false);
    if (term.joinable()) {
      term.request_stop();
      term.join();
    }
    orders.flush();  // finished orders' states go now, not with a later term's batch
  };

  // --- Run ------------------------------------------------------------------------------------
  std::vector<std::jthread> threads;
  threads.emplace_back([&](std::stop_token st) { ingresses.run(st); });
  threads.emplace_back([&](std::stop_token st) { classes.run(st); });
  threads.emplace_back([&](std::stop_token st) { secrets.run(st); });
  threads.emplace_back([&](std::stop_token st) { secret_names.run(st); });
  threads.emplace_back([&](std::stop_token st) { events.run(st); });
  if (challenge_informer) threads.emplace_back([&](std::stop_token st) { challenge_informer->run(st); });

  // Decisions need complete caches: a partial list would look like missing Secrets.
  for (auto* inf : {&ingresses, &classes, &secrets}) {
    while (!stop.stop_requested() && !inf->wait_for_sync(stop, std::chrono::seconds(1))) {
    }
  }
  if (stop.stop_requested()) {
    // Stop every informer at once: the jthreads' destructors would stop and join them one by one,
    // each waiting for its watch to notice (up to a second each).
    for (auto& t : threads) t.request_stop();
    return 0;
  }
  log.info("caches synced", {{"ingresses", std::to_string(ingresses.size())},
                             {"managed_secrets", std::to_string(secrets.size())}});
  // The first lists went through pages of full objects that are all freed now: hand those pages back
  // to the kernel instead of keeping them in the allocator's free lists for the life of the process.
  malloc_trim(0);

  // The elector gets its own client whose requests end well before the renew deadline, so a hung
  // request can never keep a stale leader believing it still leads.
  kube::Client lease_client(kube_http, kube_config);
  lease_client.set_request_timeout(std::chrono::duration_cast<std::chrono::milliseconds>(cfg.lease_renew_deadline / 2));
  lease_client.set_observer([&m](std::string_view verb, std::string_view resource, int code) {
    m.kube_request(verb, resource, code);
  });
  kube::KubeLeaseLock lease_lock(lease_client, ns, cfg.lease_name);
  std::unique_ptr<kube::LeaderElector> elector;
  if (cfg.leader_elect) {
    kube::LeaderElectionConfig lec;
    lec.identity = identity;
    lec.lease_duration = cfg.lease_duration;
    lec.renew_deadline = cfg.lease_renew_deadline;
    lec.retry_period = cfg.lease_retry_period;
    kube::LeaderCallbacks cbs;
    cbs.on_started_leading = start_term;
    cbs.on_stopped_leading = end_term;
    cbs.on_new_leader = [&log](const std::string& who) { log.info("leader observed", {{"leader", who}}); };
    elector = std::make_unique<kube::LeaderElector>(lease_lock, lec, cbs, clock, log.with("component", "leader"),
                                                    random);
    threads.emplace_back([&](std::stop_token st) { elector->run(st); });
  } else {
    start_term();
  }

  // Served-certificate probe on every replica.
  threads.emplace_back([&](std::stop_token st) {
    std::set<std::string> hosts;
    // The first probe waits one interval: at start-up the CPU belongs to deciding every certificate, and
    // a probe is one TLS handshake per host (10,000 at once with 10,000 Ingresses).
    while (clock.sleep_for(cfg.served_probe_interval, st)) {
      probe_served_certificates(secret_cache, cfg.controller_https, m, hosts, log);
    }
  });

  // Wait for SIGTERM, then stop taking work, let in-flight orders see the stop, release the Lease.
  std::mutex wait_mu;
  std::condition_variable_any wait_cv;
  {
    std::unique_lock lock(wait_mu);
    wait_cv.wait(lock, stop, [] { return false; });
  }
  log.info("shutting down");
  // Stopping the elector ends the term (on_stopped_leading) and releases the Lease.
  for (auto& t : threads) t.request_stop();
  for (auto& t : threads) t.join();
  end_term();
  responder.reset();
  metrics_server.reset();
  log.info("stopped");
  return 0;
}

}  // namespace acme_sidecar::app
