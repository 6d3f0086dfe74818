#pragma once
// RAII for every OpenSSL handle the sidecar touches: one unique_ptr alias per type, all sharing one
// deleter type whose overloads are defined out of line (ossl_ptr.cpp), so this header needs only the
// opaque type declarations from <openssl/types.h> and stays cheap to include. No manual frees anywhere.
#include <memory>

#include <openssl/types.h>

// STACK_OF(X509) / STACK_OF(GENERAL_NAME) are these incomplete structs (see <openssl/safestack.h>).
struct stack_st_X509;
struct stack_st_GENERAL_NAME;
struct stack_st_X509_EXTENSION;
// Not in <openssl/types.h>; repeating OpenSSL's own typedefs is legal and keeps x509.h/ec.h out.
typedef struct X509_req_st X509_REQ;
typedef struct X509_extension_st X509_EXTENSION;
typedef struct ECDSA_SIG_st ECDSA_SIG;
typedef struct GENERAL_NAME_st GENERAL_NAME;
typedef struct BASIC_CONSTRAINTS_st BASIC_CONSTRAINTS;
typedef struct ec_group_st EC_GROUP;
typedef struct ec_point_st EC_POINT;

namespace acme_sidecar::crypto {

struct OsslDeleter {
  void operator()(EVP_PKEY* p) const noexcept;
  void operator()(EVP_PKEY_CTX* p) const noexcept;
  void operator()(EVP_MD_CTX* p) const noexcept;
  void operator()(EVP_MAC* p) const noexcept;
  void operator()(EVP_MAC_CTX* p) const noexcept;
  void operator()(X509* p) const noexcept;
  void operator()(X509_REQ* p) const noexcept;
  void operator()(X509_NAME* p) const noexcept;
  void operator()(X509_EXTENSION* p) const noexcept;
  void operator()(X509_STORE* p) const noexcept;
  void operator()(X509_STORE_CTX* p) const noexcept;
  void operator()(BIO* p) const noexcept;
  void operator()(BIGNUM* p) const noexcept;
  void operator()(BN_CTX* p) const noexcept;
  void operator()(ECDSA_SIG* p) const noexcept;
  void operator()(EC_GROUP* p) const noexcept;
  void operator()(EC_POINT* p) const noexcept;
  // ASN1_INTEGER, ASN1_TIME, ASN1_OCTET_STRING, ... are all ASN1_STRING (one C type).
  void operator()(ASN1_STRING* p) const noexcept;
  void operator()(AUTHORITY_KEYID* p) const noexcept;
  void operator()(GENERAL_NAME* p) const noexcept;
  void operator()(BASIC_CONSTRAINTS* p) const noexcept;
  void operator()(OSSL_PARAM_BLD* p) const noexcept;
  void operator()(OSSL_PARAM* p) const noexcept;
  void operator()(OSSL_DECODER_CTX* p) const noexcept;
  void operator()(OSSL_ENCODER_CTX* p) const noexcept;
  void operator()(stack_st_X509* p) const noexcept;                // frees the stack and every X509 in it
  void operator()(stack_st_GENERAL_NAME* p) const noexcept;        // GENERAL_NAMES_free
  void operator()(stack_st_X509_EXTENSION* p) const noexcept;      // frees every extension too
  void operator()(unsigned char* p) const noexcept;                // OPENSSL_free (i2d_* / *_to_hex output)
  void operator()(char* p) const noexcept;                         // OPENSSL_free
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OsslDeleter>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OsslDeleter>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OsslDeleter>;
using EvpMacPtr = std::unique_ptr<EVP_MAC, OsslDeleter>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OsslDeleter>;
using X509Ptr = std::unique_ptr<X509, OsslDeleter>;
using X509ReqPtr = std::unique_ptr<X509_REQ, OsslDeleter>;
using X509NamePtr = std::unique_ptr<X509_NAME, OsslDeleter>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslDeleter>;
using X509StorePtr = std::unique_ptr<X509_STORE, OsslDeleter>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslDeleter>;
using BioPtr = std::unique_ptr<BIO, OsslDeleter>;
using BignumPtr = std::unique_ptr<BIGNUM, OsslDeleter>;
using BnCtxPtr = std::unique_ptr<BN_CTX, OsslDeleter>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OsslDeleter>;
using EcGroupPtr = std::unique_ptr<EC_GROUP, OsslDeleter>;
using EcPointPtr = std::unique_ptr<EC_POINT, OsslDeleter>;
using AuthorityKeyIdPtr = std::unique_ptr<AUTHORITY_KEYID, OsslDeleter>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, OsslDeleter>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, OsslDeleter>;
using Asn1StringPtr = std::unique_ptr<ASN1_STRING, OsslDeleter>;
using Asn1IntegerPtr = Asn1StringPtr;  // ASN1_INTEGER, ASN1_TIME, ... are the same C type
using Asn1TimePtr = Asn1StringPtr;
using Asn1OctetStringPtr = Asn1StringPtr;
using OsslParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OsslDeleter>;
using OsslParamPtr = std::unique_ptr<OSSL_PARAM, OsslDeleter>;
using OsslDecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, OsslDeleter>;
using OsslEncoderCtxPtr = std::unique_ptr<OSSL_ENCODER_CTX, OsslDeleter>;
using X509StackPtr = std::unique_ptr<stack_st_X509, OsslDeleter>;
using GeneralNamesPtr = std::unique_ptr<stack_st_GENERAL_NAME, OsslDeleter>;
using X509ExtensionStackPtr = std::unique_ptr<stack_st_X509_EXTENSION, OsslDeleter>;
using OsslBytesPtr = std::unique_ptr<unsigned char, OsslDeleter>;
using OsslStringPtr = std::unique_ptr<char, OsslDeleter>;

// Takes one more reference on a shared handle (EVP_PKEY_up_ref / X509_up_ref) and wraps it.
EvpPkeyPtr up_ref(EVP_PKEY* p);
X509Ptr up_ref(X509* p);

}  // namespace acme_sidecar::crypto
