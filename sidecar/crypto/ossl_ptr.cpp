#include "crypto/ossl_ptr.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace acme_sidecar::crypto {

void OsslDeleter::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
void OsslDeleter::operator()(EC_GROUP* p) const noexcept { EC_GROUP_free(p); }
void OsslDeleter::operator()(EC_POINT* p) const noexcept { EC_POINT_free(p); }
void OsslDeleter::operator()(EVP_PKEY_CTX* p) const noexcept { EVP_PKEY_CTX_free(p); }
void OsslDeleter::operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
void OsslDeleter::operator()(EVP_MAC* p) const noexcept { EVP_MAC_free(p); }
void OsslDeleter::operator()(EVP_MAC_CTX* p) const noexcept { EVP_MAC_CTX_free(p); }
void OsslDeleter::operator()(X509* p) const noexcept { X509_free(p); }
void OsslDeleter::operator()(X509_REQ* p) const noexcept { X509_REQ_free(p); }
void OsslDeleter::operator()(X509_NAME* p) const noexcept { X509_NAME_free(p); }
void OsslDeleter::operator()(X509_EXTENSION* p) const noexcept { X509_EXTENSION_free(p); }
void OsslDeleter::operator()(X509_STORE* p) const noexcept { X509_STORE_free(p); }
void OsslDeleter::operator()(X509_STORE_CTX* p) const noexcept { X509_STORE_CTX_free(p); }
void OsslDeleter::operator()(BIO* p) const noexcept { BIO_free_all(p); }
void OsslDeleter::operator()(BIGNUM* p) const noexcept { BN_clear_free(p); }
void OsslDeleter::operator()(BN_CTX* p) const noexcept { BN_CTX_free(p); }
void OsslDeleter::operator()(ECDSA_SIG* p) const noexcept { ECDSA_SIG_free(p); }
void OsslDeleter::operator()(ASN1_STRING* p) const noexcept { ASN1_STRING_free(p); }
void OsslDeleter::operator()(AUTHORITY_KEYID* p) const noexcept { AUTHORITY_KEYID_free(p); }
void OsslDeleter::operator()(GENERAL_NAME* p) const noexcept { GENERAL_NAME_free(p); }
void OsslDeleter::operator()(BASIC_CONSTRAINTS* p) const noexcept { BASIC_CONSTRAINTS_free(p); }
void OsslDeleter::operator()(OSSL_PARAM_BLD* p) const noexcept { OSSL_PARAM_BLD_free(p); }
void OsslDeleter::operator()(OSSL_PARAM* p) const noexcept { OSSL_PARAM_free(p); }
void OsslDeleter::operator()(OSSL_DECODER_CTX* p) const noexcept { OSSL_DECODER_CTX_free(p); }
void OsslDeleter::operator()(OSSL_ENCODER_CTX* p) const noexcept { OSSL_ENCODER_CTX_free(p); }
void OsslDeleter::operator()(stack_st_X509* p) const noexcept { sk_X509_pop_free(p, X509_free); }
void OsslDeleter::operator()(stack_st_GENERAL_NAME* p) const noexcept { GENERAL_NAMES_free(p); }
void OsslDeleter::operator()(stack_st_X509_EXTENSION* p) const noexcept {
  sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
}
void OsslDeleter::operator()(unsigned char* p) const noexcept { OPENSSL_free(p); }
void OsslDeleter::operator()(char* p) const noexcept { OPENSSL_free(p); }

EvpPkeyPtr up_ref(EVP_PKEY* p) {
  if (p != nullptr) EVP_PKEY_up_ref(p);
  return EvpPkeyPtr(p);
}

X509Ptr up_ref(X509* p) {
  if (p != nullptr) X509_up_ref(p);
  return X509Ptr(p);
}

}  // namespace acme_sidecar::crypto
