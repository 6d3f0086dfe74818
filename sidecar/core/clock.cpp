#include "core/clock.hpp"

namespace acme_sidecar::core {

TimePoint SystemClock::now() const { return std::chrono::system_clock::now(); }

bool SystemClock::sleep_until(TimePoint deadline, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  while (!stop.stop_requested()) {
    if (std::chrono::system_clock::now() >= deadline) return true;
    // Wake at least once a second so a wall-clock step cannot park us for long.
    auto wake = std::min(deadline, std::chrono::system_clock::now() + std::chrono::seconds(1));
    cv.wait_until(lock, stop, wake, [] { return false; });
  }
  return false;
}

ManualClock::ManualClock(TimePoint start) : now_(start) {}

TimePoint ManualClock::now() const {
  std::lock_guard lock(mu_);
  return now_;
}

bool ManualClock::sleep_until(TimePoint deadline, std::stop_token stop) {
  std::unique_lock lock(mu_);
  ++waiters_;
  cv_.notify_all();
  bool reached = cv_.wait(lock, stop, [&] { return now_ >= deadline; });
  --waiters_;
  cv_.notify_all();
  return reached;
}

void ManualClock::advance(Duration d) {
  std::lock_guard lock(mu_);
  now_ += d;
  cv_.notify_all();
}

void ManualClock::set(TimePoint t) {
  std::lock_guard lock(mu_);
  now_ = t;
  cv_.notify_all();
}

std::size_t ManualClock::waiters() const {
  std::lock_guard lock(mu_);
  return waiters_;
}

bool ManualClock::wait_for_waiters(std::size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return waiters_ >= n; });
}

}  // namespace acme_sidecar::core
