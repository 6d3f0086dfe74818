// crypto::read_certificate_der against OpenSSL: on every input it either says exactly what OpenSSL's
// Certificate says, or rejects the input (Parse error) so that the caller takes the OpenSSL path.
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "crypto/ossl_ptr.hpp"
#include "crypto/x509_der.hpp"
#include "test_util.hpp"

namespace acme_sidecar::crypto::test {
namespace {

using core::ErrorKind;

// What OpenSSL says about `der`, or nullopt when it refuses it (or its key, for the key facts).
struct Reference {
  std::optional<Certificate> cert;
};

Reference openssl(ByteView der) {
  try {
    return {Certificate::from_der(der)};
  } catch (const core::Error&) {
    return {};
  }
}

// Every fact equal; returns false (with the first difference in `why`) otherwise.
bool same_facts(const CertificateSummary& s, const Certificate& c, std::string& why) {
  if (s.dns_names != c.dns_names()) return why = "dns_names", false;
  if (s.ip_addresses != c.ip_addresses()) return why = "ip_addresses", false;
  if (s.not_before != c.not_before()) return why = "not_before", false;
  if (s.not_after != c.not_after()) return why = "not_after", false;
  if (s.subject_cn != c.subject_cn()) return why = "subject_cn", false;
  if (s.issuer_cn != c.issuer_cn()) return why = "issuer_cn", false;
  if (s.serial != c.serial_bytes()) return why = "serial", false;
  if (s.authority_key_id != c.authority_key_id()) return why = "authority_key_id", false;
  return true;
}

// The reader's verdict on `der` is acceptable: rejected, or equal to OpenSSL's facts. When it accepts
// and says `key` matches, OpenSSL must agree that the certificate's key is `key`'s.
bool agrees(ByteView der, const PrivateKey* key, std::string& why) {
  CertificateSummary s;
  try {
    s = read_certificate_der(der);
  } catch (const core::Error& e) {
    if (e.kind() != ErrorKind::Parse) return why = "error kind", false;
    return true;
  }
  const Reference ref = openssl(der);
  if (!ref.cert) return why = "accepted what OpenSSL rejects", false;
  if (!same_facts(s, *ref.cert, why)) return false;
  if (key != nullptr && public_key_matches(*key, s) && !key_matches_certificate(*key, *ref.cert)) {
    return why = "key match OpenSSL denies", false;
  }
  return true;
}

struct Keys {
  PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
  PrivateKey p384 = PrivateKey::generate(KeyAlgorithm::EcdsaP384);
  PrivateKey rsa = PrivateKey::generate(KeyAlgorithm::Rsa2048);
};

const Keys& keys() {
  static const Keys k;
  return k;
}

std::string random_label(std::mt19937& rng, std::size_t len) {
  static const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-";
  std::string out;
  for (std::size_t i = 0; i < len; ++i) {
    char c = alphabet[rng() % alphabet.size()];
    if (c == '-' && (i == 0 || i + 1 == len)) c = 'x';
    out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("read_certificate_der says what OpenSSL says about generated certificates") {
  std::mt19937 rng(20240611);
  const TestCa root = make_root("Test Root R1");
  const TestCa inter = make_intermediate(root, "Test Intermediate E7");
  const TestCa rsa_root = make_root("RSA Root", KeyAlgorithm::Rsa2048);
  const PrivateKey* subjects[] = {&keys().p256, &keys().p384, &keys().rsa};
  const TestCa* issuers[] = {&root, &inter, &rsa_root};

  int accepted = 0;
  for (int i = 0; i < 120; ++i) {
    CertificateSpec spec;
    const std::size_t names = rng() % 6;
    for (std::size_t n = 0; n < names; ++n) {
      // Short names, upper case (lower-cased by both), 63-byte labels and ~250-byte names.
      const std::size_t shape = rng() % 4;
      std::string name = shape == 0 ? random_label(rng, 1 + rng() % 10) + ".example"
                         : shape == 1 ? random_label(rng, 63) + "." + random_label(rng, 63) + ".example.org"
                         : shape == 2 ? "*." + random_label(rng, 8) + ".Example.COM"
                                      : random_label(rng, 60) + "." + random_label(rng, 60) + "." +
                                            random_label(rng, 60) + "." + random_label(rng, 60) + ".org";
      spec.dns_names.push_back(name);
    }
    if (rng() % 3 == 0) spec.ip_addresses.push_back("192.0.2." + std::to_string(rng() % 256));
    if (rng() % 3 == 0) spec.ip_addresses.push_back("2001:db8::" + std::to_string(rng() % 9999 + 1));
    if (rng() % 4 == 0) spec.ip_addresses.push_back("::ffff:198.51.100.7");
    if (spec.dns_names.empty() && spec.ip_addresses.empty()) spec.dns_names.push_back("only.example");
    if (rng() % 4 == 0) spec.common_name = "Explicit CN " + std::to_string(i);
    // UTCTime before 2050, GeneralizedTime from 2050 on, the 9999 "no expiry" date, pre-1970.
    const std::size_t when = rng() % 5;
    spec.not_before = when == 4 ? TimePoint(std::chrono::seconds(-86400LL * 365 * 10)) : kNow - 1h * static_cast<int>(rng() % 5000);
    spec.not_after = when == 0   ? kNow + 90 * 24h
                     : when == 1 ? TimePoint(std::chrono::seconds(2'524'608'000LL + static_cast<long long>(rng() % 100'000'000)))  // ≥ 2050
                     : when == 2 ? TimePoint::max()
                     : when == 3 ? TimePoint(std::chrono::seconds(2'524'607'999LL))  // 2049-12-31T23:59:59Z
                                 : kNow;
    spec.is_ca = rng() % 8 == 0;
    spec.omit_key_identifiers = rng() % 8 == 0;
    const std::size_t serial = rng() % 4;
    if (serial == 1) spec.serial = {0x00, 0x80, 0x01};
    if (serial == 2) spec.serial = {0x01};
    if (serial == 3) spec.serial = Bytes(20, 0x7f);
    const PrivateKey& subject = *subjects[i % 3];
    const TestCa& issuer = *issuers[(i / 3) % 3];
    const Certificate cert = i % 11 == 0 ? make_self_signed(subject, spec)
                                         : issue_certificate(issuer.key, issuer.cert, subject.public_key(), spec);
    const Bytes der = cert.to_der();
    INFO("certificate " << i);
    CertificateSummary s;
    REQUIRE_NOTHROW(s = read_certificate_der(der));
    std::string why;
    const bool same = same_facts(s, cert, why);
    INFO(why);
    CHECK(same);
    REQUIRE(s.key_algorithm);
    CHECK(*s.key_algorithm == cert.public_key().algorithm());
    CHECK(public_key_matches(subject, s));
    CHECK_FALSE(public_key_matches(i % 3 == 0 ? keys().p384 : keys().p256, s));
    CHECK_FALSE(public_key_matches(root.key, s));
    ++accepted;
  }
  CHECK(accepted == 120);
  // The CAs themselves (CA:TRUE, keyCertSign), RSA included.
  for (const TestCa* ca : issuers) {
    const CertificateSummary s = read_certificate_der(ca->cert.to_der());
    std::string why;
    CHECK(same_facts(s, ca->cert, why));
    CHECK(public_key_matches(ca->key, s));
  }
}

TEST_CASE("read_certificate_der reads a PEM chain leaf first and refuses other blocks") {
  const TestCa root = make_root("Chain Root");
  const TestCa inter = make_intermediate(root, "Chain Intermediate");
  const Certificate leaf =
      issue_certificate(inter.key, inter.cert, keys().p256.public_key(), {"chain.example"}, kNow, 90 * 24h);
  const auto chain = read_certificate_pem_chain(leaf.to_pem() + inter.cert.to_pem());
  REQUIRE(chain.size() == 2);
  CHECK(chain[0].dns_names == std::vector<std::string>{"chain.example"});
  CHECK(chain[0].issuer_cn == "Chain Intermediate");
  CHECK(chain[1].subject_cn == "Chain Intermediate");
  REQUIRE_CRYPTO_ERROR(read_certificate_pem_chain(""), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(read_certificate_pem_chain(leaf.to_pem() + keys().p256.to_pkcs8_pem()), ErrorKind::Parse);
}

TEST_CASE("read_certificate_der rejects every truncation and agrees with OpenSSL on every flipped byte") {
  const TestCa root = make_root("Hostile Root");
  const TestCa rsa_root = make_root("Hostile RSA Root", KeyAlgorithm::Rsa2048);
  CertificateSpec spec;
  spec.dns_names = {"a.example", "B.example"};
  spec.ip_addresses = {"192.0.2.1", "2001:db8::1"};
  spec.not_before = kNow;
  spec.not_after = TimePoint(std::chrono::seconds(2'600'000'000LL));  // GeneralizedTime
  struct Case {
    const char* what;
    Certificate cert;
    const PrivateKey* key;
  };
  std::vector<Case> cases;
  cases.push_back({"EC leaf", issue_certificate(root.key, root.cert, keys().p256.public_key(), spec), &keys().p256});
  spec.not_after = kNow + 90 * 24h;  // UTCTime
  cases.push_back({"RSA leaf", issue_certificate(rsa_root.key, rsa_root.cert, keys().rsa.public_key(), spec),
                   &keys().rsa});
  cases.push_back({"EC root", root.cert, &root.key});
  // openssl-CLI certificates with the extensions public CAs add (CRL DP, AIA, policies), RSA until 2054.
  for (const char* name : {"leaf.der", "rsa.der", "ca.der"}) {
    std::ifstream in(std::string(ACME_SIDECAR_DER_CORPUS) + "/" + name, std::ios::binary);
    const Bytes der((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE_FALSE(der.empty());
    cases.push_back({name, Certificate::from_der(der), nullptr});
  }

  for (const auto& c : cases) {
    INFO(c.what);
    const Bytes der = c.cert.to_der();
    REQUIRE_NOTHROW(read_certificate_der(der));
    int truncations_accepted = 0;
    for (std::size_t len = 0; len < der.size(); ++len) {
      try {
        (void)read_certificate_der(ByteView(der.data(), len));
        ++truncations_accepted;
      } catch (const core::Error& e) {
        CHECK(e.kind() == ErrorKind::Parse);
      }
    }
    CHECK(truncations_accepted == 0);
    // Trailing byte and longer claimed lengths.
    Bytes longer = der;
    longer.push_back(0);
    REQUIRE_CRYPTO_ERROR(read_certificate_der(longer), ErrorKind::Parse);

    int disagreements = 0, accepted = 0;
    std::string first;
    for (std::size_t i = 0; i < der.size(); ++i) {
      for (const std::uint8_t mask : {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xff}) {
        Bytes m = der;
        m[i] ^= mask;
        std::string why;
        if (!agrees(m, c.key, why)) {
          if (disagreements++ == 0) first = "offset " + std::to_string(i) + " mask " + std::to_string(mask) + ": " + why;
        }
        try {
          (void)read_certificate_der(m);
          ++accepted;
        } catch (const core::Error&) {
        }
      }
    }
    INFO(first);
    CHECK(disagreements == 0);
    CHECK(accepted > 0);  // flips inside names, times and signatures are still certificates
  }
}

TEST_CASE("read_certificate_der refuses non-DER shapes OpenSSL might accept") {
  const TestCa root = make_root("Shapes Root");
  const Certificate leaf =
      issue_certificate(root.key, root.cert, keys().p256.public_key(), {"shape.example"}, kNow, 90 * 24h);
  const Bytes der = leaf.to_der();
  REQUIRE(der[0] == 0x30);
  REQUIRE(der[1] == 0x82);
  // Outer length in a longer-than-needed form (0x83 00 xx xx) and indefinite form (0x80 ... 00 00).
  Bytes wide = {0x30, 0x83, 0x00, der[2], der[3]};
  wide.insert(wide.end(), der.begin() + 4, der.end());
  REQUIRE_CRYPTO_ERROR(read_certificate_der(wide), ErrorKind::Parse);
  Bytes indefinite = {0x30, 0x80};
  indefinite.insert(indefinite.end(), der.begin() + 4, der.end());
  indefinite.insert(indefinite.end(), {0x00, 0x00});
  REQUIRE_CRYPTO_ERROR(read_certificate_der(indefinite), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(read_certificate_der(Bytes{}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(read_certificate_der(Bytes{0x30}), ErrorKind::Parse);
  REQUIRE_CRYPTO_ERROR(read_certificate_der(Bytes{0x30, 0x00}), ErrorKind::Parse);
}

}  // namespace acme_sidecar::crypto::test

// ---- signature_verifies against X509_verify ------------------------------------------------------

namespace acme_sidecar::crypto::test {
namespace {

// `cert` re-signed by `key` with `md` (RSA-PSS when pss): X509_sign rewrites both algorithm fields.
Certificate resign(const Certificate& cert, const PrivateKey& key, const EVP_MD* md, bool pss = false) {
  X509Ptr x(X509_dup(cert.native()));
  REQUIRE(x);
  if (pss) {
    EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    REQUIRE(EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key.native()) == 1);
    REQUIRE(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
    REQUIRE(X509_sign_ctx(x.get(), ctx.get()) > 0);
  } else {
    REQUIRE(X509_sign(x.get(), key.native(), md) > 0);
  }
  return Certificate::from_native(x.get());
}

// OpenSSL's verdict on the signature alone (what issued_by adds to the name comparison).
bool openssl_signature(const Certificate& cert, const Certificate& issuer) {
  EVP_PKEY* key = X509_get0_pubkey(issuer.native());
  const bool ok = key != nullptr && X509_verify(cert.native(), key) == 1;
  ERR_clear_error();
  return ok;
}

bool openssl_same_name(const Certificate& cert, const Certificate& issuer) {
  return X509_NAME_cmp(X509_get_issuer_name(cert.native()), X509_get_subject_name(issuer.native())) == 0;
}

}  // namespace

TEST_CASE("signature_verifies says what X509_verify says, or nothing outside the subset") {
  const TestCa ec_root = make_root("Sig EC Root");
  const TestCa p384_root = make_root("Sig P-384 Root", KeyAlgorithm::EcdsaP384);
  const TestCa rsa_root = make_root("Sig RSA Root", KeyAlgorithm::Rsa2048);
  const TestCa twin_root = make_root("Sig EC Root");  // same name as ec_root, another key
  const TestCa* issuers[] = {&ec_root, &p384_root, &rsa_root, &twin_root};
  const TestCa inter = make_intermediate(rsa_root, "Sig Intermediate");

  struct Case {
    std::string what;
    Certificate cert;
    const Certificate* issuer;  // the true issuer
    bool in_subset;
  };
  std::vector<Case> cases;
  const auto leaf_of = [&](const TestCa& ca, const PrivateKey& subject) {
    return issue_certificate(ca.key, ca.cert, subject.public_key(), {"sig.example"}, kNow, 90 * 24h);
  };
  for (const TestCa* ca : {&ec_root, &p384_root}) {
    const Certificate leaf = leaf_of(*ca, keys().rsa);
    cases.push_back({ca->cert.subject_cn() + " sha256", resign(leaf, ca->key, EVP_sha256()), &ca->cert, true});
    cases.push_back({ca->cert.subject_cn() + " sha384", resign(leaf, ca->key, EVP_sha384()), &ca->cert, true});
    cases.push_back({ca->cert.subject_cn() + " sha512", resign(leaf, ca->key, EVP_sha512()), &ca->cert, false});
  }
  const Certificate rsa_leaf = leaf_of(rsa_root, keys().p256);
  for (const auto& [name, md] : {std::pair{"sha256", EVP_sha256()}, {"sha384", EVP_sha384()}, {"sha512", EVP_sha512()}}) {
    cases.push_back({std::string("RSA ") + name, resign(rsa_leaf, rsa_root.key, md), &rsa_root.cert, true});
  }
  cases.push_back({"RSA SHA-1", resign(rsa_leaf, rsa_root.key, EVP_sha1()), &rsa_root.cert, false});
  cases.push_back({"intermediate", inter.cert, &rsa_root.cert, true});
  cases.push_back({"self-signed root", ec_root.cert, &ec_root.cert, true});

  // RSA-PSS parameters are a SEQUENCE the reader does not take: the whole certificate goes to OpenSSL.
  const Certificate pss = resign(rsa_leaf, rsa_root.key, EVP_sha256(), true);
  REQUIRE(openssl_signature(pss, rsa_root.cert));
  REQUIRE_CRYPTO_ERROR(read_certificate_der(pss.to_der()), ErrorKind::Parse);

  for (const auto& c : cases) {
    INFO(c.what);
    const CertificateSummary s = read_certificate_der(c.cert.to_der());
    CHECK(s.signature_algorithm.has_value() == c.in_subset);
    const CertificateSummary true_issuer = read_certificate_der(c.issuer->to_der());
    REQUIRE(openssl_signature(c.cert, *c.issuer));
    CHECK(same_name(s.issuer_name, true_issuer.subject_name));
    const auto verdict = signature_verifies(s, true_issuer);
    if (c.in_subset) {
      CHECK(verdict == std::optional<bool>(true));
    } else {
      CHECK_FALSE(verdict.has_value());
    }
    // Every other issuer: the same verdict as OpenSSL whenever there is one.
    for (const TestCa* other : issuers) {
      INFO("other issuer " << other->cert.subject_cn());
      const CertificateSummary o = read_certificate_der(other->cert.to_der());
      const bool ref = openssl_signature(c.cert, other->cert);
      if (const auto v = signature_verifies(s, o)) CHECK(*v == ref);
      if (same_name(s.issuer_name, o.subject_name)) CHECK(openssl_same_name(c.cert, other->cert));
      if (other == &twin_root && c.issuer == &ec_root.cert) {
        CHECK(same_name(s.issuer_name, o.subject_name));  // same name, and yet
        CHECK_FALSE(ref);
        if (c.in_subset) CHECK(signature_verifies(s, o) == std::optional<bool>(false));
      }
    }
  }
}

TEST_CASE("signature_verifies keeps issuers apart across its key cache (more issuers than it holds)") {
  std::vector<TestCa> roots;
  for (int i = 0; i < 10; ++i)
    roots.push_back(make_root("Cache Root " + std::to_string(i), i % 3 == 0 ? KeyAlgorithm::Rsa2048 : KeyAlgorithm::EcdsaP256));
  std::vector<CertificateSummary> leaves, issuers;
  for (const auto& ca : roots) {
    leaves.push_back(read_certificate_der(
        issue_certificate(ca.key, ca.cert, keys().p256.public_key(), {"cache.example"}, kNow, 90 * 24h).to_der()));
    issuers.push_back(read_certificate_der(ca.cert.to_der()));
  }
  for (int round = 0; round < 2; ++round) {  // the second round finds some keys cached, some evicted
    for (std::size_t l = 0; l < leaves.size(); ++l) {
      for (std::size_t i = 0; i < issuers.size(); ++i) {
        INFO("leaf " << l << " issuer " << i);
        CHECK(signature_verifies(leaves[l], issuers[i]) == std::optional<bool>(l == i));
      }
    }
  }
}

TEST_CASE("signature_verifies agrees with X509_verify on every flipped byte of certificate and issuer") {
  const TestCa ec_root = make_root("Flip EC Root");
  const TestCa rsa_root = make_root("Flip RSA Root", KeyAlgorithm::Rsa2048);
  struct Pair {
    const char* what;
    Certificate cert;
    Certificate issuer;
  };
  const Pair pairs[] = {
      {"EC issuer", issue_certificate(ec_root.key, ec_root.cert, keys().p256.public_key(), {"f.example"}, kNow, 90 * 24h),
       ec_root.cert},
      {"RSA issuer", issue_certificate(rsa_root.key, rsa_root.cert, keys().p256.public_key(), {"f.example"}, kNow, 90 * 24h),
       rsa_root.cert},
  };
  for (const auto& p : pairs) {
    INFO(p.what);
    const Bytes der = p.cert.to_der();
    const Bytes issuer_der = p.issuer.to_der();
    const CertificateSummary s = read_certificate_der(der);
    const CertificateSummary issuer = read_certificate_der(issuer_der);
    REQUIRE(signature_verifies(s, issuer) == std::optional<bool>(true));
    int disagreements = 0, refused = 0, undecided = 0;
    std::string first;
    const auto compare = [&](const Bytes& cert_bytes, const Bytes& issuer_bytes, std::size_t at, const char* side) {
      CertificateSummary a, b;
      try {
        a = read_certificate_der(cert_bytes);
        b = read_certificate_der(issuer_bytes);
      } catch (const core::Error&) {
        return;  // outside the subset: OpenSSL's path
      }
      const auto v = signature_verifies(a, b);
      if (!v) {
        ++undecided;
        return;
      }
      const bool ref = openssl_signature(Certificate::from_der(cert_bytes), Certificate::from_der(issuer_bytes));
      if (*v != ref && disagreements++ == 0) first = std::string(side) + " offset " + std::to_string(at);
      if (!*v) ++refused;
    };
    for (std::size_t i = 0; i < der.size(); ++i) {
      Bytes m = der;
      m[i] ^= 0x01;
      compare(m, issuer_der, i, "certificate");
    }
    for (std::size_t i = 0; i < issuer_der.size(); ++i) {
      Bytes m = issuer_der;
      m[i] ^= 0x01;
      compare(der, m, i, "issuer");
    }
    INFO(first);
    CHECK(disagreements == 0);
    CHECK(refused > 100);  // flips in the TBS, the signature and the issuer's key are caught
    INFO("undecided " << undecided);
    CHECK(undecided > 0);  // e.g. an issuer EC point pushed off the curve, an unknown algorithm OID
  }
}

}  // namespace acme_sidecar::crypto::test
