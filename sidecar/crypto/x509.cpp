#include "crypto/x509.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <ctime>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

std::shared_ptr<X509> share(X509Ptr cert) { return std::shared_ptr<X509>(cert.release(), OsslDeleter{}); }

TimePoint to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    detail::clear_openssl_errors();
    throw Error(ErrorKind::Parse, "certificate has an invalid validity time");
  }
  // Calendar arithmetic in UTC (timegm is not standard; std::chrono's civil calendar is).
  using namespace std::chrono;
  const year_month_day ymd{year{tm.tm_year + 1900}, month{static_cast<unsigned>(tm.tm_mon + 1)},
                           day{static_cast<unsigned>(tm.tm_mday)}};
  if (!ymd.ok()) throw Error(ErrorKind::Parse, "certificate has an invalid validity date");
  const sys_seconds secs = sys_days{ymd} + hours{tm.tm_hour} + minutes{tm.tm_min} + seconds{tm.tm_sec};
  // system_clock counts nanoseconds here (years 1678..2262); RFC 5280's "no expiry" 99991231235959Z and
  // other far dates saturate instead of overflowing.
  constexpr auto kMax = duration_cast<seconds>(TimePoint::max().time_since_epoch());
  constexpr auto kMin = duration_cast<seconds>(TimePoint::min().time_since_epoch());
  if (secs.time_since_epoch() >= kMax) return TimePoint::max();
  if (secs.time_since_epoch() <= kMin) return TimePoint::min();
  return TimePoint(duration_cast<TimePoint::duration>(secs.time_since_epoch()));
}

std::string name_cn(const X509_NAME* name) {
  if (name == nullptr) return {};
  const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, idx);
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(entry);
  unsigned char* utf8 = nullptr;
  const int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    detail::clear_openssl_errors();
    return {};
  }
  OsslBytesPtr holder(utf8);
  return std::string(reinterpret_cast<const char*>(holder.get()), static_cast<std::size_t>(len));
}

GeneralNamesPtr subject_alt_names(X509* cert) {
  int crit = 0;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr));
  detail::clear_openssl_errors();
  return GeneralNamesPtr(names);
}

Bytes octets(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return {};
  const unsigned char* data = ASN1_STRING_get0_data(s);
  return Bytes(data, data + ASN1_STRING_length(s));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Checks what later accessors rely on, so they never fail on a Certificate that exists: well-formed
// validity times, and decodable extensions (decoding them now also caches them, leaving the X509
// read-only when shared between threads).
void validate(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) != 1 || ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
    detail::clear_openssl_errors();
    throw Error(ErrorKind::Parse, "certificate has a malformed validity time");
  }
  X509_check_purpose(cert, -1, 0);
  if ((X509_get_extension_flags(cert) & EXFLAG_INVALID) != 0) {
    detail::clear_openssl_errors();
    throw Error(ErrorKind::Parse, "certificate has malformed or duplicate extensions");
  }
  detail::clear_openssl_errors();
}

X509Ptr parse_der(ByteView der) {
  if (der.empty()) throw Error(ErrorKind::Parse, "empty certificate");
  if (der.size() > static_cast<std::size_t>(LONG_MAX)) throw Error(ErrorKind::Parse, "certificate too large");
  const unsigned char* p = der.data();
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) detail::throw_openssl(ErrorKind::Parse, "certificate DER does not parse");
  if (p != der.data() + der.size()) throw Error(ErrorKind::Parse, "trailing bytes after certificate DER");
  validate(cert.get());
  return cert;
}

X509Ptr parse_pem_block(const detail::PemBlock& block, std::size_t index) {
  if (block.label != "CERTIFICATE") {
    std::string hint = block.label.find("PRIVATE KEY") != std::string::npos ? " (a private key is not a certificate)" : "";
    throw Error(ErrorKind::Parse, "expected a CERTIFICATE PEM block, found " + block.label + hint,
                {{"block", std::to_string(index)}});
  }
  try {
    return parse_der(block.der);
  } catch (const Error& e) {
    Error::Context ctx = e.context();
    ctx.emplace_back("block", std::to_string(index));
    throw Error(e.kind(), e.message(), std::move(ctx));
  }
}

}  // namespace

Certificate Certificate::from_pem(std::string_view pem) {
  const auto blocks = detail::parse_pem_blocks(pem);
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM block found where a certificate was expected");
  if (blocks.size() > 1) {
    throw Error(ErrorKind::Parse, "expected exactly one PEM certificate, found " + std::to_string(blocks.size()) +
                                      " blocks");
  }
  return Certificate(share(parse_pem_block(blocks.front(), 0)));
}

Certificate Certificate::from_der(ByteView der) { return Certificate(share(parse_der(der))); }

Certificate Certificate::from_native(X509* cert) {
  if (cert == nullptr) throw Error(ErrorKind::Internal, "null certificate");
  validate(cert);
  return Certificate(share(up_ref(cert)));
}

TimePoint Certificate::not_before() const { return to_time_point(X509_get0_notBefore(cert_.get())); }
TimePoint Certificate::not_after() const { return to_time_point(X509_get0_notAfter(cert_.get())); }

std::vector<std::string> Certificate::dns_names() const {
  std::vector<std::string> out;
  const GeneralNamesPtr names = subject_alt_names(cert_.get());
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_DNS) continue;
    const ASN1_STRING* s = gn->d.dNSName;
    out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                    static_cast<std::size_t>(ASN1_STRING_length(s)))));
  }
  return out;
}

std::vector<std::string> Certificate::ip_addresses() const {
  std::vector<std::string> out;
  const GeneralNamesPtr names = subject_alt_names(cert_.get());
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type != GEN_IPADD) continue;
    const ASN1_OCTET_STRING* s = gn->d.iPAddress;
    const unsigned char* data = ASN1_STRING_get0_data(s);
    const int len = ASN1_STRING_length(s);
    char buf[INET6_ADDRSTRLEN] = {};
    if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof buf) != nullptr) {
      out.emplace_back(buf);
    } else if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof buf) != nullptr) {
      out.emplace_back(buf);
    } else {
      out.push_back("invalid:" + hex_encode(ByteView(data, static_cast<std::size_t>(len))));
    }
  }
  return out;
}

std::string Certificate::serial_hex() const {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert_.get());
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) detail::throw_openssl(ErrorKind::Parse, "certificate serial does not decode");
  OsslStringPtr hex(BN_bn2hex(bn.get()));
  if (!hex) detail::throw_openssl(ErrorKind::Internal, "BN_bn2hex failed");
  std::string s = lower(hex.get());
  // BN_bn2hex pads to whole bytes; the documented form has no leading zeros.
  const bool negative = !s.empty() && s[0] == '-';
  const std::size_t start = negative ? 1 : 0;
  const std::size_t nz = s.find_first_not_of('0', start);
  s = (negative ? "-" : "") + (nz == std::string::npos ? std::string("0") : s.substr(nz));
  return s;
}

Bytes Certificate::serial_bytes() const {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert_.get());
  unsigned char* raw = nullptr;
  const int len = i2d_ASN1_INTEGER(serial, &raw);
  if (len <= 0) detail::throw_openssl(ErrorKind::Parse, "certificate serial does not encode");
  OsslBytesPtr der(raw);
  // Skip tag and length (short or long form) to get the content octets.
  std::size_t pos = 1;
  const unsigned char first = der.get()[pos++];
  if ((first & 0x80) != 0) pos += first & 0x7f;
  if (pos > static_cast<std::size_t>(len)) throw Error(ErrorKind::Parse, "certificate serial is malformed");
  return Bytes(der.get() + pos, der.get() + len);
}

std::string Certificate::issuer_cn() const { return name_cn(X509_get_issuer_name(cert_.get())); }
std::string Certificate::subject_cn() const { return name_cn(X509_get_subject_name(cert_.get())); }

Bytes Certificate::authority_key_id() const { return octets(X509_get0_authority_key_id(cert_.get())); }
Bytes Certificate::subject_key_id() const { return octets(X509_get0_subject_key_id(cert_.get())); }

bool Certificate::is_ca() const { return (X509_get_extension_flags(cert_.get()) & EXFLAG_CA) != 0; }

std::string Certificate::sha256_fingerprint_hex() const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert_.get(), EVP_sha256(), md, &len) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "certificate digest failed");
  }
  return hex_encode(ByteView(md, len));
}

PublicKey Certificate::public_key() const {
  EVP_PKEY* key = X509_get0_pubkey(cert_.get());
  if (key == nullptr) detail::throw_openssl(ErrorKind::Crypto, "certificate public key does not decode");
  return PublicKey::from_native(key);
}

std::string Certificate::to_pem() const { return detail::to_pem("CERTIFICATE", to_der()); }

Bytes Certificate::to_der() const {
  unsigned char* raw = nullptr;
  const int len = i2d_X509(cert_.get(), &raw);
  if (len <= 0) detail::throw_openssl(ErrorKind::Internal, "certificate does not encode");
  OsslBytesPtr der(raw);
  return Bytes(der.get(), der.get() + len);
}

bool operator==(const Certificate& a, const Certificate& b) {
  return a.native() == b.native() || X509_cmp(a.native(), b.native()) == 0;
}

std::vector<Certificate> parse_pem_chain(std::string_view text) {
  const auto blocks = detail::parse_pem_blocks(text);
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM certificate found");
  std::vector<Certificate> chain;
  chain.reserve(blocks.size());
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    chain.push_back(Certificate::from_native(parse_pem_block(blocks[i], i).get()));
  }
  return chain;
}

std::string leaf_fingerprint_hex(std::string_view chain_pem) {
  const auto blocks = detail::parse_pem_blocks(chain_pem);
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM certificate found");
  if (blocks.front().label != "CERTIFICATE") {
    throw Error(ErrorKind::Parse, "expected a CERTIFICATE PEM block, found " + blocks.front().label);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const auto& der = blocks.front().der;
  if (EVP_Digest(der.data(), der.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "certificate digest failed");
  }
  return hex_encode(ByteView(md, len));
}

std::string to_pem_chain(const std::vector<Certificate>& chain) {
  std::string out;
  for (const auto& cert : chain) out += cert.to_pem();
  return out;
}

bool key_matches_certificate(const PrivateKey& key, const Certificate& cert) {
  EVP_PKEY* cert_key = X509_get0_pubkey(cert.native());
  const bool eq = cert_key != nullptr && EVP_PKEY_eq(key.native(), cert_key) == 1;
  detail::clear_openssl_errors();
  return eq;
}

bool issued_by(const Certificate& cert, const Certificate& issuer) {
  if (X509_NAME_cmp(X509_get_issuer_name(cert.native()), X509_get_subject_name(issuer.native())) != 0) return false;
  EVP_PKEY* key = X509_get0_pubkey(issuer.native());
  const bool ok = key != nullptr && X509_verify(cert.native(), key) == 1;
  detail::clear_openssl_errors();
  return ok;
}

bool self_issued(const Certificate& cert) {
  return X509_NAME_cmp(X509_get_issuer_name(cert.native()), X509_get_subject_name(cert.native())) == 0;
}

std::string ari_cert_id(const Certificate& cert) {
  const Bytes aki = cert.authority_key_id();
  if (aki.empty()) throw Error(ErrorKind::Crypto, "certificate has no authority key identifier (needed for ARI)");
  return base64url_encode(aki) + "." + base64url_encode(cert.serial_bytes());
}

VerifyResult verify_chain(const std::vector<Certificate>& chain, const std::vector<std::string>& root_pems,
                          TimePoint at) {
  if (chain.empty()) return {false, "empty certificate chain"};
  X509StorePtr store(X509_STORE_new());
  X509StackPtr untrusted(sk_X509_new_null());
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) detail::throw_openssl(ErrorKind::Internal, "X509 store allocation failed");
  std::size_t roots = 0;
  for (const auto& pem : root_pems) {
    for (const auto& root : parse_pem_chain(pem)) {
      if (X509_STORE_add_cert(store.get(), root.native()) != 1) {
        detail::clear_openssl_errors();  // duplicate roots are harmless
      }
      ++roots;
    }
  }
  if (roots == 0) return {false, "no trusted roots given"};
  for (std::size_t i = 1; i < chain.size(); ++i) {
    X509Ptr ref = up_ref(chain[i].native());
    if (sk_X509_push(untrusted.get(), ref.get()) <= 0) detail::throw_openssl(ErrorKind::Internal, "sk_X509_push");
    (void)ref.release();  // owned by the stack
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().native(), untrusted.get()) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "X509_STORE_CTX_init failed");
  }
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(at.time_since_epoch()).count();
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(secs));
  const int rc = X509_verify_cert(ctx.get());
  if (rc == 1) {
    detail::clear_openssl_errors();
    return {true, {}};
  }
  const int err = X509_STORE_CTX_get_error(ctx.get());
  const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
  std::string message = X509_verify_cert_error_string(err);
  message += " (depth " + std::to_string(depth);
  if (X509* bad = X509_STORE_CTX_get_current_cert(ctx.get())) {
    const std::string cn = name_cn(X509_get_subject_name(bad));
    if (!cn.empty()) message += ", subject CN " + cn;
  }
  message += ")";
  detail::clear_openssl_errors();
  return {false, message};
}

}  // namespace acme_sidecar::crypto
