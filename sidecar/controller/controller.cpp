#include "controller/controller.hpp"

#include <algorithm>
#include <thread>
#include <vector>

#include "core/error.hpp"

namespace acme_sidecar::controller {

namespace {
std::string seconds_text(core::Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + "s";
}
}  // namespace

Controller::Controller(Reconciler& reconciler, core::Clock& clock, core::RandomSource random, core::Logger log,
                       ControllerConfig config, ControllerObserver* observer)
    : reconciler_(reconciler),
      clock_(clock),
      log_(std::move(log)),
      config_(std::move(config)),
      observer_(observer),
      queue_(clock, config_.failure_backoff, random ? std::move(random) : core::default_random_source()) {
  if (config_.max_concurrent_issuances == 0) config_.max_concurrent_issuances = 1;
}

Controller::~Controller() { queue_.shutdown(); }

void Controller::enqueue(const std::string& key) { queue_.add(key); }

void Controller::enqueue_ingress(const core::IngressView& ingress) {
  for (const auto& key : core::certificate_keys(ingress)) queue_.add(key);
}

void Controller::rescan() {
  try {
    auto scan = reconciler_.scan();
    for (const auto& key : scan.keys) queue_.add(key);
    // Armed after the keys are queued, so a worker cannot see an empty queue half-way through adding them.
    if (config_.after_rescan_drained) {
      drain_pending_ = true;
      notify_if_drained();
    }
    if (observer_) observer_->managed_certificates(scan.desired);
    log_.debug("rescan", {{"keys", std::to_string(scan.keys.size())}});
  } catch (const std::exception& e) {
    log_.error("rescan failed", {{"error", e.what()}});
  }
}

void Controller::run(std::stop_token stop) {
  {
    std::vector<std::jthread> workers;
    for (std::size_t i = 0; i < config_.max_concurrent_issuances; ++i) {
      workers.emplace_back([this, stop] { worker(stop); });
    }
    std::stop_callback on_stop(stop, [this] { queue_.shutdown(); });
    rescan();
    while (clock_.sleep_for(config_.rescan_interval, stop)) rescan();
    queue_.shutdown();
  }  // joins the workers
}

void Controller::worker(std::stop_token stop) {
  while (auto key = queue_.get(stop)) {
    if (stop.stop_requested()) {
      queue_.done(*key);
      break;
    }
    process(*key, stop);
    queue_.done(*key);
    notify_if_drained();
  }
}

void Controller::notify_if_drained() {
  if (drain_pending_ && queue_.len() == 0 && queue_.processing() == 0 && drain_pending_.exchange(false))
    config_.after_rescan_drained();
}

void Controller::process(const std::string& key, std::stop_token stop) {
  auto log = log_.with("secret", key);
  ReconcileOptions options;
  {
    std::lock_guard lock(mu_);
    if (auto it = backoff_until_.find(key); it != backoff_until_.end()) options.retry_not_before = it->second;
  }
  auto failed = [&](std::optional<std::chrono::seconds> retry_after, const std::string& what) {
    auto at_least = retry_after ? core::Duration(*retry_after) : core::Duration::zero();
    // Read the clock first: the gate must never lie beyond the queue's own timer for this key.
    auto now = clock_.now();
    auto delay = queue_.add_rate_limited(key, at_least);
    {
      std::lock_guard lock(mu_);
      backoff_until_[key] = now + delay;
    }
    log.warn("reconcile failed, backing off",
             {{"error", what}, {"retry_in", seconds_text(delay)}, {"failures", std::to_string(queue_.num_requeues(key))}});
  };
  try {
    auto result = reconciler_.reconcile(key, options, stop);
    if (result.deferred) {
      queue_.add_after(key, result.requeue_after.value_or(core::Duration(std::chrono::seconds(1))));
      return;
    }
    queue_.forget(key);
    {
      std::lock_guard lock(mu_);
      backoff_until_.erase(key);
    }
    if (result.requeue_after) queue_.add_after(key, *result.requeue_after);
  } catch (const core::Error& e) {
    if (e.kind() == core::ErrorKind::Cancelled && stop.stop_requested()) return;
    failed(e.retry_after, e.what());
  } catch (const std::exception& e) {
    failed(std::nullopt, e.what());
  }
}

}  // namespace acme_sidecar::controller
