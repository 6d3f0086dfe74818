#pragma once
// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics: a holder renews every
// retry period; it steps down when no renewal succeeded within the renew deadline; others take over
// once they have seen the same record unchanged for the lease duration (measured on their own clock,
// never by comparing timestamps across machines); optimistic concurrency on resourceVersion.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "core/backoff.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "kube/client.hpp"

namespace acme_sidecar::kube {

struct LeaderRecord {
  std::string holder_identity;
  int lease_duration_seconds = 0;
  std::optional<core::TimePoint> acquire_time;
  std::optional<core::TimePoint> renew_time;
  int lease_transitions = 0;
};

// The tiny lock interface (client-go resourcelock.Interface). Methods throw core::Error.
class LeaseLock {
 public:
  struct Observed {
    LeaderRecord record;
    std::string resource_version;
  };
  virtual ~LeaseLock() = default;
  virtual std::optional<Observed> get() = 0;  // nullopt when the lease does not exist
  virtual void create(const LeaderRecord& record) = 0;
  // Conditional on `resource_version` (409 → core::Error(Conflict)).
  virtual void update(const LeaderRecord& record, const std::string& resource_version) = 0;
  virtual std::string describe() const = 0;
};

// LeaseLock on the Kubernetes API. Keeps the last object read so metadata (labels, owners) survives updates.
class KubeLeaseLock final : public LeaseLock {
 public:
  KubeLeaseLock(Client& client, std::string namespace_name, std::string name);
  ~KubeLeaseLock() override;
  std::optional<Observed> get() override;
  void create(const LeaderRecord& record) override;
  void update(const LeaderRecord& record, const std::string& resource_version) override;
  std::string describe() const override { return ns_ + "/" + name_; }

  static LeaderRecord record_from_lease(const nlohmann::json& lease);
  static nlohmann::json lease_spec(const LeaderRecord& record);

 private:
  Client& client_;
  std::string ns_;
  std::string name_;
  std::mutex mu_;
  std::unique_ptr<nlohmann::json> last_;
};

struct LeaderElectionConfig {
  std::string identity;  // unique per replica (pod name)
  core::Duration lease_duration = std::chrono::seconds(15);
  core::Duration renew_deadline = std::chrono::seconds(10);
  core::Duration retry_period = std::chrono::seconds(2);
  bool release_on_cancel = true;  // clear the holder on graceful shutdown so a successor need not wait
  // Throws core::Error(Config) unless lease_duration > renew_deadline > 1.2 × retry_period > 0 and
  // the identity is set.
  void validate() const;
};

struct LeaderCallbacks {
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
  std::function<void(const std::string& identity)> on_new_leader;  // the observed holder changed
};

class LeaderElector {
 public:
  // Validates the config (throws core::Error(Config)).
  LeaderElector(LeaseLock& lock, LeaderElectionConfig config, LeaderCallbacks callbacks, core::Clock& clock,
                core::Logger log, core::RandomSource random = {});
  // Campaigns, leads, and campaigns again after losing, until `stop`; then releases the lease if held.
  // Never throws.
  void run(std::stop_token stop);
  bool is_leader() const { return leading_.load(); }
  std::string leader() const;

 private:
  bool try_acquire_or_renew();
  void release();
  void observe(const LeaderRecord& record, const std::string& rv);

  LeaseLock& lock_;
  LeaderElectionConfig config_;
  LeaderCallbacks callbacks_;
  core::Clock& clock_;
  core::Logger log_;
  core::RandomSource random_;

  std::atomic<bool> leading_{false};
  mutable std::mutex mu_;
  std::string observed_holder_;
  std::string observed_rv_;
  LeaderRecord observed_record_;
  core::TimePoint observed_time_{};
  bool stepped_down_ = false;  // after losing, our own stale record is not ours to renew
};

}  // namespace acme_sidecar::kube
