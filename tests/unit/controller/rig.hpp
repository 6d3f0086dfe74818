#pragma once
#include <memory>

#include "controller/reconciler.hpp"
#include "fakes.hpp"

namespace acme_sidecar::controller::testing {

inline constexpr const char* kDirectory = "https://ca.test/dir";

struct Rig {
  core::ManualClock clock;
  FakeLister lister;
  FakeSecretStore secrets;
  FakeIssuer issuer{clock};
  FakeInspector inspector;
  RecordingEvents events;
  RecordingObserver observer;
  ReconcilerConfig config = [] {
    ReconcilerConfig c;
    c.renewal.issuer = kDirectory;
    return c;
  }();

  std::unique_ptr<Reconciler> reconciler() {
    ReconcilerDeps deps{lister, secrets, issuer, inspector, events, clock, core::Logger::discard(),
                        [] { return 0.5; }, &observer, nullptr};
    return std::make_unique<Reconciler>(deps, config);
  }
};

}  // namespace acme_sidecar::controller::testing
