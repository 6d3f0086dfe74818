#pragma once
// A work queue with client-go's semantics (k8s.io/client-go/util/workqueue):
//  - add() de-duplicates while a key waits; a key being processed is marked dirty and re-queued by done(),
//    so a key is never handed to two workers at once;
//  - add_after() delays a key on the injected Clock (the earliest pending time wins);
//  - add_rate_limited() delays by the per-key failure count through core::BackoffPolicy; forget() resets it;
//  - shutdown() stops accepting keys; get() drains what is queued, then returns nullopt.
// Thread-safe. A background thread moves due delayed keys into the queue; it sleeps on the Clock, so a
// ManualClock's advance() is what makes delayed keys appear in tests.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/backoff.hpp"
#include "core/clock.hpp"

namespace acme_sidecar::controller {

template <typename Key, typename Hash = std::hash<Key>>
class WorkQueue {
 public:
  WorkQueue(core::Clock& clock, core::BackoffPolicy backoff, core::RandomSource random)
      : clock_(clock), backoff_(std::move(backoff)), random_(std::move(random)) {
    delayer_ = std::jthread([this](std::stop_token stop) { delay_loop(stop); });
  }
  ~WorkQueue() {
    shutdown();
    delayer_.request_stop();
    {
      std::lock_guard lock(mu_);
      wake_delayer_.request_stop();
    }
    delay_cv_.notify_all();
  }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void add(const Key& key) {
    std::lock_guard lock(mu_);
    add_locked(key);
  }

  // Queues `key` once `delay` has passed on the clock. When the key already waits, the earlier time wins.
  void add_after(const Key& key, core::Duration delay) {
    if (delay <= core::Duration::zero()) return add(key);
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    auto at = clock_.now() + delay;
    auto it = waiting_.find(key);
    if (it != waiting_.end()) {
      if (it->second <= at) return;
      erase_timer(key, it->second);
      it->second = at;
    } else {
      waiting_.emplace(key, at);
    }
    bool earliest = timers_.empty() || at < timers_.begin()->first;
    timers_.emplace(at, key);
    if (earliest) wake_delayer_.request_stop();  // re-plan the sleep
    delay_cv_.notify_all();
  }

  // Delay after one more failure of `key`; at least `at_least` (e.g. a server's Retry-After). Returns the delay.
  core::Duration add_rate_limited(const Key& key, core::Duration at_least = core::Duration::zero()) {
    core::Duration delay;
    {
      std::lock_guard lock(mu_);
      int n = ++failures_[key];
      delay = core::backoff_delay(backoff_, n, random_);
    }
    if (delay < at_least) delay = at_least;
    add_after(key, delay);
    return delay;
  }

  void forget(const Key& key) {
    std::lock_guard lock(mu_);
    failures_.erase(key);
  }

  int num_requeues(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = failures_.find(key);
    return it == failures_.end() ? 0 : it->second;
  }

  // When `key` waits for a delayed add, the time it becomes ready.
  std::optional<core::TimePoint> waiting_until(const Key& key) const {
    std::lock_guard lock(mu_);
    auto it = waiting_.find(key);
    if (it == waiting_.end()) return std::nullopt;
    return it->second;
  }

  // Blocks until a key is ready (then the caller owns it until done()), or returns nullopt once shut down and
  // drained, or when `stop` is requested.
  std::optional<Key> get(std::stop_token stop = {}) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [&] { return !queue_.empty() || shutting_down_; });
    if (queue_.empty()) return std::nullopt;
    Key key = std::move(queue_.front());
    queue_.pop_front();
    processing_.insert(key);
    dirty_.erase(key);
    return key;
  }

  // Marks the end of processing; a key added meanwhile is queued again now.
  void done(const Key& key) {
    std::lock_guard lock(mu_);
    processing_.erase(key);
    if (dirty_.count(key)) {
      queue_.push_back(key);
    }
    cv_.notify_all();
  }

  // Stops accepting keys and drops delayed ones; get() still hands out what is queued.
  void shutdown() {
    std::lock_guard lock(mu_);
    shutting_down_ = true;
    waiting_.clear();
    timers_.clear();
    wake_delayer_.request_stop();
    cv_.notify_all();
    delay_cv_.notify_all();
  }

  // shutdown(), then waits until no key is being processed or queued (bounded by `stop`).
  void shutdown_with_drain(std::stop_token stop = {}) {
    shutdown();
    std::unique_lock lock(mu_);
    cv_.wait(lock, stop, [&] { return processing_.empty() && queue_.empty(); });
  }

  bool shutting_down() const {
    std::lock_guard lock(mu_);
    return shutting_down_;
  }
  // Keys ready to be handed out (not counting delayed or in-process ones).
  std::size_t len() const {
    std::lock_guard lock(mu_);
    return queue_.size();
  }
  std::size_t waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
  }
  std::size_t processing() const {
    std::lock_guard lock(mu_);
    return processing_.size();
  }

 private:
  void add_locked(const Key& key) {
    if (shutting_down_) return;
    if (auto it = waiting_.find(key); it != waiting_.end()) {
      // Ready now: a pending delayed add would only produce a redundant run later.
      erase_timer(key, it->second);
      waiting_.erase(it);
    }
    if (!dirty_.insert(key).second) return;
    if (processing_.count(key)) return;  // done() re-queues it
    queue_.push_back(key);
    cv_.notify_all();  // get() and shutdown_with_drain() share the condition
  }

  void erase_timer(const Key& key, core::TimePoint at) {
    auto [lo, hi] = timers_.equal_range(at);
    for (auto it = lo; it != hi; ++it) {
      if (it->second == key) {
        timers_.erase(it);
        return;
      }
    }
  }

  void delay_loop(std::stop_token stop) {
    std::unique_lock lock(mu_);
    while (!stop.stop_requested()) {
      auto now = clock_.now();
      while (!timers_.empty() && timers_.begin()->first <= now) {
        Key key = timers_.begin()->second;
        timers_.erase(timers_.begin());
        waiting_.erase(key);
        add_locked(key);
      }
      wake_delayer_ = std::stop_source();
      auto wake = wake_delayer_.get_token();
      if (timers_.empty()) {
        delay_cv_.wait(lock, stop, [&] { return !timers_.empty() || wake.stop_requested(); });
        continue;
      }
      auto next = timers_.begin()->first;
      lock.unlock();
      {
        // Wake on either an earlier timer (wake) or destruction (stop).
        std::stop_callback on_stop(stop, [this] {
          std::lock_guard l(mu_);
          wake_delayer_.request_stop();
        });
        clock_.sleep_until(next, wake);
      }
      lock.lock();
    }
  }

  core::Clock& clock_;
  core::BackoffPolicy backoff_;
  core::RandomSource random_;

  mutable std::mutex mu_;
  std::condition_variable_any cv_;        // workers (get) and drain waiters
  std::condition_variable_any delay_cv_;  // the delay thread, when no timer is pending
  std::deque<Key> queue_;
  std::unordered_set<Key, Hash> dirty_;
  std::unordered_set<Key, Hash> processing_;
  std::unordered_map<Key, core::TimePoint, Hash> waiting_;
  std::multimap<core::TimePoint, Key> timers_;
  std::unordered_map<Key, int, Hash> failures_;
  bool shutting_down_ = false;
  std::stop_source wake_delayer_;
  std::jthread delayer_;  // last: started after every member above exists, joined first
};

}  // namespace acme_sidecar::controller
