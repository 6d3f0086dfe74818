#include <catch2/catch.hpp>

#include <mutex>
#include <thread>
#include <vector>

#include "app/event_sink.hpp"

using namespace acme_sidecar;
using namespace std::chrono_literals;
using controller::EventType;

namespace {

struct Recorded {
  std::string ingress, reason, message;
  bool operator==(const Recorded&) const = default;
};

class Recorder final : public controller::EventSink {
 public:
  void event(const core::IngressRef& ref, EventType, std::string_view reason, std::string_view message) override {
    std::lock_guard lock(mu_);
    seen_.push_back({ref.key(), std::string(reason), std::string(message)});
  }
  std::vector<Recorded> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::vector<std::string> reasons() {
    std::vector<std::string> out;
    for (const auto& r : seen()) out.push_back(r.reason);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Recorded> seen_;
};

const core::IngressRef web{"ns", "web", "uid-1"};
const core::IngressRef api{"ns", "api", "uid-2"};

}  // namespace

TEST_CASE("an Issuing event followed soon by its success is never written, the success is") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  sink.progress(web, "ns/web-tls", "Issuing", "issuing certificate for a.example: Secret does not exist");
  clock.advance(9s);
  CHECK(sink.release_due() == clock.now() + 1s);  // still held
  CHECK(inner.seen().empty());
  sink.outcome(web, "ns/web-tls", EventType::Normal, "Issued", "Issued certificate for a.example");
  CHECK(inner.reasons() == std::vector<std::string>{"Issued"});
  CHECK(sink.held() == 0);
}

TEST_CASE("an issuance that takes longer than the delay shows Issuing, then its outcome") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  sink.progress(web, "ns/web-tls", "Issuing", "issuing");
  clock.advance(5s);
  sink.progress(api, "ns/api-tls", "Issuing", "issuing api");
  auto next = sink.release_due();
  REQUIRE(next);
  CHECK(*next == clock.now() + 5s);
  clock.advance(5s);
  CHECK(sink.release_due() == clock.now() + 5s);  // web's is out, api's still held
  CHECK(inner.seen() == std::vector<Recorded>{{"ns/web", "Issuing", "issuing"}});
  sink.outcome(web, "ns/web-tls", EventType::Normal, "Issued", "done");
  CHECK(inner.reasons() == std::vector<std::string>{"Issuing", "Issued"});
}

TEST_CASE("a failure is read after the Issuing event it ends, and a retry announces itself again") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  sink.progress(web, "ns/web-tls", "Issuing", "issuing");
  sink.outcome(web, "ns/web-tls", EventType::Warning, "Failed", "CA refused");
  sink.progress(web, "ns/web-tls", "Issuing", "issuing");
  sink.outcome(web, "ns/web-tls", EventType::Warning, "Failed", "CA refused");
  CHECK(inner.reasons() == std::vector<std::string>{"Issuing", "Failed", "Issuing", "Failed"});
}

TEST_CASE("held events are per certificate: one certificate's success keeps another's announcement") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  sink.progress(web, "ns/one-tls", "Issuing", "one");
  sink.progress(web, "ns/two-tls", "Issuing", "two");
  sink.outcome(web, "ns/one-tls", EventType::Normal, "Issued", "one done");
  CHECK(sink.held() == 1);
  // A Warning about the Ingress (e.g. Skipped) releases what is held for it first.
  sink.event(web, EventType::Warning, "Skipped", "foreign Secret");
  CHECK(inner.reasons() == std::vector<std::string>{"Issued", "Issuing", "Skipped"});
  CHECK(inner.seen()[1].message == "two");
  CHECK(sink.held() == 0);
}

TEST_CASE("other events pass straight through") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  sink.event(web, EventType::Warning, "NameRejected", "x");
  sink.event(api, EventType::Normal, "Something", "y");
  CHECK(inner.reasons() == std::vector<std::string>{"NameRejected", "Something"});
}

TEST_CASE("run releases a held event when its delay has passed") {
  Recorder inner;
  core::ManualClock clock;
  app::DeferredEventSink sink(inner, clock, 10s);
  std::jthread runner([&](std::stop_token st) { sink.run(st); });
  REQUIRE(clock.wait_for_waiters(1, 10s));
  sink.progress(web, "ns/web-tls", "Issuing", "slow");
  clock.advance(10s);  // the runner's first wake (one delay after it started) is this event's due time
  // Polls real time only as a hang detector; the release itself is driven by the manual clock.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (inner.seen().empty() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(inner.reasons() == std::vector<std::string>{"Issuing"});
}
