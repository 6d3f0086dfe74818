#include "kube/leader.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "kube/time.hpp"

namespace acme_sidecar::kube {

using core::Error;
using core::ErrorKind;
using nlohmann::json;
using namespace std::chrono;

// ---- KubeLeaseLock ----

KubeLeaseLock::KubeLeaseLock(Client& client, std::string namespace_name, std::string name)
    : client_(client), ns_(std::move(namespace_name)), name_(std::move(name)) {}
KubeLeaseLock::~KubeLeaseLock() = default;

LeaderRecord KubeLeaseLock::record_from_lease(const json& lease) {
  LeaderRecord r;
  if (!lease.is_object() || !lease.contains("spec") || !lease["spec"].is_object()) return r;
  const auto& s = lease["spec"];
  if (s.contains("holderIdentity") && s["holderIdentity"].is_string()) r.holder_identity = s["holderIdentity"];
  if (s.contains("leaseDurationSeconds") && s["leaseDurationSeconds"].is_number_integer()) {
    r.lease_duration_seconds = s["leaseDurationSeconds"];
  }
  if (s.contains("leaseTransitions") && s["leaseTransitions"].is_number_integer()) {
    r.lease_transitions = s["leaseTransitions"];
  }
  if (s.contains("acquireTime") && s["acquireTime"].is_string()) r.acquire_time = parse_time(s["acquireTime"].get<std::string>());
  if (s.contains("renewTime") && s["renewTime"].is_string()) r.renew_time = parse_time(s["renewTime"].get<std::string>());
  return r;
}

json KubeLeaseLock::lease_spec(const LeaderRecord& r) {
  json s = {{"holderIdentity", r.holder_identity},
            {"leaseDurationSeconds", r.lease_duration_seconds},
            {"leaseTransitions", r.lease_transitions}};
  if (r.acquire_time) s["acquireTime"] = format_micro_time(*r.acquire_time);
  if (r.renew_time) s["renewTime"] = format_micro_time(*r.renew_time);
  return s;
}

std::optional<LeaseLock::Observed> KubeLeaseLock::get() {
  json lease;
  try {
    lease = client_.get(resources::leases(), ns_, name_);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::NotFound) return std::nullopt;
    throw;
  }
  Observed o{record_from_lease(lease), lease.value("/metadata/resourceVersion"_json_pointer, std::string())};
  std::lock_guard lock(mu_);
  last_ = std::make_unique<json>(std::move(lease));
  return o;
}

void KubeLeaseLock::create(const LeaderRecord& record) {
  json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                {"kind", "Lease"},
                {"metadata", {{"name", name_}, {"namespace", ns_}}},
                {"spec", lease_spec(record)}};
  auto created = client_.create(resources::leases(), ns_, lease);
  std::lock_guard lock(mu_);
  last_ = std::make_unique<json>(std::move(created));
}

void KubeLeaseLock::update(const LeaderRecord& record, const std::string& resource_version) {
  json lease;
  {
    std::lock_guard lock(mu_);
    if (last_) lease = *last_;
  }
  if (!lease.is_object()) {
    lease = {{"apiVersion", "coordination.k8s.io/v1"}, {"kind", "Lease"}, {"metadata", {{"name", name_}, {"namespace", ns_}}}};
  }
  lease["metadata"]["resourceVersion"] = resource_version;
  lease["spec"] = lease_spec(record);
  auto updated = client_.update(resources::leases(), ns_, name_, lease);
  std::lock_guard lock(mu_);
  last_ = std::make_unique<json>(std::move(updated));
}

// ---- LeaderElector ----

void LeaderElectionConfig::validate() const {
  if (identity.empty()) throw Error(ErrorKind::Config, "leader election needs an identity");
  if (retry_period <= core::Duration::zero()) throw Error(ErrorKind::Config, "retry period must be positive");
  if (lease_duration <= renew_deadline) {
    throw Error(ErrorKind::Config, "lease duration must be greater than the renew deadline");
  }
  // client-go's JitterFactor: the renew deadline must leave room for a jittered retry.
  if (duration<double>(renew_deadline) <= 1.2 * duration<double>(retry_period)) {
    throw Error(ErrorKind::Config, "renew deadline must be greater than 1.2 x retry period");
  }
}

LeaderElector::LeaderElector(LeaseLock& lock, LeaderElectionConfig config, LeaderCallbacks callbacks,
                             core::Clock& clock, core::Logger log, core::RandomSource random)
    : lock_(lock),
      config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      clock_(clock),
      log_(log.with("lease", lock.describe()).with("identity", config_.identity)),
      random_(random ? std::move(random) : core::default_random_source()) {
  config_.validate();
}

std::string LeaderElector::leader() const {
  std::lock_guard lock(mu_);
  return observed_holder_;
}

void LeaderElector::observe(const LeaderRecord& record, const std::string& rv) {
  std::string changed_to;
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    if (rv != observed_rv_) {
      // Expiry is judged by how long *we* have seen the same record, not by its timestamps.
      observed_rv_ = rv;
      observed_record_ = record;
      observed_time_ = clock_.now();
    }
    if (record.holder_identity != observed_holder_) {
      observed_holder_ = record.holder_identity;
      changed_to = observed_holder_;
      changed = true;
    }
  }
  if (changed && !changed_to.empty()) {
    log_.info("new leader observed", {{"leader", changed_to}});
    if (callbacks_.on_new_leader) callbacks_.on_new_leader(changed_to);
  }
}

bool LeaderElector::try_acquire_or_renew() {
  const auto now = clock_.now();
  LeaderRecord mine;
  mine.holder_identity = config_.identity;
  mine.lease_duration_seconds = static_cast<int>(duration_cast<seconds>(config_.lease_duration).count());
  mine.acquire_time = now;
  mine.renew_time = now;
  try {
    auto current = lock_.get();
    if (!current) {
      lock_.create(mine);
      auto created = lock_.get();
      if (created) observe(created->record, created->resource_version);
      return created && created->record.holder_identity == config_.identity;
    }
    observe(current->record, current->resource_version);
    const auto& old = current->record;
    core::TimePoint expiry;
    {
      std::lock_guard lock(mu_);
      expiry = observed_time_ + seconds(old.lease_duration_seconds);
    }
    const bool ours = old.holder_identity == config_.identity;
    if (!old.holder_identity.empty()) {
      if (!ours && expiry > now) return false;  // held by someone else and not expired
      // Our stale record, after we stepped down (we could not renew: the unhealthy one, likely): not
      // before it expires, and then only after the standbys had their turn. They saw the last renewal up
      // to one jittered retry period (≤ 2.2×) later than we did; three give each of them an attempt.
      if (ours && !leading_ && stepped_down_ && expiry + 3 * config_.retry_period > now) return false;
    }
    if (ours) {
      mine.acquire_time = old.acquire_time.value_or(now);
      mine.lease_transitions = old.lease_transitions;
    } else {
      mine.lease_transitions = old.lease_transitions + 1;
    }
    lock_.update(mine, current->resource_version);
    // Record what we wrote; a re-read is not needed: the next get() sees the new resourceVersion.
    {
      std::lock_guard lock(mu_);
      observed_record_ = mine;
      observed_time_ = now;
    }
    if (!ours) observe(mine, "");  // report ourselves as the new holder
    return true;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Conflict || e.kind() == ErrorKind::AlreadyExists) {
      log_.debug("lease changed underneath us", {{"error", e.what()}});
    } else {
      log_.warn("lease request failed", {{"error", e.what()}});
    }
    return false;
  } catch (const std::exception& e) {
    log_.error("lease request failed", {{"error", e.what()}});
    return false;
  }
}

void LeaderElector::release() {
  try {
    auto current = lock_.get();
    if (!current || current->record.holder_identity != config_.identity) return;
    LeaderRecord r;
    r.lease_duration_seconds = 1;  // as client-go: successors need not wait out the full duration
    r.acquire_time = clock_.now();
    r.renew_time = r.acquire_time;
    r.lease_transitions = current->record.lease_transitions;
    lock_.update(r, current->resource_version);
    log_.info("lease released");
  } catch (const std::exception& e) {
    log_.warn("lease release failed", {{"error", e.what()}});
  }
}

void LeaderElector::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    // Campaign: retry every retry period with client-go's jitter (factor 1.2).
    while (!stop.stop_requested() && !try_acquire_or_renew()) {
      auto wait = duration_cast<core::Duration>(config_.retry_period * (1.0 + 1.2 * random_()));
      if (!clock_.sleep_for(wait, stop)) break;
    }
    if (stop.stop_requested()) break;

    leading_ = true;
    {
      std::lock_guard lock(mu_);
      stepped_down_ = false;
    }
    log_.info("started leading");
    if (callbacks_.on_started_leading) {
      try {
        callbacks_.on_started_leading();
      } catch (const std::exception& e) {
        log_.error("on_started_leading failed", {{"error", e.what()}});
      }
    }
    auto last_renew = clock_.now();
    while (clock_.sleep_for(config_.retry_period, stop)) {
      if (try_acquire_or_renew()) {
        last_renew = clock_.now();
        continue;
      }
      bool taken;
      {
        std::lock_guard lock(mu_);
        taken = !observed_holder_.empty() && observed_holder_ != config_.identity;
      }
      if (taken || clock_.now() - last_renew >= config_.renew_deadline) break;
    }
    leading_ = false;
    if (stop.stop_requested()) {
      if (config_.release_on_cancel) release();
    } else {
      std::lock_guard lock(mu_);
      stepped_down_ = true;
    }
    log_.info("stopped leading");
    if (callbacks_.on_stopped_leading) {
      try {
        callbacks_.on_stopped_leading();
      } catch (const std::exception& e) {
        log_.error("on_stopped_leading failed", {{"error", e.what()}});
      }
    }
  }
}

}  // namespace acme_sidecar::kube
