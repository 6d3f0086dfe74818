#include "crypto/x509_der.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

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
  // Like next(), and the whole TLV (tag and length included) in `tlv`.
  ByteView next(std::uint8_t tag, const char* what, ByteView& tlv) {
    const ByteView before = in_;
    const ByteView value = next(tag, what);
    tlv = before.first(before.size() - in_.size());
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
ByteView read_algorithm(Der& d, ByteView* params_oid = nullptr, bool* params_null = nullptr, ByteView* tlv = nullptr) {
  ByteView whole;
  Der alg(d.next(0x30, "AlgorithmIdentifier", whole));
  if (tlv != nullptr) *tlv = whole;
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
std::string read_name_cn(Der& d, ByteView& tlv) {
  Der name(d.next(0x30, "Name", tlv));
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

// The supported signature algorithms by their whole AlgorithmIdentifier DER (parameters as CAs write them).
std::optional<SignatureAlgorithm> signature_algorithm(ByteView alg) {
  // SEQUENCE { OID 1.2.840.113549.1.1.{11,12,13}, NULL }
  static constexpr std::array<std::uint8_t, 13> kRsa{0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                      0xf7, 0x0d, 0x01, 0x01, 0x00};
  // SEQUENCE { OID 1.2.840.10045.4.3.{2,3} } (no parameters, RFC 5758 §3.2)
  static constexpr std::array<std::uint8_t, 11> kEcdsa{0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                                        0xce, 0x3d, 0x04, 0x03};
  if (alg.size() == kRsa.size() + 2 && std::equal(kRsa.begin(), kRsa.end() - 1, alg.begin()) &&
      alg[13] == 0x05 && alg[14] == 0x00) {
    switch (alg[12]) {
      case 0x0b: return SignatureAlgorithm::RsaSha256;
      case 0x0c: return SignatureAlgorithm::RsaSha384;
      case 0x0d: return SignatureAlgorithm::RsaSha512;
      default: return std::nullopt;
    }
  }
  if (alg.size() == kEcdsa.size() + 1 && std::equal(kEcdsa.begin(), kEcdsa.end(), alg.begin())) {
    switch (alg[11]) {
      case 0x02: return SignatureAlgorithm::EcdsaSha256;
      case 0x03: return SignatureAlgorithm::EcdsaSha384;
      default: return std::nullopt;
    }
  }
  return std::nullopt;
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
  ByteView tbs_tlv, outer_alg, inner_alg, issuer_tlv, subject_tlv;
  Der tbs(cert.next(0x30, "TBSCertificate", tbs_tlv));
  read_algorithm(cert, nullptr, nullptr, &outer_alg);
  const ByteView signature = cert.next(0x03, "signature");
  cert.end("Certificate");
  if (signature.size() < 2 || signature[0] != 0) reject("signature bits");

  if (!equals(tbs.next(0xa0, "version (v3 only)"), {0x02, 0x01, 0x02})) reject("version is not v3");
  const ByteView serial = tbs.next(0x02, "serialNumber");
  check_integer(serial);
  if (serial.size() > 64) reject("serialNumber too long");
  out.serial.assign(serial.begin(), serial.end());
  read_algorithm(tbs, nullptr, nullptr, &inner_alg);
  out.issuer_cn = read_name_cn(tbs, issuer_tlv);
  {
    Der validity(tbs.next(0x30, "Validity"));
    out.not_before = read_time(validity);
    out.not_after = read_time(validity);
    validity.end("Validity");
  }
  out.subject_cn = read_name_cn(tbs, subject_tlv);
  read_spki(tbs, out);
  read_extensions(tbs.next(0xa3, "extensions (unique identifiers are not read)"), out);
  tbs.end("TBSCertificate");
  out.sha256 = crypto::sha256(der);
  out.der.assign(der.begin(), der.end());
  out.tbs.assign(tbs_tlv.begin(), tbs_tlv.end());
  out.issuer_name.assign(issuer_tlv.begin(), issuer_tlv.end());
  out.subject_name.assign(subject_tlv.begin(), subject_tlv.end());
  // X509_verify refuses a certificate whose two algorithm fields differ (X509_ALGOR_cmp).
  if (std::equal(outer_alg.begin(), outer_alg.end(), inner_alg.begin(), inner_alg.end())) {
    out.signature_algorithm = signature_algorithm(outer_alg);
  }
  out.signature.assign(signature.begin() + 1, signature.end());
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

bool key_matches(EVP_PKEY* pkey, KeyAlgorithm alg, const CertificateSummary& cert) {
  if (!cert.key_algorithm || *cert.key_algorithm != alg) return false;
  switch (alg) {
    case KeyAlgorithm::EcdsaP256:
    case KeyAlgorithm::EcdsaP384: {
      const std::size_t field = alg == KeyAlgorithm::EcdsaP256 ? 32 : 48;
      if (cert.ec_point.size() != 1 + 2 * field) return false;
      // The encoded point in one call (one affine conversion instead of two); X and Y separately when
      // the key encodes its point compressed.
      std::array<unsigned char, 1 + 2 * 48> encoded{};
      std::size_t len = 0;
      if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, encoded.data(), encoded.size(), &len) == 1 &&
          len == cert.ec_point.size() && encoded[0] == 0x04) {
        return std::equal(cert.ec_point.begin(), cert.ec_point.end(), encoded.begin());
      }
      detail::clear_openssl_errors();
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

bool is_rsa(KeyAlgorithm alg) {
  return alg == KeyAlgorithm::Rsa2048 || alg == KeyAlgorithm::Rsa3072 || alg == KeyAlgorithm::Rsa4096;
}

// The summary's public key as an EVP_PKEY, imported from its parameters (no decoder involved). Null when
// OpenSSL refuses them (an EC point off the curve).
EvpPkeyPtr import_public_key(const CertificateSummary& cert) {
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld) return nullptr;
  BignumPtr n, e;
  const bool rsa = is_rsa(*cert.key_algorithm);
  if (rsa) {
    n.reset(BN_bin2bn(cert.rsa_modulus.data(), static_cast<int>(cert.rsa_modulus.size()), nullptr));
    e.reset(BN_bin2bn(cert.rsa_exponent.data(), static_cast<int>(cert.rsa_exponent.size()), nullptr));
    if (!n || !e || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
      return nullptr;
    }
  } else {
    const char* group = *cert.key_algorithm == KeyAlgorithm::EcdsaP256 ? "P-256" : "P-384";
    if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, cert.ec_point.data(),
                                         cert.ec_point.size()) != 1) {
      return nullptr;
    }
  }
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, rsa ? "RSA" : "EC", nullptr));
  EVP_PKEY* out = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return nullptr;
  }
  return EvpPkeyPtr(out);
}

const EVP_MD* digest_of(SignatureAlgorithm alg) {
  // Fetched once: a digest named on every call is looked up in the provider store each time.
  static const EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* const sha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static const EVP_MD* const sha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (alg) {
    case SignatureAlgorithm::RsaSha256:
    case SignatureAlgorithm::EcdsaSha256: return sha256;
    case SignatureAlgorithm::RsaSha384:
    case SignatureAlgorithm::EcdsaSha384: return sha384;
    case SignatureAlgorithm::RsaSha512: return sha512;
  }
  return nullptr;
}

// An issuer's key, imported once, with verification contexts initialised once per signature algorithm
// and reused (one per concurrent verification). Importing the key (EVP_PKEY_fromdata) and initialising
// a context (EVP_DigestVerifyInit's provider lookups) each cost about as much as the RSA verification.
struct IssuerKey {
  EvpPkeyPtr key;
  std::mutex mu;
  std::vector<std::pair<SignatureAlgorithm, EvpPkeyCtxPtr>> idle;

  EvpPkeyCtxPtr take(SignatureAlgorithm sig) {
    {
      std::lock_guard lock(mu);
      for (auto it = idle.begin(); it != idle.end(); ++it) {
        if (it->first != sig) continue;
        EvpPkeyCtxPtr ctx = std::move(it->second);
        idle.erase(it);
        return ctx;
      }
    }
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!ctx || EVP_PKEY_verify_init(ctx.get()) != 1) return nullptr;
    const bool rsa = sig == SignatureAlgorithm::RsaSha256 || sig == SignatureAlgorithm::RsaSha384 ||
                     sig == SignatureAlgorithm::RsaSha512;
    // What X509_verify checks: PKCS#1 v1.5 over a DigestInfo naming the hash; ECDSA over the digest.
    if (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) return nullptr;
    if (EVP_PKEY_CTX_set_signature_md(ctx.get(), digest_of(sig)) != 1) return nullptr;
    return ctx;
  }
  void give(SignatureAlgorithm sig, EvpPkeyCtxPtr ctx) {
    std::lock_guard lock(mu);
    if (idle.size() < 16) idle.emplace_back(sig, std::move(ctx));
  }
};

// The issuers' keys. A CA signs every certificate with the same few intermediates. Bounded: the least
// recently used of 8 goes (a context in use keeps its key alive through the shared_ptr).
class IssuerKeyCache {
 public:
  std::shared_ptr<IssuerKey> get(const CertificateSummary& issuer) {
    std::string id(1, static_cast<char>(*issuer.key_algorithm));
    for (const Bytes* part : {&issuer.ec_point, &issuer.rsa_modulus, &issuer.rsa_exponent}) {
      id.append(std::to_string(part->size())).append(1, ':').append(part->begin(), part->end());
    }
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first != id) continue;
      std::rotate(entries_.begin(), it, it + 1);  // most recently used first
      return entries_.front().second;
    }
    auto entry = std::make_shared<IssuerKey>();
    entry->key = import_public_key(issuer);
    if (!entry->key) return nullptr;
    if (entries_.size() >= 8) entries_.pop_back();
    entries_.emplace(entries_.begin(), std::move(id), entry);
    return entry;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::shared_ptr<IssuerKey>>> entries_;
};

IssuerKeyCache& issuer_keys() {
  static IssuerKeyCache cache;  // process-wide, like OpenSSL's own caches: nothing here is configuration
  return cache;
}

std::optional<bool> verify(const CertificateSummary& cert, const CertificateSummary& issuer) {
  if (!cert.signature_algorithm || !issuer.key_algorithm) return std::nullopt;
  const SignatureAlgorithm sig = *cert.signature_algorithm;
  const bool rsa_sig = sig == SignatureAlgorithm::RsaSha256 || sig == SignatureAlgorithm::RsaSha384 ||
                       sig == SignatureAlgorithm::RsaSha512;
  // X509_verify refuses a key of the other type (ASN1_R_WRONG_PUBLIC_KEY_TYPE).
  if (rsa_sig != is_rsa(*issuer.key_algorithm)) return false;
  const EVP_MD* md = digest_of(sig);
  const auto entry = issuer_keys().get(issuer);
  if (!entry || md == nullptr) return std::nullopt;
  unsigned char hashed[EVP_MAX_MD_SIZE];
  unsigned int hashed_len = 0;
  if (EVP_Digest(cert.tbs.data(), cert.tbs.size(), hashed, &hashed_len, md, nullptr) != 1) return std::nullopt;
  EvpPkeyCtxPtr ctx = entry->take(sig);
  if (!ctx) return std::nullopt;
  const int r = EVP_PKEY_verify(ctx.get(), cert.signature.data(), cert.signature.size(), hashed, hashed_len);
  entry->give(sig, std::move(ctx));  // a failed verification leaves the context as initialised
  return r == 1;
}

}  // namespace

bool public_key_matches(const PrivateKey& key, const CertificateSummary& cert) {
  return key_matches(key.native(), key.algorithm(), cert);
}

bool public_key_matches(const PublicKey& key, const CertificateSummary& cert) {
  return key_matches(key.native(), key.algorithm(), cert);
}

std::optional<bool> signature_verifies(const CertificateSummary& cert, const CertificateSummary& issuer) {
  const auto verdict = verify(cert, issuer);
  detail::clear_openssl_errors();
  return verdict;
}

bool same_name(ByteView a, ByteView b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

std::string to_pem_chain(const std::vector<CertificateSummary>& chain) {
  std::string out;
  for (const auto& cert : chain) out += detail::to_pem("CERTIFICATE", cert.der);
  return out;
}

}  // namespace acme_sidecar::crypto
