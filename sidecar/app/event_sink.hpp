#pragma once
// EventSink decorator that holds progress events back: an "Issuing" event waits `delay`, and when the
// certificate's outcome comes first it is dropped, since the outcome says the same (names and why) and
// more. A burst of issuances then writes one Event per certificate instead of two, while an issuance
// that takes long (a slow CA, a validation retried) still shows "Issuing" in `kubectl describe ingress`
// once the delay has passed. A Warning for the Ingress (Failed, Skipped) releases held events first, so
// a failure reads "Issuing …" then "Failed …". A cancelled issuance (shutdown, lost leadership) has no
// outcome: its held event is released after the delay while the process runs, dropped at exit; the next
// leader announces its own.
#include <map>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "controller/interfaces.hpp"
#include "core/clock.hpp"

namespace acme_sidecar::app {

class DeferredEventSink final : public controller::EventSink {
 public:
  DeferredEventSink(controller::EventSink& inner, core::Clock& clock, core::Duration delay);
  void event(const core::IngressRef& ingress, controller::EventType type, std::string_view reason,
             std::string_view message) override;
  void progress(const core::IngressRef& ingress, std::string_view certificate, std::string_view reason,
                std::string_view message) override;
  void outcome(const core::IngressRef& ingress, std::string_view certificate, controller::EventType type,
               std::string_view reason, std::string_view message) override;

  // Emits the held events whose delay has passed; returns when the next one is due.
  std::optional<core::TimePoint> release_due();
  std::size_t held() const;
  // Scheduling: release_due() on time until `stop`.
  void run(std::stop_token stop);

 private:
  struct Held {
    core::IngressRef ingress;
    std::string reason;
    std::string message;
    core::TimePoint due;
  };
  // Removes and returns the held events of `ingress` (all of them, or only `certificate`'s).
  std::vector<Held> take(const core::IngressRef& ingress, std::optional<std::string_view> certificate);
  void emit(const Held& h);

  controller::EventSink& inner_;
  core::Clock& clock_;
  core::Duration delay_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Held> held_;  // (ingress key, certificate key)
};

}  // namespace acme_sidecar::app
