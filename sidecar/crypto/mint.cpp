#include "crypto/mint.hpp"

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"
#include "crypto/names.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

Asn1StringPtr make_serial(const Bytes& requested) {
  Bytes content = requested;
  if (content.empty()) {
    content.resize(16);
    if (RAND_bytes(content.data(), static_cast<int>(content.size())) != 1) {
      detail::throw_openssl(ErrorKind::Internal, "RAND_bytes failed");
    }
    content[0] = static_cast<std::uint8_t>((content[0] & 0x7f) | 0x40);  // positive, minimal, 16 bytes
  }
  if (content.size() > 126) throw Error(ErrorKind::Invalid, "serial longer than 126 bytes");
  // Encode the INTEGER ourselves so callers can mint exact (even non-conforming) serials.
  Bytes der{0x02, static_cast<std::uint8_t>(content.size())};
  der.insert(der.end(), content.begin(), content.end());
  const unsigned char* p = der.data();
  Asn1StringPtr serial(d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(der.size())));
  if (!serial) detail::throw_openssl(ErrorKind::Invalid, "serial is not a valid INTEGER");
  return serial;
}

void set_time(X509* cert, TimePoint t, bool before) {
  Asn1StringPtr time;
  if (t == TimePoint::max()) {
    // RFC 5280 §4.1.2.5: "no well-defined expiration date".
    time.reset(ASN1_TIME_new());
    if (!time || ASN1_TIME_set_string(time.get(), "99991231235959Z") != 1) {
      detail::throw_openssl(ErrorKind::Internal, "cannot set GeneralizedTime");
    }
  } else {
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    time.reset(ASN1_TIME_set(nullptr, static_cast<time_t>(secs)));
    if (!time) detail::throw_openssl(ErrorKind::Invalid, "validity time out of range");
  }
  const int ok = before ? X509_set1_notBefore(cert, time.get()) : X509_set1_notAfter(cert, time.get());
  if (ok != 1) detail::throw_openssl(ErrorKind::Internal, "cannot set validity");
}

void add_ext(X509* cert, int nid, void* value, bool critical) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "cannot add extension " + std::string(OBJ_nid2sn(nid)));
  }
}

// Extensions given as OpenSSL config strings (only fixed literals, never user data).
void add_conf_ext(X509* cert, int nid, const char* value) {
  X509ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, nullptr, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "cannot add extension " + std::string(OBJ_nid2sn(nid)));
  }
}

// RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING.
Bytes key_id(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), md, &len) != 1) detail::throw_openssl(ErrorKind::Internal, "key id");
  return Bytes(md, md + len);
}

Asn1StringPtr octet_string(const Bytes& bytes) {
  Asn1StringPtr s(ASN1_OCTET_STRING_new());
  if (!s || ASN1_OCTET_STRING_set(s.get(), bytes.data(), static_cast<int>(bytes.size())) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "ASN1_OCTET_STRING allocation failed");
  }
  return s;
}

const EVP_MD* digest_for(const PrivateKey& key) {
  return key.algorithm() == KeyAlgorithm::EcdsaP384 ? EVP_sha384() : EVP_sha256();
}

// Builds and signs. `issuer` null → self-signed by `signer`.
Certificate build(const PrivateKey& signer, const Certificate* issuer, EVP_PKEY* subject_key,
                  const CertificateSpec& spec) {
  if (spec.not_after <= spec.not_before) throw Error(ErrorKind::Invalid, "not_after must be after not_before");
  X509Ptr cert(X509_new());
  if (!cert) detail::throw_openssl(ErrorKind::Internal, "X509_new failed");
  X509* x = cert.get();
  if (X509_set_version(x, X509_VERSION_3) != 1) detail::throw_openssl(ErrorKind::Internal, "X509_set_version");
  const Asn1StringPtr serial = make_serial(spec.serial);
  if (X509_set_serialNumber(x, serial.get()) != 1) detail::throw_openssl(ErrorKind::Internal, "serial");
  set_time(x, spec.not_before, true);
  set_time(x, spec.not_after, false);

  std::string cn = spec.common_name;
  if (cn.empty() && !spec.dns_names.empty() && spec.dns_names.front().size() <= detail::kMaxCommonNameBytes) {
    cn = spec.dns_names.front();
  }
  X509_NAME* subject = X509_get_subject_name(x);
  if (!cn.empty() && X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                                reinterpret_cast<const unsigned char*>(cn.data()),
                                                static_cast<int>(cn.size()), -1, 0) != 1) {
    detail::throw_openssl(ErrorKind::Invalid, "cannot set subject common name (at most 64 bytes)");
  }
  const X509_NAME* issuer_name = issuer != nullptr ? X509_get_subject_name(issuer->native()) : subject;
  if (X509_set_issuer_name(x, issuer_name) != 1) detail::throw_openssl(ErrorKind::Internal, "issuer name");
  if (X509_set_pubkey(x, subject_key) != 1) detail::throw_openssl(ErrorKind::Crypto, "cannot set public key");

  if (spec.is_ca) {
    add_conf_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_conf_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
  } else {
    add_conf_ext(x, NID_basic_constraints, "critical,CA:FALSE");
    const bool rsa = EVP_PKEY_get_base_id(subject_key) == EVP_PKEY_RSA;
    add_conf_ext(x, NID_key_usage, rsa ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature");
    add_conf_ext(x, NID_ext_key_usage, "serverAuth");
  }
  if (!spec.dns_names.empty() || !spec.ip_addresses.empty()) {
    const GeneralNamesPtr sans = detail::dns_general_names(spec.dns_names, spec.ip_addresses);
    // Critical when the subject is empty, as RFC 5280 §4.2.1.6 requires.
    add_ext(x, NID_subject_alt_name, sans.get(), cn.empty());
  }
  if (!spec.omit_key_identifiers) {
    const Bytes ski = key_id(x);
    add_ext(x, NID_subject_key_identifier, octet_string(ski).get(), false);
    Bytes aki = ski;
    if (issuer != nullptr) {
      aki = issuer->subject_key_id();
      if (aki.empty()) aki = key_id(issuer->native());
    }
    AuthorityKeyIdPtr akid(AUTHORITY_KEYID_new());
    if (!akid) detail::throw_openssl(ErrorKind::Internal, "AUTHORITY_KEYID_new failed");
    akid->keyid = octet_string(aki).release();
    add_ext(x, NID_authority_key_identifier, akid.get(), false);
  }
  if (X509_sign(x, signer.native(), digest_for(signer)) <= 0) {
    detail::throw_openssl(ErrorKind::Crypto, "certificate signing failed");
  }
  return Certificate::from_native(x);
}

}  // namespace

Certificate make_self_signed(const PrivateKey& key, const CertificateSpec& spec) {
  return build(key, nullptr, key.native(), spec);
}

Certificate make_self_signed(const PrivateKey& key, const std::vector<std::string>& names, TimePoint not_before,
                             TimePoint not_after) {
  CertificateSpec spec;
  spec.dns_names = names;
  spec.not_before = not_before;
  spec.not_after = not_after;
  return make_self_signed(key, spec);
}

Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, const PublicKey& subject,
                              const CertificateSpec& spec) {
  if (!key_matches_certificate(ca_key, ca_cert)) {
    throw Error(ErrorKind::Crypto, "CA key does not match the CA certificate");
  }
  return build(ca_key, &ca_cert, subject.native(), spec);
}

Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, const PublicKey& subject,
                              const std::vector<std::string>& names, TimePoint not_before,
                              std::chrono::seconds validity) {
  CertificateSpec spec;
  spec.dns_names = names;
  spec.not_before = not_before;
  spec.not_after = not_before + validity;
  return issue_certificate(ca_key, ca_cert, subject, spec);
}

Certificate issue_certificate(const PrivateKey& ca_key, const Certificate& ca_cert, ByteView csr_der,
                              TimePoint not_before, std::chrono::seconds validity) {
  const CsrInfo csr = parse_csr(csr_der);
  if (csr.dns_names.empty()) throw Error(ErrorKind::Invalid, "CSR has no DNS names");
  return issue_certificate(ca_key, ca_cert, csr.public_key, csr.dns_names, not_before, validity);
}

}  // namespace acme_sidecar::crypto
