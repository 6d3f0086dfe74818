#include <catch2/catch.hpp>

#include <thread>

#include "controller/controller.hpp"
#include "core/error.hpp"
#include "rig.hpp"

using namespace acme_sidecar;
using namespace acme_sidecar::controller;
using namespace acme_sidecar::controller::testing;
using namespace std::chrono_literals;

namespace {

// A Controller running on its own thread over a Rig; stops and joins on destruction.
struct Running {
  Rig& rig;
  std::unique_ptr<Reconciler> reconciler;
  std::unique_ptr<Controller> controller;
  std::jthread thread;

  Running(Rig& r, ControllerConfig cfg) : rig(r), reconciler(r.reconciler()) {
    controller = std::make_unique<Controller>(*reconciler, rig.clock, [] { return 0.5; }, core::Logger::discard(),
                                              std::move(cfg), &rig.observer);
    thread = std::jthread([this](std::stop_token stop) { controller->run(stop); });
  }
  ~Running() {
    thread.request_stop();
    rig.issuer.release();
    thread.join();
  }
  // The controller is idle: nothing queued or in process (delayed keys may wait on the clock).
  bool idle() { return controller->queue().len() == 0 && controller->queue().processing() == 0; }
  void settle() { REQUIRE(eventually([&] { return idle(); })); }
};

ControllerConfig config(std::size_t workers = 2, core::Duration rescan = 1000h) {
  ControllerConfig c;
  c.max_concurrent_issuances = workers;
  c.rescan_interval = rescan;
  c.failure_backoff = core::BackoffPolicy::parse("1m,10m,100m,24h", 0.0);
  return c;
}

}  // namespace

TEST_CASE("the first scan issues every desired certificate once") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "a-tls"));
  rig.lister.upsert(make_ingress("b", {"b.example"}, "b-tls", "ns2"));
  Running run(rig, config());
  REQUIRE(eventually([&] { return rig.secrets.size() == 2; }));
  run.settle();
  CHECK(rig.issuer.count() == 2);
  CHECK(eventually([&] { return rig.observer.managed == 2; }));
  // Each key now waits for its renewal time.
  CHECK(run.controller->queue().waiting_until("default/a-tls") == rig.clock.now() + 60 * 24h);
}

TEST_CASE("a restarted controller with valid Secrets issues nothing") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "a-tls"));
  rig.lister.upsert(make_ingress("b", {"b.example"}, "b-tls"));
  {
    Running first(rig, config());
    REQUIRE(eventually([&] { return rig.secrets.size() == 2; }));
    first.settle();
  }
  REQUIRE(rig.issuer.count() == 2);
  auto gets = rig.secrets.gets.load();
  Running second(rig, config());
  REQUIRE(eventually([&] { return rig.secrets.gets >= gets + 2; }));
  second.settle();
  CHECK(rig.issuer.count() == 2);
  CHECK(rig.secrets.updates == 0);
}

TEST_CASE("renewal is requeued at the renewal time and happens when the clock gets there") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  Running run(rig, config());
  REQUIRE(eventually([&] { return rig.issuer.count() == 1 && run.controller->queue().waiting() == 1; }));
  rig.clock.advance(60 * 24h - 1s);
  run.settle();
  CHECK(rig.issuer.count() == 1);
  rig.clock.advance(1s);
  REQUIRE(eventually([&] { return rig.issuer.count() == 2; }));
  REQUIRE(eventually([&] { return rig.events.count("Renewed") == 1; }));
}

TEST_CASE("failures follow the backoff schedule (counted over ManualClock time)") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  rig.issuer.behaviour = [](const core::DesiredCertificate&) {
    throw core::Error(core::ErrorKind::ServerError, "CA unavailable");
  };
  Running run(rig, config());
  auto& q = run.controller->queue();
  auto waits_for = [&](core::Duration d) {
    auto expected = rig.clock.now() + d;
    return eventually([&] { return q.waiting_until("default/tls") == expected; });
  };
  REQUIRE(eventually([&] { return rig.issuer.count() == 1; }));
  for (auto [delay, calls] : std::vector<std::pair<core::Duration, std::size_t>>{
           {1min, 2}, {10min, 3}, {100min, 4}, {24h, 5}, {24h, 6}}) {
    CAPTURE(calls);
    REQUIRE(waits_for(delay));
    rig.clock.advance(delay - 1s);
    run.settle();
    CHECK(rig.issuer.count() == calls - 1);
    rig.clock.advance(1s);
    REQUIRE(eventually([&] { return rig.issuer.count() == calls; }));
  }
  CHECK(eventually([&] { return rig.events.count("Failed") == 6; }));
}

TEST_CASE("the CA's Retry-After is obeyed when longer than the backoff") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  std::atomic<int> calls{0};
  rig.issuer.behaviour = [&](const core::DesiredCertificate&) {
    if (++calls == 1) {
      core::Error e(core::ErrorKind::RateLimited, "slow down");
      e.retry_after = std::chrono::seconds(3 * 3600);
      throw e;
    }
  };
  Running run(rig, config());
  auto t0 = rig.clock.now();
  REQUIRE(eventually([&] { return run.controller->queue().waiting_until("default/tls") == t0 + 3h; }));
  rig.clock.advance(1min);  // the plain backoff would have retried here
  run.settle();
  CHECK(rig.issuer.count() == 1);
  rig.clock.advance(3h - 1min);
  REQUIRE(eventually([&] { return rig.secrets.size() == 1; }));
  CHECK(rig.issuer.count() == 2);
}

TEST_CASE("a failing certificate does not block a healthy neighbour") {
  Rig rig;
  rig.lister.upsert(make_ingress("bad", {"bad.example"}, "bad-tls"));
  rig.lister.upsert(make_ingress("good", {"good.example"}, "good-tls"));
  rig.issuer.behaviour = [](const core::DesiredCertificate& d) {
    if (d.secret_name == "bad-tls") throw core::Error(core::ErrorKind::AcmeProblem, "unauthorized");
  };
  Running run(rig, config(1));  // a single worker: the bad key must not monopolise it
  REQUIRE(eventually([&] { return rig.secrets.peek("default/good-tls").has_value(); }));
  CHECK_FALSE(rig.secrets.peek("default/bad-tls"));
  rig.clock.advance(1min);
  REQUIRE(eventually([&] { return rig.issuer.count_for("default/bad-tls") == 2; }));
  CHECK(rig.issuer.count_for("default/good-tls") == 1);
}

TEST_CASE("a rescan heals lost events but does not bypass a failure backoff") {
  Rig rig;
  rig.lister.upsert(make_ingress("bad", {"bad.example"}, "bad-tls"));
  rig.issuer.behaviour = [](const core::DesiredCertificate& d) {
    if (d.secret_name == "bad-tls") throw core::Error(core::ErrorKind::ServerError, "boom");
  };
  Running run(rig, config(2, 30s));
  REQUIRE(eventually([&] { return rig.issuer.count() == 1 && run.controller->queue().waiting() == 1; }));
  // An Ingress created without its event reaching us: the next rescan finds it.
  rig.lister.upsert(make_ingress("late", {"late.example"}, "late-tls"));
  REQUIRE(rig.clock.wait_for_waiters(2, 10s));  // the rescan timer and the queue's delay timer
  rig.clock.advance(30s);
  REQUIRE(eventually([&] { return rig.secrets.peek("default/late-tls").has_value(); }));
  run.settle();
  CHECK(rig.issuer.count_for("default/bad-tls") == 1);  // rescanned, but still in backoff (1 min)
  CHECK(eventually([&] { return rig.observer.managed == 2; }));
  rig.clock.advance(30s);
  REQUIRE(eventually([&] { return rig.issuer.count_for("default/bad-tls") == 2; }));
}

TEST_CASE("a Secret deleted behind our back is re-issued on its event") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  Running run(rig, config());
  REQUIRE(eventually([&] { return rig.secrets.size() == 1; }));
  run.settle();
  rig.secrets.erase("default/tls");
  run.controller->enqueue("default/tls");  // the Secret informer's delete handler
  REQUIRE(eventually([&] { return rig.secrets.size() == 1; }));
  CHECK(rig.issuer.count() == 2);
}

TEST_CASE("hosts added to an Ingress re-issue through its event") {
  Rig rig;
  auto ing = make_ingress("a", {"a.example"}, "tls");
  rig.lister.upsert(ing);
  Running run(rig, config());
  REQUIRE(eventually([&] { return rig.secrets.size() == 1; }));
  run.settle();
  ing.tls[0].hosts.push_back("b.example");
  rig.lister.upsert(ing);
  run.controller->enqueue_ingress(ing);
  REQUIRE(eventually([&] { return rig.issuer.count() == 2; }));
  REQUIRE(eventually([&] {
    auto s = rig.secrets.peek("default/tls");
    return s && s->annotations.at("acme-sidecar.io/names") == "a.example,b.example";
  }));
}

TEST_CASE("issuance concurrency stays within --max-concurrent-issuances") {
  Rig rig;
  for (int i = 0; i < 10; ++i) {
    rig.lister.upsert(make_ingress("i" + std::to_string(i), {"h" + std::to_string(i) + ".example"},
                                   "tls" + std::to_string(i)));
  }
  rig.issuer.hold = true;
  Running run(rig, config(3));
  REQUIRE(eventually([&] { return rig.issuer.in_flight == 3; }));
  CHECK(rig.issuer.max_in_flight == 3);
  rig.issuer.release();
  REQUIRE(eventually([&] { return rig.secrets.size() == 10; }));
  CHECK(rig.issuer.max_in_flight == 3);
  CHECK(rig.issuer.count() == 10);
}

TEST_CASE("a malformed Ingress in the batch does not block a good one") {
  Rig rig;
  auto bad = make_ingress("bad", {}, "bad-tls");
  for (int i = 0; i < 300; ++i) bad.tls[0].hosts.push_back("h" + std::to_string(i) + ".example");
  bad.tls[0].hosts.push_back("");
  bad.tls[0].hosts.push_back("\xff\xfe\xe2\x98\x83.example");
  bad.tls.push_back({{"x.example"}, ""});
  bad.tls.push_back({{}, "Not/A/Name"});
  rig.lister.upsert(bad);
  auto weird = make_ingress("weird", {"*.example", "::1"}, "weird-tls");
  rig.lister.upsert(weird);
  rig.lister.upsert(make_ingress("good", {"good.example"}, "good-tls"));
  Running run(rig, config(1));
  REQUIRE(eventually([&] { return rig.secrets.peek("default/good-tls").has_value(); }));
  run.settle();
  CHECK(rig.issuer.count() == 1);
  // Keys are enqueued in order: wait for the ones after "good" too.
  CHECK(eventually([&] { return rig.events.count("Failed", "default/bad") == 1; }));    // 300 names refused
  CHECK(eventually([&] { return rig.events.count("Failed", "default/weird") == 1; }));  // no issuable name
  CHECK(rig.events.count("InvalidTLS", "default/bad") == 2);
  run.settle();
  CHECK(rig.issuer.count() == 1);
}

TEST_CASE("stopping the controller cancels an issuance in flight and returns") {
  Rig rig;
  rig.lister.upsert(make_ingress("a", {"a.example"}, "tls"));
  rig.issuer.hold = true;
  rig.issuer.behaviour = [](const core::DesiredCertificate&) {
    throw core::Error(core::ErrorKind::Cancelled, "stopped");
  };
  auto running = std::make_unique<Running>(rig, config());
  REQUIRE(eventually([&] { return rig.issuer.in_flight == 1; }));
  running->thread.request_stop();  // the held issuer wakes on ctx.stop
  REQUIRE(eventually([&] { return rig.issuer.in_flight == 0; }));
  running.reset();
  CHECK_FALSE(rig.secrets.peek("default/tls"));
}

TEST_CASE("after_rescan_drained runs once per rescan, after the last key of its burst") {
  Rig rig;
  for (int i = 0; i < 6; ++i) {
    auto n = std::to_string(i);
    rig.lister.upsert(make_ingress("i" + n, {"h" + n + ".example"}, "tls-" + n));
  }
  auto cfg = config(3);
  std::atomic<int> drained{0};
  std::atomic<std::size_t> secrets_when_drained{0};
  cfg.after_rescan_drained = [&] {
    secrets_when_drained = rig.secrets.size();
    ++drained;
  };
  Running run(rig, std::move(cfg));
  REQUIRE(eventually([&] { return drained.load() == 1; }));
  CHECK(secrets_when_drained == 6);  // not before every key of the burst was done
  run.settle();
  // Keys enqueued by events (no rescan) do not trigger it again …
  run.controller->enqueue("default/tls-0");
  run.settle();
  CHECK(drained == 1);
  // … a rescan does.
  run.controller->rescan();
  REQUIRE(eventually([&] { return drained.load() == 2; }));
}
