#pragma once
// The queue loop: event handlers and the periodic rescan turn objects into certificate keys; bounded
// workers reconcile them; this loop alone decides forget / retry-with-backoff / requeue-at-renewal.
// One broken certificate never blocks the others: each key backs off on its own.
#include <cstddef>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>

#include "controller/reconciler.hpp"
#include "controller/work_queue.hpp"
#include "core/backoff.hpp"
#include "core/log.hpp"

namespace acme_sidecar::controller {

struct ControllerConfig {
  std::size_t max_concurrent_issuances = 4;  // --max-concurrent-issuances (= worker count)
  core::Duration rescan_interval = std::chrono::hours(1);  // --rescan-interval
  core::BackoffPolicy failure_backoff = core::BackoffPolicy::parse("1m,10m,100m,24h");  // --failure-backoff
  // Called on a worker once the queue is empty and idle after a rescan's burst (at most once per rescan).
  std::function<void()> after_rescan_drained;
};

class Controller {
 public:
  Controller(Reconciler& reconciler, core::Clock& clock, core::RandomSource random, core::Logger log,
             ControllerConfig config, ControllerObserver* observer = nullptr);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // For event handlers: a key ("namespace/secretName") to look at now.
  void enqueue(const std::string& key);
  // Every key an Ingress points at (call with both the old and the new object of an update).
  void enqueue_ingress(const core::IngressView& ingress);
  // Enqueues every desired (and previously reported) key; reports the managed count.
  void rescan();

  // Runs the workers and the rescan timer until `stop`; then stops taking keys and waits for the
  // reconciles in flight (they see `stop` too). Call once per Controller.
  void run(std::stop_token stop);

  WorkQueue<std::string>& queue() { return queue_; }

 private:
  void worker(std::stop_token stop);
  void process(const std::string& key, std::stop_token stop);
  void notify_if_drained();

  Reconciler& reconciler_;
  core::Clock& clock_;
  core::Logger log_;
  ControllerConfig config_;
  ControllerObserver* observer_;
  WorkQueue<std::string> queue_;

  std::mutex mu_;
  std::map<std::string, core::TimePoint> backoff_until_;  // keys in failure backoff
  std::atomic<bool> drain_pending_{false};               // a rescan's burst has not drained yet
};

}  // namespace acme_sidecar::controller
