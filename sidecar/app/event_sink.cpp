#include "app/event_sink.hpp"

#include <algorithm>
#include <vector>

namespace acme_sidecar::app {

DeferredEventSink::DeferredEventSink(controller::EventSink& inner, core::Clock& clock, core::Duration delay)
    : inner_(inner), clock_(clock), delay_(delay) {}

std::vector<DeferredEventSink::Held> DeferredEventSink::take(const core::IngressRef& ingress,
                                                             std::optional<std::string_view> certificate) {
  std::vector<Held> out;
  std::lock_guard lock(mu_);
  const auto key = ingress.key();
  for (auto it = held_.lower_bound({key, std::string()}); it != held_.end() && it->first.first == key;) {
    if (certificate && it->first.second != *certificate) {
      ++it;
      continue;
    }
    out.push_back(std::move(it->second));
    it = held_.erase(it);
  }
  return out;
}

void DeferredEventSink::emit(const Held& h) {
  inner_.event(h.ingress, controller::EventType::Normal, h.reason, h.message);
}

void DeferredEventSink::event(const core::IngressRef& ingress, controller::EventType type, std::string_view reason,
                              std::string_view message) {
  if (type == controller::EventType::Warning) {
    for (const auto& h : take(ingress, std::nullopt)) emit(h);
  }
  inner_.event(ingress, type, reason, message);
}

void DeferredEventSink::progress(const core::IngressRef& ingress, std::string_view certificate,
                                 std::string_view reason, std::string_view message) {
  std::lock_guard lock(mu_);
  // A newer attempt's announcement replaces an older one still held.
  held_[{ingress.key(), std::string(certificate)}] =
      Held{ingress, std::string(reason), std::string(message), clock_.now() + delay_};
}

void DeferredEventSink::outcome(const core::IngressRef& ingress, std::string_view certificate,
                                controller::EventType type, std::string_view reason, std::string_view message) {
  auto held = take(ingress, certificate);
  // A success makes the announcement redundant; a failure is read after it.
  if (type == controller::EventType::Warning) {
    for (const auto& h : held) emit(h);
  }
  event(ingress, type, reason, message);
}

std::optional<core::TimePoint> DeferredEventSink::release_due() {
  std::vector<Held> due;
  std::optional<core::TimePoint> next;
  {
    std::lock_guard lock(mu_);
    const auto now = clock_.now();
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->second.due <= now) {
        due.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        next = next ? std::min(*next, it->second.due) : it->second.due;
        ++it;
      }
    }
  }
  for (const auto& h : due) emit(h);
  return next;
}

std::size_t DeferredEventSink::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

void DeferredEventSink::run(std::stop_token stop) {
  // A new event is due `delay_` after it was held, never earlier than anything held now: sleeping to the
  // earliest due time (or one delay when nothing is held) is never late.
  for (;;) {
    auto next = release_due();
    if (!clock_.sleep_until(next.value_or(clock_.now() + delay_), stop)) return;
  }
}

}  // namespace acme_sidecar::app
