// Throw-away CA and serving certificate (SAN 127.0.0.1, localhost) on OpenSSL 3 EVP APIs.
#include <memory>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "internal.hpp"

namespace acme_sidecar::fake_apiserver::detail {
namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Ext = std::unique_ptr<X509_EXTENSION, Free>;
using Bio = std::unique_ptr<BIO, Free>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("fake-apiserver TLS: ") + what);
}

Key ec_key() {
  Key k(EVP_EC_gen("P-256"));
  check(k != nullptr, "EVP_EC_gen");
  return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

Cert make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca) {
  Cert c(X509_new());
  check(c != nullptr, "X509_new");
  X509_set_version(c.get(), 2);
  unsigned char serial[16];
  check(RAND_bytes(serial, sizeof serial) == 1, "RAND_bytes");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  check(bn != nullptr, "BN_bin2bn");
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), 365L * 24 * 3600);
  X509_set_pubkey(c.get(), key);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509* iss = issuer ? issuer : c.get();
  X509_set_issuer_name(c.get(), X509_get_subject_name(iss));
  if (ca) {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth");
    add_ext(c.get(), iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    add_ext(c.get(), iss, NID_authority_key_identifier, "keyid:always");
  }
  check(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return c;
}

std::string bio_string(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string cert_pem(X509* c) {
  Bio b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(b.get(), c) == 1, "PEM_write_bio_X509");
  return bio_string(b.get());
}

std::string key_pem(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) == 1, "PEM_write_bio_PrivateKey");
  return bio_string(b.get());
}

}  // namespace

TlsMaterial generate_tls() {
  Key ca_key = ec_key();
  Cert ca = make_cert(ca_key.get(), "fake-apiserver-ca", nullptr, nullptr, true);
  Key key = ec_key();
  Cert cert = make_cert(key.get(), "fake-apiserver", ca.get(), ca_key.get(), false);
  return {cert_pem(ca.get()), key_pem(ca_key.get()), cert_pem(cert.get()), key_pem(key.get())};
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  check(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) == 1, "RAND_bytes");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::string random_uid() {
  std::string h = random_hex(16);
  h[12] = '4';
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20, 12);
}

}  // namespace acme_sidecar::fake_apiserver::detail
