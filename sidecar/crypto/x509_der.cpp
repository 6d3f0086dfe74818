#include "crypto/x509_der.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <initializer_list>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"
#include "crypto/sign.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

[[noreturn]] void reject(const char* what) {
  throw Error(ErrorKind::Parse, std::string("certificate outside the strict DER subset: ") + what);
}

// A cursor over DER: every read checks the remaining length first, so no read goes past the end.
class Der {
 public:
  explicit Der(ByteView in) : in_(in) {}
  bool empty() const noexcept { return in_.empty(); }
  std::uint8_t peek_tag() const { return in_.empty() ? 0 : in_[0]; }

  // The value of the next TLV, which must carry `tag`. Definite, minimal lengths only (DER).
  ByteView next(std::uint8_t tag, const char* what) {
    ByteView value;
    if (!take(tag, value)) reject(what);
    return value;
  }
  // Like next(), but only when the next tag is `tag` (optional fields).
  std::optional<ByteView> optional(std::uint8_t tag, const char* what) {
    if (in_.empty() || in_[0] != tag) return std::nullopt;
    return next(tag, what);
  }
  void end(const char* what) const {
    if (!in_.empty()) reject(what);
  }

 private:
  bool take(std::uint8_t tag, ByteView& value) {
    if (in_.size() < 2 || in_[0] != tag) return false;
    std::size_t len = in_[1];
    std::size_t header = 2;
    if (len & 0x80) {
      const std::size_t n = len & 0x7f;
      if (n == 0 || n > 3 || in_.size() < 2 + n) return false;  // indefinite or > 16 MiB
      if (in_[2] == 0) return false;                            // leading zero: not minimal
      len = 0;
      for (std::size_t i = 0; i < n; ++i) len = (len << 8) | in_[2 + i];
      if (len < 0x80) return false;  // fits the short form: not minimal
      header += n;
    }
    if (in_.size() - header < len) return false;
    value = in_.subspan(header, len);
    in_ = in_.subspan(header + len);
    return true;
  }
  ByteView in_;
};

bool equals(ByteView v, std::initializer_list<std::uint8_t> bytes) {
  return v.size() == bytes.size() && std::equal(v.begin(), v.end(), bytes.begin());
}

// OBJECT IDENTIFIER content: non-empty, every sub-identifier minimal and terminated.
void check_oid(ByteView oid) {
  if (oid.empty() || oid.size() > 64 || (oid.back() & 0x80) != 0) reject("malformed OID");
  bool start = true;
  for (const std::uint8_t b : oid) {
    if (start && b == 0x80) reject("non-minimal OID");
    start = (b & 0x80) == 0;
  }
}

ByteView read_oid(Der& d, const char* what) {
  const ByteView oid = d.next(0x06, what);
  check_oid(oid);
  return oid;
}

// INTEGER content in minimal two's complement.
void check_integer(ByteView v) {
  if (v.empty()) reject("empty INTEGER");
  if (v.size() > 1 && ((v[0] == 0x00 && (v[1] & 0x80) == 0) || (v[0] == 0xff && (v[1] & 0x80) != 0))) {
    reject("non-minimal INTEGER");
  }
}

// AlgorithmIdentifier with absent, NULL or OID parameters.
ByteView read_algorithm(Der& d, ByteView* params_oid = nullptr, bool* params_null = nullptr) {
  Der alg(d.next(0x30, "AlgorithmIdentifier"));
  const ByteView oid = read_oid(alg, "algorithm OID");
  if (auto null = alg.optional(0x05, "NULL parameters")) {
    if (!null->empty()) reject("NULL with content");
    if (params_null != nullptr) *params_null = true;
  } else if (alg.peek_tag() == 0x06) {
    const ByteView p = read_oid(alg, "parameter OID");
    if (params_oid != nullptr) *params_oid = p;
  }
  alg.end("algorithm parameters");
  return oid;
}

// Only printable ASCII, where every string type OpenSSL accepts here converts to identical UTF-8.
std::string ascii_string(ByteView v, std::uint8_t low) {
  for (const std::uint8_t c : v) {
    if (c < low || c > 0x7e) reject("non-ASCII or control character in a string");
  }
  return to_string(v);
}

// Name: SEQUENCE OF SET OF { OID, PrintableString | UTF8String | IA5String }. Returns the first CN.
std::string read_name_cn(Der& d) {
  Der name(d.next(0x30, "Name"));
  std::string cn;
  bool have_cn = false;
  while (!name.empty()) {
    Der rdn(name.next(0x31, "RelativeDistinguishedName"));
    if (rdn.empty()) reject("empty RelativeDistinguishedName");
    while (!rdn.empty()) {
      Der atv(rdn.next(0x30, "AttributeTypeAndValue"));
      const ByteView type = read_oid(atv, "attribute type");
      const std::uint8_t tag = atv.peek_tag();
      if (tag != 0x13 && tag != 0x0c && tag != 0x16) reject("attribute value type");
      const std::string value = ascii_string(atv.next(tag, "attribute value"), 0x20);
      atv.end("AttributeTypeAndValue");
      if (!have_cn && equals(type, {0x55, 0x04, 0x03})) {
        cn = value;
        have_cn = true;
      }
    }
  }
  return cn;
}

unsigned digits(ByteView v, std::size_t pos, std::size_t n) {
  unsigned out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (v[i] < '0' || v[i] > '9') reject("non-digit in a time");
    out = out * 10 + (v[i] - '0');
  }
  return out;
}

// UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ; saturating like Certificate::not_before().
TimePoint read_time(Der& d) {
  ByteView v;
  int year = 0;
  if (auto utc = d.optional(0x17, "UTCTime")) {
    v = *utc;
    if (v.size() != 13 || v[12] != 'Z') reject("UTCTime form");
    const unsigned yy = digits(v, 0, 2);
    year = static_cast<int>(yy < 50 ? 2000 + yy : 1900 + yy);
    v = v.subspan(2);
  } else {
    v = d.next(0x18, "validity time");
    if (v.size() != 15 || v[14] != 'Z') reject("GeneralizedTime form");
    year = static_cast<int>(digits(v, 0, 4));
    v = v.subspan(4);
  }
  const unsigned mon = digits(v, 0, 2), mday = digits(v, 2, 2);
  const unsigned hour = digits(v, 4, 2), min = digits(v, 6, 2), sec = digits(v, 8, 2);
  using namespace std::chrono;
  const year_month_day ymd{std::chrono::year{year}, month{mon}, day{mday}};
  if (!ymd.ok() || hour > 23 || min > 59 || sec > 59) reject("time out of range");
  const sys_seconds secs = sys_days{ymd} + hours{hour} + minutes{min} + seconds{sec};
  constexpr auto kMax = duration_cast<seconds>(TimePoint::max().time_since_epoch());
  constexpr auto kMin = duration_cast<seconds>(TimePoint::min().time_since_epoch());
  if (secs.time_since_epoch() >= kMax) return TimePoint::max();
  if (secs.time_since_epoch() <= kMin) return TimePoint::min();
  return TimePoint(duration_cast<TimePoint::duration>(secs.time_since_epoch()));
}

// Positive INTEGER magnitude without the sign byte; nullopt when negative/zero-length.
std::optional<ByteView> positive_magnitude(ByteView v) {
  if (v.empty() || (v[0] & 0x80) != 0) return std::nullopt;
  if (v.size() > 1 && v[0] == 0x00 && (v[1] & 0x80) == 0) return std::nullopt;
  if (v[0] == 0x00) v = v.subspan(1);
  if (v.empty()) return std::nullopt;
  return v;
}

// SubjectPublicKeyInfo: the structure always; the key only for the supported shapes (never validated).
void read_spki(Der& d, CertificateSummary& out) {
  Der spki(d.next(0x30, "SubjectPublicKeyInfo"));
  ByteView curve;
  bool null_params = false;
  const ByteView alg = read_algorithm(spki, &curve, &null_params);
  const ByteView bits = spki.next(0x03, "subjectPublicKey");
  spki.end("SubjectPublicKeyInfo");
  if (bits.empty() || bits[0] != 0) reject("subjectPublicKey unused bits");
  const ByteView key = bits.subspan(1);
  if (equals(alg, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01})) {  // id-ecPublicKey
    std::size_t field = 0;
    KeyAlgorithm ka{};
    if (equals(curve, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})) {
      field = 32, ka = KeyAlgorithm::EcdsaP256;
    } else if (equals(curve, {0x2b, 0x81, 0x04, 0x00, 0x22})) {
      field = 48, ka = KeyAlgorithm::EcdsaP384;
    }
    if (field != 0 && key.size() == 1 + 2 * field && key[0] == 0x04) {
      out.key_algorithm = ka;
      out.ec_point.assign(key.begin(), key.end());
    }
  } else if (equals(alg, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}) && null_params) {  // rsaEncryption
    try {
      Der outer(key);
      Der rsa(outer.next(0x30, "RSAPublicKey"));
      outer.end("RSAPublicKey");
      const ByteView n = rsa.next(0x02, "modulus");
      const ByteView e = rsa.next(0x02, "exponent");
      rsa.end("RSAPublicKey");
      const auto mn = positive_magnitude(n), me = positive_magnitude(e);
      if (mn && me) {
        const std::size_t bits_n = mn->size() * 8 - static_cast<std::size_t>(__builtin_clz((*mn)[0]) - 24);
        if (bits_n == 2048 || bits_n == 3072 || bits_n == 4096) {
          out.key_algorithm = bits_n == 2048 ? KeyAlgorithm::Rsa2048
                              : bits_n == 3072 ? KeyAlgorithm::Rsa3072 : KeyAlgorithm::Rsa4096;
          out.rsa_modulus.assign(mn->begin(), mn->end());
          out.rsa_exponent.assign(me->begin(), me->end());
        }
      }
    } catch (const Error&) {
      // An RSA key we cannot read is like an unsupported one: no key facts.
    }
  }
}

// ---- extensions ------------------------------------------------------------------------------------

void read_san(ByteView value, CertificateSummary& out) {
  Der outer(value);
  Der names(outer.next(0x30, "GeneralNames"));
  outer.end("subjectAltName");
  if (names.empty()) reject("empty subjectAltName");
  while (!names.empty()) {
    const std::uint8_t tag = names.peek_tag();
    const ByteView v = names.next(tag, "GeneralName");
    if (tag == 0x82) {  // dNSName
      std::string name = ascii_string(v, 0x21);
      for (char& c : name) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      out.dns_names.push_back(std::move(name));
    } else if (tag == 0x87) {  // iPAddress
      char buf[INET6_ADDRSTRLEN] = {};
      if (v.size() == 4 && inet_ntop(AF_INET, v.data(), buf, sizeof buf) != nullptr) {
        out.ip_addresses.emplace_back(buf);
      } else if (v.size() == 16 && inet_ntop(AF_INET6, v.data(), buf, sizeof buf) != nullptr) {
        out.ip_addresses.emplace_back(buf);
      } else {
        reject("iPAddress length");
      }
    } else if (tag != 0x81 && tag != 0x86) {  // rfc822Name, URI: IA5String, not reported
      reject("GeneralName type");
    }
  }
}

void read_basic_constraints(ByteView value) {
  Der outer(value);
  Der bc(outer.next(0x30, "BasicConstraints"));
  outer.end("basicConstraints");
  bool ca = false;
  if (auto flag = bc.optional(0x01, "cA")) {
    if (!equals(*flag, {0xff})) reject("cA is not DER TRUE");
    ca = true;
  }
  if (auto path = bc.optional(0x02, "pathLenConstraint")) {
    check_integer(*path);
    if (!ca || path->size() > 4 || ((*path)[0] & 0x80) != 0) reject("pathLenConstraint");
  }
  bc.end("BasicConstraints");
}

void read_key_usage(ByteView value) {
  Der outer(value);
  const ByteView bits = outer.next(0x03, "KeyUsage");
  outer.end("keyUsage");
  if (bits.size() < 2 || bits.size() > 3 || bits[0] > 7) reject("KeyUsage bits");
  // OpenSSL drops the unused bits and calls an empty key usage invalid (RFC 5280 §4.2.1.3).
  std::uint8_t any = 0;
  for (std::size_t i = 1; i < bits.size(); ++i) {
    any |= i + 1 == bits.size() ? static_cast<std::uint8_t>(bits[i] & (0xff << bits[0])) : bits[i];
  }
  if (any == 0) reject("empty KeyUsage");
}

void read_ext_key_usage(ByteView value) {
  Der outer(value);
  Der seq(outer.next(0x30, "ExtKeyUsageSyntax"));
  outer.end("extKeyUsage");
  if (seq.empty()) reject("empty extKeyUsage");
  while (!seq.empty()) read_oid(seq, "KeyPurposeId");
}

void read_subject_key_id(ByteView value) {
  Der outer(value);
  outer.next(0x04, "SubjectKeyIdentifier");
  outer.end("subjectKeyIdentifier");
}

void read_authority_key_id(ByteView value, CertificateSummary& out) {
  Der outer(value);
  Der aki(outer.next(0x30, "AuthorityKeyIdentifier"));
  outer.end("authorityKeyIdentifier");
  const ByteView id = aki.next(0x80, "keyIdentifier");
  aki.end("AuthorityKeyIdentifier (only keyIdentifier is read)");
  out.authority_key_id.assign(id.begin(), id.end());
}

// CRLDistributionPoints with fullName URIs only (the shape public CAs use).
void read_crl_distribution_points(ByteView value) {
  Der outer(value);
  Der points(outer.next(0x30, "CRLDistributionPoints"));
  outer.end("cRLDistributionPoints");
  if (points.empty()) reject("empty cRLDistributionPoints");
  while (!points.empty()) {
    Der dp(points.next(0x30, "DistributionPoint"));
    Der name(dp.next(0xa0, "distributionPoint"));
    dp.end("DistributionPoint (only distributionPoint is read)");
    Der full(name.next(0xa0, "fullName"));
    name.end("DistributionPointName");
    if (full.empty()) reject("empty fullName");
    while (!full.empty()) full.next(0x86, "fullName URI");
  }
}

void read_extensions(ByteView wrapped, CertificateSummary& out) {
  Der outer(wrapped);
  Der exts(outer.next(0x30, "Extensions"));
  outer.end("extensions");
  if (exts.empty()) reject("empty Extensions");
  std::vector<ByteView> seen;
  while (!exts.empty()) {
    Der ext(exts.next(0x30, "Extension"));
    const ByteView oid = read_oid(ext, "extnID");
    if (auto critical = ext.optional(0x01, "critical")) {
      if (!equals(*critical, {0xff})) reject("critical is not DER TRUE");
    }
    const ByteView value = ext.next(0x04, "extnValue");
    ext.end("Extension");
    for (const ByteView& s : seen) {
      if (std::equal(s.begin(), s.end(), oid.begin(), oid.end())) reject("duplicate extension");
    }
    seen.push_back(oid);
    if (oid.size() == 3 && oid[0] == 0x55 && oid[1] == 0x1d) {
      switch (oid[2]) {
        case 0x11: read_san(value, out); break;
        case 0x13: read_basic_constraints(value); break;
        case 0x0f: read_key_usage(value); break;
        case 0x25: read_ext_key_usage(value); break;
        case 0x0e: read_subject_key_id(value); break;
        case 0x23: read_authority_key_id(value, out); break;
        case 0x1f: read_crl_distribution_points(value); break;
        case 0x1e:  // nameConstraints: OpenSSL decodes it (a malformed one invalidates the certificate)
          reject("nameConstraints");
        default: break;  // policies, ... : not decoded by OpenSSL either
      }
    } else if (oid.size() == 8 && equals(oid.first(7), {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01}) &&
               (oid[7] == 0x07 || oid[7] == 0x08 || oid[7] == 0x0e)) {
      reject("RFC 3779 / proxy certificate extension");  // decoded (and checked) by OpenSSL
    } else if (equals(oid, {0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01})) {
      reject("Netscape certificate type");  // decoded (and checked) by OpenSSL
    }
  }
}

}  // namespace

CertificateSummary read_certificate_der(ByteView der) {
  CertificateSummary out;
  Der whole(der);
  Der cert(whole.next(0x30, "Certificate"));
  whole.end("trailing bytes after the certificate");
  Der tbs(cert.next(0x30, "TBSCertificate"));
  read_algorithm(cert);
  const ByteView signature = cert.next(0x03, "signature");
  cert.end("Certificate");
  if (signature.size() < 2 || signature[0] != 0) reject("signature bits");

  if (!equals(tbs.next(0xa0, "version (v3 only)"), {0x02, 0x01, 0x02})) reject("version is not v3");
  const ByteView serial = tbs.next(0x02, "serialNumber");
  check_integer(serial);
  if (serial.size() > 64) reject("serialNumber too long");
  out.serial.assign(serial.begin(), serial.end());
  read_algorithm(tbs);
  out.issuer_cn = read_name_cn(tbs);
  {
    Der validity(tbs.next(0x30, "Validity"));
    out.not_before = read_time(validity);
    out.not_after = read_time(validity);
    validity.end("Validity");
  }
  out.subject_cn = read_name_cn(tbs);
  read_spki(tbs, out);
  read_extensions(tbs.next(0xa3, "extensions (unique identifiers are not read)"), out);
  tbs.end("TBSCertificate");
  out.sha256 = crypto::sha256(der);
  return out;
}

std::vector<CertificateSummary> read_certificate_pem_chain(std::string_view pem) {
  const auto blocks = detail::parse_pem_blocks(pem);
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM certificate found");
  std::vector<CertificateSummary> out;
  out.reserve(blocks.size());
  for (const auto& block : blocks) {
    if (block.label != "CERTIFICATE") throw Error(ErrorKind::Parse, "expected a CERTIFICATE PEM block");
    out.push_back(read_certificate_der(block.der));
  }
  return out;
}

namespace {

// The BIGNUM parameter `name` of `key` as big-endian bytes, left-padded to `width` (0: minimal).
std::optional<Bytes> bn_param(EVP_PKEY* key, const char* name, std::size_t width) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) {
    detail::clear_openssl_errors();
    return std::nullopt;
  }
  BignumPtr bn(raw);
  const int size = BN_num_bytes(bn.get());
  if (width == 0) width = static_cast<std::size_t>(size);
  if (static_cast<std::size_t>(size) > width) return std::nullopt;
  Bytes out(width);
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(width)) < 0) return std::nullopt;
  return out;
}

}  // namespace

bool public_key_matches(const PrivateKey& key, const CertificateSummary& cert) {
  if (!cert.key_algorithm || *cert.key_algorithm != key.algorithm()) return false;
  EVP_PKEY* pkey = key.native();
  switch (key.algorithm()) {
    case KeyAlgorithm::EcdsaP256:
    case KeyAlgorithm::EcdsaP384: {
      const std::size_t field = key.algorithm() == KeyAlgorithm::EcdsaP256 ? 32 : 48;
      if (cert.ec_point.size() != 1 + 2 * field) return false;
      const auto x = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, field);
      const auto y = bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, field);
      if (!x || !y) return false;
      const ByteView point(cert.ec_point);
      return std::equal(x->begin(), x->end(), point.begin() + 1) &&
             std::equal(y->begin(), y->end(), point.begin() + 1 + static_cast<std::ptrdiff_t>(field));
    }
    case KeyAlgorithm::Rsa2048:
    case KeyAlgorithm::Rsa3072:
    case KeyAlgorithm::Rsa4096: {
      const auto n = bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
      const auto e = bn_param(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
      return n && e && *n == cert.rsa_modulus && *e == cert.rsa_exponent;
    }
  }
  return false;
}

}  // namespace acme_sidecar::crypto
