#include "crypto/sign.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

// Fetched once: with the legacy EVP_sha256() pointers every EVP_Digest call fetches the implementation
// again from the provider store. Immutable and never freed (reachable until exit).
const EVP_MD* fetched_sha256() {
  static const EVP_MD* const md = [] {
    const EVP_MD* f = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return f != nullptr ? f : EVP_sha256();
  }();
  return md;
}
const EVP_MD* fetched_sha384() {
  static const EVP_MD* const md = [] {
    const EVP_MD* f = EVP_MD_fetch(nullptr, "SHA384", nullptr);
    return f != nullptr ? f : EVP_sha384();
  }();
  return md;
}

const EVP_MD* digest_for(KeyAlgorithm alg) {
  return alg == KeyAlgorithm::EcdsaP384 ? fetched_sha384() : fetched_sha256();
}

bool is_ec(KeyAlgorithm alg) { return alg == KeyAlgorithm::EcdsaP256 || alg == KeyAlgorithm::EcdsaP384; }

std::size_t coordinate_size(KeyAlgorithm alg) { return alg == KeyAlgorithm::EcdsaP384 ? 48 : 32; }

Bytes digest(const EVP_MD* md, ByteView data) {
  Bytes out(static_cast<std::size_t>(EVP_MD_get_size(md)));
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "digest failed");
  }
  out.resize(len);
  return out;
}

}  // namespace

Bytes sha256(ByteView data) { return digest(fetched_sha256(), data); }
Bytes sha384(ByteView data) { return digest(fetched_sha384(), data); }

Bytes hmac_sha256(ByteView key, ByteView data) {
  if (key.empty()) throw Error(ErrorKind::Invalid, "HMAC key is empty");
  Bytes out(32);
  std::size_t len = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(), data.data(), data.size(),
                out.data(), out.size(), &len) == nullptr) {
    detail::throw_openssl(ErrorKind::Internal, "HMAC-SHA256 failed");
  }
  out.resize(len);
  return out;
}

std::string_view jws_alg(KeyAlgorithm alg) noexcept {
  switch (alg) {
    case KeyAlgorithm::EcdsaP256: return "ES256";
    case KeyAlgorithm::EcdsaP384: return "ES384";
    case KeyAlgorithm::Rsa2048:
    case KeyAlgorithm::Rsa3072:
    case KeyAlgorithm::Rsa4096: return "RS256";
  }
  return "none";
}

Bytes sign(const PrivateKey& key, ByteView data) {
  // Hash, then sign the digest with a context from the key's pool (initialised once per context,
  // see SignContextPool): the same signature EVP_DigestSign would produce.
  const EVP_MD* md = digest_for(key.algorithm());
  const Bytes hashed = digest(md, data);
  EvpPkeyCtxPtr ctx = key.sign_contexts().take();
  if (!ctx) {
    ctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key.native(), nullptr));
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1) detail::throw_openssl(ErrorKind::Crypto, "signing init failed");
    // RSA: PKCS#1 v1.5 over a DigestInfo naming the hash (RS256); EC: checks the digest length.
    if (!is_ec(key.algorithm()) && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
      detail::throw_openssl(ErrorKind::Crypto, "cannot select PKCS#1 v1.5 padding");
    }
    if (EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1) {
      detail::throw_openssl(ErrorKind::Crypto, "cannot set the signature digest");
    }
  }
  // The key's maximum signature size, instead of a second call that only asks for it.
  const int max_len = EVP_PKEY_get_size(key.native());
  if (max_len <= 0) detail::throw_openssl(ErrorKind::Crypto, "cannot size the signature");
  std::size_t len = static_cast<std::size_t>(max_len);
  Bytes sig(len);
  if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, hashed.data(), hashed.size()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "signing failed");  // the context is dropped, not reused
  }
  key.sign_contexts().give(std::move(ctx));
  sig.resize(len);
  if (is_ec(key.algorithm())) return ecdsa_der_to_raw(sig, coordinate_size(key.algorithm()));
  return sig;
}

bool verify(const PublicKey& key, ByteView data, ByteView signature) {
  Bytes der;
  ByteView to_check = signature;
  if (is_ec(key.algorithm())) {
    if (signature.size() != 2 * coordinate_size(key.algorithm())) return false;
    try {
      der = ecdsa_raw_to_der(signature);
    } catch (const Error&) {
      return false;
    }
    to_check = der;
  } else if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.native()))) {
    return false;
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) detail::throw_openssl(ErrorKind::Internal, "EVP_MD_CTX_new failed");
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, digest_for(key.algorithm()), nullptr, key.native()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "verify init failed");
  }
  const bool ok = EVP_DigestVerify(ctx.get(), to_check.data(), to_check.size(), data.data(), data.size()) == 1;
  detail::clear_openssl_errors();
  return ok;
}

Bytes ecdsa_der_to_raw(ByteView der, std::size_t size) {
  const unsigned char* p = der.data();
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig || p != der.data() + der.size()) {
    detail::clear_openssl_errors();
    throw Error(ErrorKind::Crypto, "malformed ECDSA DER signature");
  }
  const BIGNUM* r = ECDSA_SIG_get0_r(sig.get());
  const BIGNUM* s = ECDSA_SIG_get0_s(sig.get());
  Bytes raw(2 * size);
  if (BN_bn2binpad(r, raw.data(), static_cast<int>(size)) < 0 ||
      BN_bn2binpad(s, raw.data() + size, static_cast<int>(size)) < 0) {
    detail::clear_openssl_errors();
    throw Error(ErrorKind::Crypto, "ECDSA signature component larger than the curve size");
  }
  return raw;
}

Bytes ecdsa_raw_to_der(ByteView raw) {
  if (raw.empty() || raw.size() % 2 != 0 || raw.size() > 2 * 66) {
    throw Error(ErrorKind::Crypto, "raw ECDSA signature has an invalid length",
                {{"length", std::to_string(raw.size())}});
  }
  const int half = static_cast<int>(raw.size() / 2);
  BignumPtr r(BN_bin2bn(raw.data(), half, nullptr));
  BignumPtr s(BN_bin2bn(raw.data() + half, half, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (!r || !s || !sig) detail::throw_openssl(ErrorKind::Internal, "ECDSA_SIG allocation failed");
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) detail::throw_openssl(ErrorKind::Internal, "ECDSA_SIG_set0");
  (void)r.release();  // owned by sig now
  (void)s.release();
  unsigned char* out = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &out);
  if (len <= 0) detail::throw_openssl(ErrorKind::Crypto, "cannot encode ECDSA signature");
  OsslBytesPtr holder(out);
  return Bytes(holder.get(), holder.get() + len);
}

}  // namespace acme_sidecar::crypto
