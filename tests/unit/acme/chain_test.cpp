// acme::check_chain: the summary path (crypto::read_certificate_der) decides the usual chains, and every
// refusal still carries the error kind and message of the OpenSSL path.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "acme/chain.hpp"
#include "core/error.hpp"
#include "crypto/mint.hpp"
#include "crypto/x509.hpp"

namespace acme_sidecar::acme {
namespace {

using namespace std::chrono_literals;
using crypto::Certificate;
using crypto::KeyAlgorithm;
using crypto::PrivateKey;

const core::TimePoint kNow = core::TimePoint(std::chrono::seconds(1'700'000'000));

struct Ca {
  PrivateKey key;
  Certificate cert;
};

Ca make_ca(const std::string& cn, KeyAlgorithm alg, const Ca* parent) {
  PrivateKey key = PrivateKey::generate(alg);
  crypto::CertificateSpec spec;
  spec.common_name = cn;
  spec.not_before = kNow - 24h;
  spec.not_after = kNow + 3650 * 24h;
  spec.is_ca = true;
  Certificate cert = parent == nullptr ? crypto::make_self_signed(key, spec)
                                       : crypto::issue_certificate(parent->key, parent->cert, key.public_key(), spec);
  return {std::move(key), std::move(cert)};
}

Certificate leaf_of(const Ca& ca, const PrivateKey& key, const std::vector<std::string>& names) {
  return crypto::issue_certificate(ca.key, ca.cert, key.public_key(), names, kNow, 90 * 24h);
}

// `cert` with the lowest bit of its DER byte `at` flipped (negative: from the end).
Certificate flipped(const Certificate& cert, long at) {
  crypto::Bytes der = cert.to_der();
  der[at >= 0 ? static_cast<std::size_t>(at) : der.size() - static_cast<std::size_t>(-at)] ^= 0x01;
  return Certificate::from_der(der);
}

// The error check_chain throws (kind and message), or nothing.
struct Outcome {
  bool thrown = false;
  core::ErrorKind kind{};
  std::string message;
};

template <typename Key>  // crypto::PublicKey or the CSR's crypto::PrivateKey
Outcome outcome(std::string_view pem, const std::vector<std::string>& names, const Key& key,
                const std::vector<std::string>& roots = {}) {
  try {
    (void)check_chain(pem, names, key, roots, kNow);
    return {};
  } catch (const core::Error& e) {
    return {true, e.kind(), e.message()};
  }
}

struct Rsa {  // RSA keys are slow to make: once per test binary
  Ca root = make_ca("Chain Test RSA Root", KeyAlgorithm::Rsa2048, nullptr);
  Ca inter = make_ca("Chain Test RSA Intermediate", KeyAlgorithm::Rsa2048, &root);
};
const Rsa& rsa() {
  static const Rsa r;
  return r;
}

}  // namespace

TEST_CASE("check_chain decides usual chains from summaries, with the OpenSSL path's result") {
  const Ca ec_root = make_ca("Chain Test EC Root", KeyAlgorithm::EcdsaP256, nullptr);
  const Ca p384_inter = make_ca("Chain Test P-384 Intermediate", KeyAlgorithm::EcdsaP384, &ec_root);
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const std::vector<std::string> names{"a.example", "b.example"};
  struct Shape {
    const char* what;
    std::vector<Certificate> chain;
    std::string root;
  };
  const Shape shapes[] = {
      // Pebble 2.4: P-256 leaf, RSA-2048 intermediate, sha256WithRSAEncryption, root not sent.
      {"Pebble-like", {leaf_of(rsa().inter, p256, names), rsa().inter.cert}, "Chain Test RSA Root"},
      {"with the root", {leaf_of(rsa().inter, p256, names), rsa().inter.cert, rsa().root.cert}, "Chain Test RSA Root"},
      {"ECDSA P-384 intermediate (ecdsa-with-SHA384)", {leaf_of(p384_inter, p256, names), p384_inter.cert},
       "Chain Test EC Root"},
      {"leaf straight from an EC root", {leaf_of(ec_root, p256, names), ec_root.cert}, "Chain Test EC Root"},
      {"self-signed leaf alone", {crypto::make_self_signed(p256, names, kNow, kNow + 24h)}, "a.example"},
  };
  for (const auto& shape : shapes) {
    INFO(shape.what);
    // Text around and between the blocks is not kept: the stored PEM is the canonical re-armouring.
    const std::string pem = "chain from the CA\n" + crypto::to_pem_chain(shape.chain) + "\n";
    CheckedChain checked;
    REQUIRE_NOTHROW(checked = check_chain(pem, {"B.example", "a.example"}, p256.public_key(), {}, kNow));
    CHECK(checked.from_summaries);
    CHECK(checked.pem == crypto::to_pem_chain(crypto::parse_pem_chain(pem)));
    REQUIRE(checked.entries.size() == shape.chain.size());
    for (std::size_t i = 0; i < shape.chain.size(); ++i) {
      CHECK(checked.entries[i].subject_cn == shape.chain[i].subject_cn());
      CHECK(checked.entries[i].issuer_cn == shape.chain[i].issuer_cn());
    }
    CHECK(chain_root_name(checked) == shape.root);
    CHECK(chain_matches_preferred(checked, shape.root));
    CHECK_FALSE(chain_matches_preferred(checked, "Nobody"));
    CHECK(checked.not_before == shape.chain.front().not_before());
    CHECK(checked.not_after == shape.chain.front().not_after());
  }
}

TEST_CASE("check_chain verifies against trusted roots with OpenSSL, after the summary checks") {
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Ca other_root = make_ca("Chain Test Other Root", KeyAlgorithm::EcdsaP256, nullptr);
  const std::string pem = crypto::to_pem_chain({leaf_of(rsa().inter, p256, {"t.example"}), rsa().inter.cert});
  const CheckedChain ok = check_chain(pem, {"t.example"}, p256.public_key(), {rsa().root.cert.to_pem()}, kNow);
  CHECK(ok.from_summaries);
  const Outcome untrusted = outcome(pem, {"t.example"}, p256.public_key(), {other_root.cert.to_pem()});
  CHECK(untrusted.thrown);
  CHECK(untrusted.kind == core::ErrorKind::Crypto);
  CHECK(untrusted.message.find("does not verify against the trusted roots") != std::string::npos);
  // Validity stays OpenSSL's: the same chain long after the leaf expired.
  try {
    (void)check_chain(pem, {"t.example"}, p256.public_key(), {rsa().root.cert.to_pem()}, kNow + 365 * 24h);
    FAIL("expired leaf accepted");
  } catch (const core::Error& e) {
    CHECK(std::string(e.message()).find("expired") != std::string::npos);
  }
}

TEST_CASE("check_chain refuses bad chains with the OpenSSL path's errors") {
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey other = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Ca& inter = rsa().inter;
  const Ca twin = make_ca("Chain Test RSA Intermediate", KeyAlgorithm::EcdsaP256, &rsa().root);  // same name
  const std::vector<std::string> names{"a.example"};
  const Certificate leaf = leaf_of(inter, p256, names);
  // The serial's last octet (TBS) and the signature's last octet.
  const crypto::Bytes der = leaf.to_der();
  const long serial_end = 4 + 4 + 5 + 2 + der[14] - 1;
  REQUIRE(der[13] == 0x02);
  struct Bad {
    const char* what;
    std::string pem;
    std::vector<std::string> names;
    core::ErrorKind kind;
    std::string message;  // exact
  };
  const std::string broken01 = "certificate chain from the CA is broken: certificate 0 is not signed by certificate 1";
  const Bad bad[] = {
      {"private key block", leaf.to_pem() + p256.to_pkcs8_pem(), names, core::ErrorKind::Crypto,
       "certificate chain from the CA contains a private key block"},
      {"wrong key", crypto::to_pem_chain({leaf_of(inter, other, names), inter.cert}), names, core::ErrorKind::Crypto,
       "certificate from the CA does not match the CSR key"},
      {"issuer first", crypto::to_pem_chain({inter.cert, leaf}), names, core::ErrorKind::Crypto,
       "certificate from the CA does not match the CSR key"},
      {"a name missing", crypto::to_pem_chain({leaf, inter.cert}), {"a.example", "b.example"},
       core::ErrorKind::Crypto, "certificate from the CA is for other names"},
      {"another name", crypto::to_pem_chain({leaf, inter.cert}), {"b.example"}, core::ErrorKind::Crypto,
       "certificate from the CA is for other names"},
      {"truncated", leaf.to_pem(), names, core::ErrorKind::Crypto,
       "certificate chain from the CA is truncated: the leaf comes without its issuer"},
      {"root before intermediate", crypto::to_pem_chain({leaf, rsa().root.cert, inter.cert}), names,
       core::ErrorKind::Crypto, broken01},
      {"same-named issuer with another key", crypto::to_pem_chain({leaf, twin.cert}), names, core::ErrorKind::Crypto,
       broken01},
      {"flipped TBS byte", crypto::to_pem_chain({flipped(leaf, serial_end), inter.cert}), names,
       core::ErrorKind::Crypto, broken01},
      {"flipped signature byte", crypto::to_pem_chain({flipped(leaf, -1), inter.cert}), names,
       core::ErrorKind::Crypto, broken01},
      {"flipped byte in the intermediate's signature", crypto::to_pem_chain({leaf, flipped(inter.cert, -1), rsa().root.cert}),
       names, core::ErrorKind::Crypto,
       "certificate chain from the CA is broken: certificate 1 is not signed by certificate 2"},
      {"garbage block", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n", names,
       core::ErrorKind::Parse, ""},
      {"no certificate", "", names, core::ErrorKind::Parse, ""},
  };
  for (const auto& b : bad) {
    INFO(b.what);
    const Outcome o = outcome(b.pem, b.names, p256.public_key());
    CHECK(o.thrown);
    CHECK(o.kind == b.kind);
    if (!b.message.empty()) CHECK(o.message == b.message);
  }
}


TEST_CASE("check_chain against the CSR's private key decides exactly as against its public key") {
  const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const PrivateKey other = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  const Certificate leaf = leaf_of(rsa().inter, p256, {"t.example"});
  const std::string good = crypto::to_pem_chain({leaf, rsa().inter.cert});
  const CheckedChain by_private = check_chain(good, {"t.example"}, p256, {}, kNow);
  const CheckedChain by_public = check_chain(good, {"t.example"}, p256.public_key(), {}, kNow);
  CHECK(by_private.from_summaries);
  CHECK(by_private.pem == by_public.pem);
  CHECK(by_private.not_after == by_public.not_after);
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"good chain", good},
      {"leaf alone", crypto::to_pem_chain({leaf})},
      {"broken signature", crypto::to_pem_chain({flipped(leaf, -3), rsa().inter.cert})},
  };
  for (const auto& [what, pem] : bad) {
    for (const std::vector<std::string>& names : {std::vector<std::string>{"t.example"}, std::vector<std::string>{"u.example"}}) {
      for (const PrivateKey* key : {&p256, &other}) {
        INFO(what << " / " << names.front() << " / " << (key == &p256 ? "CSR key" : "another key"));
        const Outcome a = outcome(pem, names, *key);
        const Outcome b = outcome(pem, names, key->public_key());
        CHECK(a.thrown == b.thrown);
        CHECK(a.kind == b.kind);
        CHECK(a.message == b.message);
      }
    }
  }
  CHECK(outcome(good, {"t.example"}, other).message.find("does not match the CSR key") != std::string::npos);
}

}  // namespace acme_sidecar::acme
