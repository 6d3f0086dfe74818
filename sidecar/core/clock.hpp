#pragma once
// Injected time. Logic never calls system_clock::now() or sleeps directly: it asks a Clock, so tests
// drive time with ManualClock and never sleep.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <stop_token>

namespace acme_sidecar::core {

using TimePoint = std::chrono::system_clock::time_point;
using Duration = std::chrono::system_clock::duration;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // Blocks until `deadline` has passed (returns true) or `stop` is requested (returns false).
  virtual bool sleep_until(TimePoint deadline, std::stop_token stop) = 0;
  bool sleep_for(Duration d, std::stop_token stop) { return sleep_until(now() + d, std::move(stop)); }
};

// Wall-clock time; sleeps wake early on stop requests.
class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
  bool sleep_until(TimePoint deadline, std::stop_token stop) override;
};

// Test clock: time moves only when advance()/set() is called, which wakes every sleeper whose
// deadline has come. waiters() lets a test wait until the code under test is parked on the clock.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::seconds(1'700'000'000)));
  TimePoint now() const override;
  bool sleep_until(TimePoint deadline, std::stop_token stop) override;
  void advance(Duration d);
  void set(TimePoint t);
  std::size_t waiters() const;
  // Blocks (real time, bounded by `timeout`) until at least `n` threads sleep on this clock.
  bool wait_for_waiters(std::size_t n, std::chrono::milliseconds timeout) const;

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable_any cv_;
  TimePoint now_;
  std::size_t waiters_ = 0;
};

}  // namespace acme_sidecar::core
