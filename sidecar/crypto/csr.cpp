#include "crypto/csr.hpp"

#include <algorithm>
#include <cctype>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"
#include "crypto/names.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

// X509_REQ_set_pubkey encodes the key and decodes it again through OpenSSL 3.0's decoders (~0.4 ms,
// half of make_csr). For EC keys the SubjectPublicKeyInfo is just (id-ecPublicKey, curve OID, point):
// set those directly. False when not applicable (RSA): the caller takes the general path.
bool set_ec_public_key(X509_REQ* req, const PrivateKey& key) {
  int curve = 0;
  if (key.algorithm() == KeyAlgorithm::EcdsaP256) curve = NID_X9_62_prime256v1;
  if (key.algorithm() == KeyAlgorithm::EcdsaP384) curve = NID_secp384r1;
  if (curve == 0) return false;
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key.native(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &len) != 1 ||
      len == 0) {
    detail::clear_openssl_errors();
    return false;
  }
  auto* point = static_cast<unsigned char*>(OPENSSL_malloc(len));
  if (point == nullptr) return false;
  if (EVP_PKEY_get_octet_string_param(key.native(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, len, &len) != 1 ||
      X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req), OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                             OBJ_nid2obj(curve), point, static_cast<int>(len)) != 1) {
    OPENSSL_free(point);  // set0 takes ownership only on success
    detail::clear_openssl_errors();
    return false;
  }
  return true;
}

}  // namespace

Csr make_csr(const PrivateKey& key, const std::vector<std::string>& names) {
  if (names.empty()) throw Error(ErrorKind::Invalid, "a CSR needs at least one name");
  for (const auto& name : names) detail::check_dns_name(name);

  X509ReqPtr req(X509_REQ_new());
  if (!req) detail::throw_openssl(ErrorKind::Internal, "X509_REQ_new failed");
  if (X509_REQ_set_version(req.get(), 0) != 1) detail::throw_openssl(ErrorKind::Internal, "X509_REQ_set_version");

  if (names.front().size() <= detail::kMaxCommonNameBytes) {
    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    if (X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(names.front().data()),
                                   static_cast<int>(names.front().size()), -1, 0) != 1) {
      detail::throw_openssl(ErrorKind::Invalid, "cannot set the CSR common name");
    }
  }
  if (!set_ec_public_key(req.get(), key) && X509_REQ_set_pubkey(req.get(), key.native()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "cannot set the CSR public key");
  }

  GeneralNamesPtr sans = detail::dns_general_names(names, {});
  X509ExtensionStackPtr exts(sk_X509_EXTENSION_new_null());
  if (!exts) detail::throw_openssl(ErrorKind::Internal, "sk_X509_EXTENSION_new_null");
  STACK_OF(X509_EXTENSION)* raw_exts = exts.get();
  if (X509V3_add1_i2d(&raw_exts, NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1 ||
      X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "cannot add the subjectAltName extension");
  }

  const EVP_MD* md = key.algorithm() == KeyAlgorithm::EcdsaP384 ? EVP_sha384() : EVP_sha256();
  if (X509_REQ_sign(req.get(), key.native(), md) <= 0) detail::throw_openssl(ErrorKind::Crypto, "CSR signing failed");

  unsigned char* raw = nullptr;
  const int len = i2d_X509_REQ(req.get(), &raw);
  if (len <= 0) detail::throw_openssl(ErrorKind::Internal, "CSR does not encode");
  OsslBytesPtr der(raw);
  Csr csr;
  csr.der.assign(der.get(), der.get() + len);
  csr.pem = detail::to_pem("CERTIFICATE REQUEST", csr.der);
  return csr;
}

CsrInfo parse_csr(ByteView der) {
  if (der.empty()) throw Error(ErrorKind::Parse, "empty CSR");
  const unsigned char* p = der.data();
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) detail::throw_openssl(ErrorKind::Parse, "CSR DER does not parse");
  if (p != der.data() + der.size()) throw Error(ErrorKind::Parse, "trailing bytes after CSR DER");
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr) detail::throw_openssl(ErrorKind::Parse, "CSR public key does not decode");
  if (X509_REQ_verify(req.get(), pub) != 1) detail::throw_openssl(ErrorKind::Crypto, "CSR signature does not verify");

  CsrInfo info{PublicKey::from_native(pub), {}, {}};
  X509ExtensionStackPtr exts(X509_REQ_get_extensions(req.get()));
  if (exts) {
    GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts.get(), NID_subject_alt_name, nullptr, nullptr)));
    if (sans) {
      for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
        if (gn->type != GEN_DNS) continue;
        std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                         static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        info.dns_names.push_back(std::move(name));
      }
    }
  }
  const X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0) {
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    if (len >= 0) {
      OsslBytesPtr holder(utf8);
      info.common_name.assign(reinterpret_cast<const char*>(holder.get()), static_cast<std::size_t>(len));
    }
  }
  detail::clear_openssl_errors();
  return info;
}

CsrInfo parse_csr_pem(std::string_view pem) {
  const auto blocks = detail::parse_pem_blocks(pem);
  for (const auto& block : blocks) {
    if (block.label == "CERTIFICATE REQUEST" || block.label == "NEW CERTIFICATE REQUEST") return parse_csr(block.der);
  }
  if (blocks.empty()) throw Error(ErrorKind::Parse, "no PEM block found where a CSR was expected");
  throw Error(ErrorKind::Parse, "expected a CERTIFICATE REQUEST PEM block, found " + blocks.front().label);
}

}  // namespace acme_sidecar::crypto
