#include "crypto/key.hpp"

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

struct AlgName {
  KeyAlgorithm alg;
  std::string_view name;
};
constexpr std::array<AlgName, 5> kAlgNames{{
    {KeyAlgorithm::EcdsaP256, "ecdsa-p256"},
    {KeyAlgorithm::EcdsaP384, "ecdsa-p384"},
    {KeyAlgorithm::Rsa2048, "rsa-2048"},
    {KeyAlgorithm::Rsa3072, "rsa-3072"},
    {KeyAlgorithm::Rsa4096, "rsa-4096"},
}};

std::shared_ptr<EVP_PKEY> share(EvpPkeyPtr key) { return std::shared_ptr<EVP_PKEY>(key.release(), OsslDeleter{}); }

// Which of the supported shapes a key has; a description of it otherwise (for the error message).
std::optional<KeyAlgorithm> classify(EVP_PKEY* key, std::string& description) {
  const int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_EC) {
    std::array<char, 64> group{};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group.data(), group.size(), &len) != 1) {
      detail::clear_openssl_errors();
      description = "EC key with explicit or unknown curve parameters";
      return std::nullopt;
    }
    const std::string_view name(group.data(), len);
    if (name == "prime256v1" || name == "P-256") return KeyAlgorithm::EcdsaP256;
    if (name == "secp384r1" || name == "P-384") return KeyAlgorithm::EcdsaP384;
    description = "EC key on curve " + std::string(name);
    return std::nullopt;
  }
  if (id == EVP_PKEY_RSA) {
    const int bits = EVP_PKEY_get_bits(key);
    if (bits == 2048) return KeyAlgorithm::Rsa2048;
    if (bits == 3072) return KeyAlgorithm::Rsa3072;
    if (bits == 4096) return KeyAlgorithm::Rsa4096;
    description = "RSA key of " + std::to_string(bits) + " bits";
    return std::nullopt;
  }
  const char* type = EVP_PKEY_get0_type_name(key);
  description = std::string(type != nullptr ? type : "unknown") + " key";
  return std::nullopt;
}

KeyAlgorithm require_supported(EVP_PKEY* key) {
  std::string description;
  if (auto alg = classify(key, description)) return *alg;
  throw Error(ErrorKind::Crypto, "unsupported key type: " + description +
                                     " (supported: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096)");
}

bool has_private_part(EVP_PKEY* key) {
  BIGNUM* raw = nullptr;
  const char* name = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA ? OSSL_PKEY_PARAM_RSA_D : OSSL_PKEY_PARAM_PRIV_KEY;
  const bool has = EVP_PKEY_get_bn_param(key, name, &raw) == 1;
  BignumPtr holder(raw);
  detail::clear_openssl_errors();
  return has;
}

// Only the public half, so a PublicKey never keeps a private key alive. Keys that are public already
// (e.g. from a certificate) are shared; otherwise the public parameters are exported and re-imported,
// which is ~10x cheaper than a DER round trip through OpenSSL 3.0's decoders.
EvpPkeyPtr public_copy(EVP_PKEY* key) {
  if (!has_private_part(key)) return up_ref(key);
  OSSL_PARAM* raw_params = nullptr;
  if (EVP_PKEY_todata(key, EVP_PKEY_PUBLIC_KEY, &raw_params) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "cannot export public key");
  }
  OsslParamPtr params(raw_params);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) detail::throw_openssl(ErrorKind::Internal, "fromdata init");
  EVP_PKEY* out = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "cannot import public key");
  }
  return EvpPkeyPtr(out);
}

// n == p*q for RSA keys that carry their primes (all PKCS#1/PKCS#8 keys do).
bool rsa_factors_match(EVP_PKEY* key) {
  BIGNUM* raw_n = nullptr;
  BIGNUM* raw_p = nullptr;
  BIGNUM* raw_q = nullptr;
  const bool have_n = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &raw_n) == 1;
  const bool have_p = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_FACTOR1, &raw_p) == 1;
  const bool have_q = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_FACTOR2, &raw_q) == 1;
  BignumPtr n(raw_n), p(raw_p), q(raw_q);
  detail::clear_openssl_errors();
  if (!have_n) return false;
  if (!have_p || !have_q) return true;  // nothing to compare against
  BignumPtr product(BN_new());
  BnCtxPtr ctx(BN_CTX_new());
  if (!product || !ctx || BN_mul(product.get(), p.get(), q.get(), ctx.get()) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "BN_mul failed");
  }
  return BN_cmp(product.get(), n.get()) == 0;
}

// Passphrase callback that refuses: an encrypted key must fail instead of prompting on a terminal.
int no_passphrase(char*, int, int, void*) { return -1; }

// ---- fast path for EC private keys ---------------------------------------------------------------
// OpenSSL 3.0 reads every PEM private key through OSSL_DECODER, whose context set-up alone costs
// ~1-2 ms (it enumerates every decoder and key manager) — the top item of the sidecar's CPU profile
// while issuing, since every tls.key is read back for inspection. P-256/P-384 keys in PKCS#8 or SEC1
// form are tiny DER structures: they are read here and imported with EVP_PKEY_fromdata (~20x cheaper).
// Anything unexpected returns nullopt and the caller takes OpenSSL's full path, so errors and odd
// encodings behave exactly as before; the pairwise check afterwards still proves the key consistent.

// One DER TLV from the front of `in` (definite lengths up to 2 length bytes: keys are small).
bool der_next(ByteView& in, std::uint8_t& tag, ByteView& value) {
  if (in.size() < 2) return false;
  tag = in[0];
  std::size_t len = in[1];
  std::size_t header = 2;
  if (len & 0x80) {
    const std::size_t n = len & 0x7f;
    if (n == 0 || n > 2 || in.size() < 2 + n) return false;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | in[2 + i];
    header += n;
  }
  if (in.size() - header < len) return false;
  value = in.subspan(header, len);
  in = in.subspan(header + len);
  return true;
}

bool der_equals(ByteView v, std::initializer_list<std::uint8_t> bytes) {
  return v.size() == bytes.size() && std::equal(v.begin(), v.end(), bytes.begin());
}

// The curve of a namedCurve OID (content octets), with its private scalar size.
std::optional<std::pair<const char*, std::size_t>> named_curve(ByteView oid) {
  if (der_equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})) return std::make_pair("P-256", std::size_t{32});
  if (der_equals(oid, {0x2b, 0x81, 0x04, 0x00, 0x22})) return std::make_pair("P-384", std::size_t{48});
  return std::nullopt;
}

// The parts of an EC private key the fast paths use (views into the DER).
struct EcParts {
  const char* curve = nullptr;  // "P-256" / "P-384"
  std::size_t field = 0;        // scalar / coordinate size
  ByteView scalar;
  ByteView point;  // uncompressed 04||X||Y
};

// SEC1 ECPrivateKey (RFC 5915): SEQUENCE { INTEGER 1, OCTET STRING d, [0] OID curve OPT, [1] BIT STRING Q OPT }.
// `curve_oid` comes from the PKCS#8 algorithm when wrapped, else from [0]. Requires Q (OpenSSL writes it).
std::optional<EcParts> ec_parts_sec1(ByteView der, std::optional<ByteView> curve_oid) {
  std::uint8_t tag = 0;
  ByteView seq, field;
  if (!der_next(der, tag, seq) || tag != 0x30 || !der.empty()) return std::nullopt;
  if (!der_next(seq, tag, field) || tag != 0x02 || !der_equals(field, {0x01})) return std::nullopt;
  ByteView scalar;
  if (!der_next(seq, tag, scalar) || tag != 0x04) return std::nullopt;
  std::optional<ByteView> point;
  while (!seq.empty()) {
    if (!der_next(seq, tag, field)) return std::nullopt;
    ByteView inner = field, value;
    std::uint8_t inner_tag = 0;
    if (!der_next(inner, inner_tag, value) || !inner.empty()) return std::nullopt;
    if (tag == 0xa0 && inner_tag == 0x06) {
      if (curve_oid && !std::equal(curve_oid->begin(), curve_oid->end(), value.begin(), value.end())) {
        return std::nullopt;
      }
      curve_oid = value;
    } else if (tag == 0xa1 && inner_tag == 0x03) {
      if (value.size() < 2 || value[0] != 0x00) return std::nullopt;  // no unused bits
      point = value.subspan(1);
    } else {
      return std::nullopt;
    }
  }
  if (!curve_oid || !point) return std::nullopt;
  auto curve = named_curve(*curve_oid);
  if (!curve || scalar.empty() || scalar.size() > curve->second) return std::nullopt;
  if (point->size() != 1 + 2 * curve->second || (*point)[0] != 0x04) return std::nullopt;  // uncompressed
  return EcParts{curve->first, curve->second, scalar, *point};
}

EvpPkeyPtr ec_from_parts(const EcParts& parts) {
  BignumPtr d(BN_secure_new());
  if (!d || BN_bin2bn(parts.scalar.data(), static_cast<int>(parts.scalar.size()), d.get()) == nullptr) return nullptr;
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, parts.curve, 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, parts.point.data(), parts.point.size()) != 1) {
    return nullptr;
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* out = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_KEYPAIR, params.get()) != 1) {
    return nullptr;
  }
  return EvpPkeyPtr(out);
}

// PKCS#8 PrivateKeyInfo: SEQUENCE { INTEGER 0, SEQUENCE { OID id-ecPublicKey, OID curve }, OCTET STRING sec1 }.
std::optional<EcParts> ec_parts_pkcs8(ByteView der) {
  std::uint8_t tag = 0;
  ByteView seq, field, alg;
  if (!der_next(der, tag, seq) || tag != 0x30 || !der.empty()) return std::nullopt;
  if (!der_next(seq, tag, field) || tag != 0x02 || !der_equals(field, {0x00})) return std::nullopt;
  if (!der_next(seq, tag, alg) || tag != 0x30) return std::nullopt;
  ByteView oid, curve;
  if (!der_next(alg, tag, oid) || tag != 0x06 || !der_equals(oid, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01})) {
    return std::nullopt;  // not id-ecPublicKey (RSA, Ed25519, ...): OpenSSL's path
  }
  if (!der_next(alg, tag, curve) || tag != 0x06 || !alg.empty()) return std::nullopt;
  ByteView sec1;
  if (!der_next(seq, tag, sec1) || tag != 0x04 || !seq.empty()) return std::nullopt;  // no attributes
  return ec_parts_sec1(sec1, curve);
}

// The first private key block of `blocks`, read by the fast path (PKCS#8 or SEC1 EC keys).
std::optional<EcParts> first_ec_parts(const std::vector<detail::PemBlock>& blocks) {
  for (const auto& block : blocks) {
    if (block.label == "PRIVATE KEY") return ec_parts_pkcs8(block.der);
    if (block.label == "EC PRIVATE KEY") return ec_parts_sec1(block.der, std::nullopt);
    if (block.label.find("PRIVATE KEY") != std::string::npos) return std::nullopt;
  }
  return std::nullopt;  // only the first private key block counts, as with PEM_read_bio_PrivateKey
}

// The first private key block of `pem` through the fast path, or nullptr.
EvpPkeyPtr fast_ec_private_key(std::string_view pem) {
  std::vector<detail::PemBlock> blocks;
  try {
    blocks = detail::parse_pem_blocks(pem);
  } catch (const Error&) {
    return nullptr;
  }
  EvpPkeyPtr key;
  if (auto parts = first_ec_parts(blocks)) key = ec_from_parts(*parts);
  for (auto& block : blocks) OPENSSL_cleanse(block.der.data(), block.der.size());
  detail::clear_openssl_errors();
  return key;
}

// ---- fast path for writing EC private keys --------------------------------------------------------
// The mirror of ec_parts_pkcs8: OpenSSL 3.0 writes PEM private keys through OSSL_ENCODER, whose
// set-up costs ~0.1 ms (once per issued certificate). P-256/P-384 PrivateKeyInfo is written here,
// byte for byte what OpenSSL writes (tests compare both); anything else returns nullopt.

void der_append(Bytes& out, std::uint8_t tag, ByteView content) {
  out.push_back(tag);
  const std::size_t n = content.size();
  if (n < 0x80) {
    out.push_back(static_cast<std::uint8_t>(n));
  } else if (n <= 0xff) {
    out.push_back(0x81);
    out.push_back(static_cast<std::uint8_t>(n));
  } else {
    out.push_back(0x82);
    out.push_back(static_cast<std::uint8_t>(n >> 8));
    out.push_back(static_cast<std::uint8_t>(n & 0xff));
  }
  out.insert(out.end(), content.begin(), content.end());
}

// Wipes its bytes when it goes away: the buffers below hold the private scalar.
struct SecretBytes {
  Bytes b;
  ~SecretBytes() { OPENSSL_cleanse(b.data(), b.size()); }
};

std::optional<std::string> fast_ec_pkcs8_pem(EVP_PKEY* key, KeyAlgorithm alg) {
  static constexpr std::uint8_t kP256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
  static constexpr std::uint8_t kP384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
  static constexpr std::uint8_t kEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
  ByteView curve;
  std::size_t field = 0;
  if (alg == KeyAlgorithm::EcdsaP256) {
    curve = ByteView(kP256, sizeof kP256);
    field = 32;
  } else if (alg == KeyAlgorithm::EcdsaP384) {
    curve = ByteView(kP384, sizeof kP384);
    field = 48;
  } else {
    return std::nullopt;
  }
  int include_public = 1;
  if (EVP_PKEY_get_int_param(key, OSSL_PKEY_PARAM_EC_INCLUDE_PUBLIC, &include_public) == 1 && include_public == 0) {
    return std::nullopt;  // asked to leave Q out: OpenSSL's encoder honours that
  }
  BIGNUM* raw_d = nullptr;
  if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &raw_d) != 1) return std::nullopt;
  BignumPtr d(raw_d);
  BN_set_flags(d.get(), BN_FLG_CONSTTIME);
  SecretBytes scalar{Bytes(field)};
  if (BN_bn2binpad(d.get(), scalar.b.data(), static_cast<int>(field)) != static_cast<int>(field)) return std::nullopt;
  Bytes point(1 + 2 * field);
  std::size_t point_len = 0;
  if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size(), &point_len) != 1 ||
      point_len != point.size() || point[0] != 0x04) {
    return std::nullopt;  // compressed or hybrid form: OpenSSL's path keeps it as it is
  }
  static constexpr std::uint8_t kOne[] = {0x01}, kZero[] = {0x00};
  // ECPrivateKey { 1, d, [1] BIT STRING Q } (the curve is in the PKCS#8 algorithm, as OpenSSL writes it).
  Bytes bits{0x00};
  bits.insert(bits.end(), point.begin(), point.end());
  Bytes tagged_q;
  der_append(tagged_q, 0x03, ByteView(bits));
  SecretBytes sec1_body, sec1, body, info;
  der_append(sec1_body.b, 0x02, ByteView(kOne, 1));
  der_append(sec1_body.b, 0x04, ByteView(scalar.b));
  der_append(sec1_body.b, 0xa1, ByteView(tagged_q));
  der_append(sec1.b, 0x30, ByteView(sec1_body.b));
  Bytes algorithm_body, algorithm;
  der_append(algorithm_body, 0x06, ByteView(kEcPublicKey, sizeof kEcPublicKey));
  der_append(algorithm_body, 0x06, curve);
  der_append(algorithm, 0x30, ByteView(algorithm_body));
  der_append(body.b, 0x02, ByteView(kZero, 1));
  body.b.insert(body.b.end(), algorithm.begin(), algorithm.end());
  der_append(body.b, 0x04, ByteView(sec1.b));
  der_append(info.b, 0x30, ByteView(body.b));
  return detail::to_pem("PRIVATE KEY", ByteView(info.b));
}

}  // namespace

std::string_view to_string(KeyAlgorithm alg) noexcept {
  for (const auto& entry : kAlgNames) {
    if (entry.alg == alg) return entry.name;
  }
  return "unknown";
}

KeyAlgorithm parse_key_algorithm(std::string_view text) {
  for (const auto& entry : kAlgNames) {
    if (entry.name == text) return entry.alg;
  }
  throw Error(ErrorKind::Config,
              "unknown key algorithm '" + std::string(text.substr(0, 64)) +
                  "' (accepted: ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096)");
}

// ---- PublicKey -----------------------------------------------------------------------------------

PublicKey PublicKey::from_pem(std::string_view pem) {
  const auto blocks = detail::parse_pem_blocks(pem);
  for (const auto& block : blocks) {
    if (block.label == "PUBLIC KEY") return from_der(block.der);
  }
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM block found where a public key was expected");
  throw Error(ErrorKind::Parse, "expected a PUBLIC KEY PEM block, found " + blocks.front().label);
}

PublicKey PublicKey::from_der(ByteView der) {
  if (der.empty()) throw Error(ErrorKind::Parse, "empty public key");
  const unsigned char* p = der.data();
  EvpPkeyPtr key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!key) detail::throw_openssl(ErrorKind::Parse, "public key DER does not parse");
  if (p != der.data() + der.size()) throw Error(ErrorKind::Parse, "trailing bytes after public key DER");
  const KeyAlgorithm alg = require_supported(key.get());
  return PublicKey(share(std::move(key)), alg);
}

PublicKey PublicKey::from_native(EVP_PKEY* key) {
  if (key == nullptr) throw Error(ErrorKind::Internal, "null public key");
  const KeyAlgorithm alg = require_supported(key);
  return PublicKey(share(public_copy(key)), alg);
}

std::string PublicKey::to_pem() const { return detail::to_pem("PUBLIC KEY", to_der()); }

Bytes PublicKey::to_der() const {
  unsigned char* raw = nullptr;
  const int len = i2d_PUBKEY(key_.get(), &raw);
  if (len <= 0) detail::throw_openssl(ErrorKind::Crypto, "cannot encode public key");
  OsslBytesPtr der(raw);
  return Bytes(der.get(), der.get() + len);
}

bool operator==(const PublicKey& a, const PublicKey& b) {
  const bool eq = EVP_PKEY_eq(a.native(), b.native()) == 1;
  detail::clear_openssl_errors();
  return eq;
}

// ---- PrivateKey ----------------------------------------------------------------------------------

EvpPkeyCtxPtr SignContextPool::take() {
  std::lock_guard lock(mu_);
  if (idle_.empty()) return nullptr;
  EvpPkeyCtxPtr ctx = std::move(idle_.back());
  idle_.pop_back();
  return ctx;
}

void SignContextPool::give(EvpPkeyCtxPtr ctx) {
  std::lock_guard lock(mu_);
  if (idle_.size() < 64) idle_.push_back(std::move(ctx));  // bounded by the threads that sign at once
}

namespace {

// Curve parameters for EC key generation, made once: EVP_PKEY_Q_keygen builds the curve group from its
// name on every call, which was about 40 % of a P-256 key generation. Immutable after construction,
// so every thread can generate from it (each call has its own EVP_PKEY_CTX).
EVP_PKEY* ec_parameters(KeyAlgorithm alg) {
  auto make = [](const char* curve) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* params = nullptr;
    if (!ctx || EVP_PKEY_paramgen_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(ctx.get(), curve) != 1 || EVP_PKEY_paramgen(ctx.get(), &params) != 1) {
      detail::throw_openssl(ErrorKind::Crypto, std::string("cannot create the parameters of ") + curve);
    }
    return EvpPkeyPtr(params);
  };
  static const EvpPkeyPtr p256 = make("P-256");
  static const EvpPkeyPtr p384 = make("P-384");
  return alg == KeyAlgorithm::EcdsaP384 ? p384.get() : p256.get();
}

EvpPkeyPtr generate_ec(KeyAlgorithm alg) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, ec_parameters(alg), nullptr));
  EVP_PKEY* out = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_generate(ctx.get(), &out) != 1) return nullptr;
  return EvpPkeyPtr(out);
}

}  // namespace

PrivateKey PrivateKey::generate(KeyAlgorithm alg) {
  EvpPkeyPtr key;
  switch (alg) {
    case KeyAlgorithm::EcdsaP256:
    case KeyAlgorithm::EcdsaP384: key = generate_ec(alg); break;
    case KeyAlgorithm::Rsa2048: key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})); break;
    case KeyAlgorithm::Rsa3072: key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072})); break;
    case KeyAlgorithm::Rsa4096: key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{4096})); break;
  }
  if (!key) detail::throw_openssl(ErrorKind::Crypto, "key generation failed for " + std::string(to_string(alg)));
  return PrivateKey(share(std::move(key)), alg);
}

PrivateKey PrivateKey::from_pem(std::string_view pem) {
  // Explain the common mistakes before handing the text to OpenSSL.
  const auto labels = detail::pem_labels(pem);
  if (labels.empty()) throw Error(ErrorKind::Parse, "no PEM block found where a private key was expected");
  bool has_private = false;
  for (const auto& label : labels) {
    if (label == "ENCRYPTED PRIVATE KEY") {
      throw Error(ErrorKind::Crypto, "encrypted private keys are not supported");
    }
    if (label == "PRIVATE KEY" || label == "EC PRIVATE KEY" || label == "RSA PRIVATE KEY") has_private = true;
  }
  if (!has_private) {
    throw Error(ErrorKind::Parse, "expected a private key (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY), found " +
                                      labels.front());
  }
  if (pem.find("Proc-Type:") != std::string_view::npos) {
    throw Error(ErrorKind::Crypto, "encrypted private keys are not supported");
  }
  EvpPkeyPtr key = fast_ec_private_key(pem);
  if (!key) {
    auto bio = detail::mem_bio(pem);
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, nullptr));
    if (!key) detail::throw_openssl(ErrorKind::Parse, "private key PEM does not parse");
    detail::clear_openssl_errors();  // PEM reading may leave skipped-block noise behind
  }
  const KeyAlgorithm alg = require_supported(key.get());
  // Reject tampered keys whose private and public halves disagree, cheaply: for EC one scalar
  // multiplication; for RSA n == p*q (OpenSSL's full RSA pairwise check runs primality tests and costs
  // ~100 ms for RSA-2048, too much for keys re-read on every rescan).
  if (alg == KeyAlgorithm::EcdsaP256 || alg == KeyAlgorithm::EcdsaP384) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!ctx) detail::throw_openssl(ErrorKind::Internal, "EVP_PKEY_CTX_new_from_pkey failed");
    if (EVP_PKEY_pairwise_check(ctx.get()) != 1) {
      detail::throw_openssl(ErrorKind::Crypto, "private key is inconsistent (public and private parts do not match)");
    }
  } else if (!rsa_factors_match(key.get())) {
    throw Error(ErrorKind::Crypto, "private key is inconsistent (RSA modulus is not the product of its primes)");
  }
  return PrivateKey(share(std::move(key)), alg);
}

PrivateKey PrivateKey::from_native(EVP_PKEY* key) {
  if (key == nullptr) throw Error(ErrorKind::Internal, "null private key");
  const KeyAlgorithm alg = require_supported(key);
  return PrivateKey(share(up_ref(key)), alg);
}

std::string PrivateKey::to_pkcs8_pem() const {
  if (auto pem = fast_ec_pkcs8_pem(key_.get(), alg_)) return std::move(*pem);
  detail::clear_openssl_errors();
  return to_pkcs8_pem_openssl();
}

std::string PrivateKey::to_pkcs8_pem_openssl() const {
  auto bio = detail::new_mem_bio();
  if (PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "cannot encode private key as PKCS#8");
  }
  return detail::bio_contents(bio.get());
}

std::string PrivateKey::public_key_pem() const { return public_key().to_pem(); }

PublicKey PrivateKey::public_key() const { return PublicKey::from_native(key_.get()); }

// ---- EcKeyVerifier -------------------------------------------------------------------------------

namespace {

std::shared_ptr<const EC_GROUP> named_group(int nid) {
  EcGroupPtr group(EC_GROUP_new_by_curve_name_ex(nullptr, nullptr, nid));
  if (!group) detail::throw_openssl(ErrorKind::Internal, "cannot create EC group");
  return std::shared_ptr<const EC_GROUP>(group.release(), [](const EC_GROUP* g) { OsslDeleter{}(const_cast<EC_GROUP*>(g)); });
}

// d in [1, n) and d·G == Q, Q on the curve (what EVP_PKEY_pairwise_check proves, with one multiplication).
bool consistent(const EC_GROUP* group, ByteView scalar, ByteView point) {
  BnCtxPtr ctx(BN_CTX_new());
  BignumPtr d(BN_secure_new());
  EcPointPtr q(EC_POINT_new(group)), r(EC_POINT_new(group));
  if (!ctx || !d || !q || !r) return false;
  if (BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), d.get()) == nullptr) return false;
  const BIGNUM* order = EC_GROUP_get0_order(group);
  if (BN_is_zero(d.get()) || order == nullptr || BN_cmp(d.get(), order) >= 0) return false;
  if (EC_POINT_oct2point(group, q.get(), point.data(), point.size(), ctx.get()) != 1) return false;  // on the curve
  if (EC_POINT_mul(group, r.get(), d.get(), nullptr, nullptr, ctx.get()) != 1) return false;
  return EC_POINT_cmp(group, q.get(), r.get(), ctx.get()) == 0;
}

}  // namespace

EcKeyVerifier::EcKeyVerifier()
    : p256_(named_group(NID_X9_62_prime256v1)), p384_(named_group(NID_secp384r1)) {}

std::optional<EcKeyVerifier::PublicPoint> EcKeyVerifier::public_point(std::string_view pem) const {
  std::vector<detail::PemBlock> blocks;
  try {
    blocks = detail::parse_pem_blocks(pem);
  } catch (const Error&) {
    return std::nullopt;
  }
  std::optional<PublicPoint> out;
  // What PrivateKey::from_pem refuses before reading a key, refused here too.
  const auto labels = detail::pem_labels(pem);
  const bool encrypted = pem.find("Proc-Type:") != std::string_view::npos ||
                         std::find(labels.begin(), labels.end(), "ENCRYPTED PRIVATE KEY") != labels.end();
  if (!encrypted) {
    if (auto parts = first_ec_parts(blocks)) {
      const bool p256 = parts->field == 32;
      if (consistent(p256 ? p256_.get() : p384_.get(), parts->scalar, parts->point)) {
        out = PublicPoint{p256 ? KeyAlgorithm::EcdsaP256 : KeyAlgorithm::EcdsaP384,
                          Bytes(parts->point.begin(), parts->point.end())};
      }
    }
  }
  for (auto& block : blocks) OPENSSL_cleanse(block.der.data(), block.der.size());
  detail::clear_openssl_errors();
  return out;
}

}  // namespace acme_sidecar::crypto
