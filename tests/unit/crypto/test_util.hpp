#pragma once
// Helpers shared by the crypto unit tests.
#include <chrono>
#include <string>

#include <catch2/catch.hpp>

#include "core/error.hpp"
#include "crypto/key.hpp"
#include "crypto/mint.hpp"

namespace acme_sidecar::crypto::test {

using namespace std::chrono_literals;

// 2023-11-14T22:13:20Z, the ManualClock default: tests never read the wall clock.
inline const TimePoint kNow = TimePoint(std::chrono::seconds(1'700'000'000));

struct TestCa {
  PrivateKey key;
  Certificate cert;
};

inline TestCa make_root(const std::string& cn, KeyAlgorithm alg = KeyAlgorithm::EcdsaP256) {
  PrivateKey key = PrivateKey::generate(alg);
  CertificateSpec spec;
  spec.common_name = cn;
  spec.not_before = kNow - 24h;
  spec.not_after = kNow + 24h * 3650;
  spec.is_ca = true;
  Certificate cert = make_self_signed(key, spec);
  return {std::move(key), std::move(cert)};
}

inline TestCa make_intermediate(const TestCa& root, const std::string& cn) {
  PrivateKey key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  CertificateSpec spec;
  spec.common_name = cn;
  spec.not_before = kNow - 24h;
  spec.not_after = kNow + 24h * 1000;
  spec.is_ca = true;
  Certificate cert = issue_certificate(root.key, root.cert, key.public_key(), spec);
  return {std::move(key), std::move(cert)};
}

// Asserts that `expr` throws core::Error of one of the given kinds with a non-empty message.
#define REQUIRE_CRYPTO_ERROR(expr, ...)                                                          \
  do {                                                                                           \
    bool thrown_ = false;                                                                        \
    try {                                                                                        \
      (void)(expr);                                                                              \
    } catch (const ::acme_sidecar::core::Error& e_) {                                            \
      thrown_ = true;                                                                            \
      INFO("error: " << e_.what());                                                              \
      const ::acme_sidecar::core::ErrorKind kinds_[] = {__VA_ARGS__};                            \
      bool kind_ok_ = false;                                                                     \
      for (auto k_ : kinds_) kind_ok_ = kind_ok_ || k_ == e_.kind();                             \
      CHECK(kind_ok_);                                                                           \
      CHECK_FALSE(e_.message().empty());                                                         \
    }                                                                                            \
    CHECK(thrown_);                                                                              \
  } while (false)

}  // namespace acme_sidecar::crypto::test
