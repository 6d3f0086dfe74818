#include "crypto/jwk.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "core/error.hpp"
#include "crypto/internal.hpp"
#include "crypto/sign.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

Bytes bn_param(EVP_PKEY* key, const char* name, std::size_t pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &raw) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, std::string("cannot read key parameter ") + name);
  }
  BignumPtr bn(raw);
  const std::size_t natural = static_cast<std::size_t>(BN_num_bytes(bn.get()));
  Bytes out(std::max(natural, pad_to));
  if (BN_bn2binpad(bn.get(), out.data(), static_cast<int>(out.size())) < 0) {
    detail::throw_openssl(ErrorKind::Crypto, "cannot encode key parameter");
  }
  return out;
}

BignumPtr to_bn(const Bytes& bytes) {
  BignumPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn) detail::throw_openssl(ErrorKind::Internal, "BN_bin2bn failed");
  return bn;
}

PublicKey from_params(const char* type, OSSL_PARAM_BLD* bld) {
  OsslParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  if (!params) detail::throw_openssl(ErrorKind::Internal, "OSSL_PARAM_BLD_to_param failed");
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1) detail::throw_openssl(ErrorKind::Internal, "fromdata init");
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, std::string("JWK does not form a valid ") + type + " public key");
  }
  EvpPkeyPtr key(raw);
  // fromdata does not validate EC points; a key off the curve must not be accepted.
  EvpPkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    detail::throw_openssl(ErrorKind::Crypto, "JWK public key fails validation");
  }
  return PublicKey::from_native(key.get());
}

Bytes decode_member(std::string_view value, std::string_view member) {
  try {
    Bytes out = base64url_decode(value);
    if (out.empty()) throw Error(ErrorKind::Parse, "empty");
    return out;
  } catch (const Error& e) {
    throw Error(ErrorKind::Parse, "JWK member '" + std::string(member) + "' is invalid: " + e.message());
  }
}

}  // namespace

std::string jwk_json(const PublicKey& key) {
  // Member values are base64url or fixed strings: nothing needs JSON escaping.
  switch (key.algorithm()) {
    case KeyAlgorithm::EcdsaP256:
    case KeyAlgorithm::EcdsaP384: {
      const bool p384 = key.algorithm() == KeyAlgorithm::EcdsaP384;
      const std::size_t size = p384 ? 48 : 32;
      const Bytes x = bn_param(key.native(), OSSL_PKEY_PARAM_EC_PUB_X, size);
      const Bytes y = bn_param(key.native(), OSSL_PKEY_PARAM_EC_PUB_Y, size);
      return std::string(R"({"crv":")") + (p384 ? "P-384" : "P-256") + R"(","kty":"EC","x":")" +
             base64url_encode(x) + R"(","y":")" + base64url_encode(y) + R"("})";
    }
    case KeyAlgorithm::Rsa2048:
    case KeyAlgorithm::Rsa3072:
    case KeyAlgorithm::Rsa4096: {
      const Bytes n = bn_param(key.native(), OSSL_PKEY_PARAM_RSA_N, 0);
      const Bytes e = bn_param(key.native(), OSSL_PKEY_PARAM_RSA_E, 0);
      return R"({"e":")" + base64url_encode(e) + R"(","kty":"RSA","n":")" + base64url_encode(n) + R"("})";
    }
  }
  throw Error(ErrorKind::Internal, "unknown key algorithm");
}

std::string jwk_thumbprint(const PublicKey& key) { return base64url_encode(sha256(jwk_json(key))); }

PublicKey rsa_public_key_from_jwk(std::string_view n_b64url, std::string_view e_b64url) {
  const Bytes n = decode_member(n_b64url, "n");
  const Bytes e = decode_member(e_b64url, "e");
  if (n.size() > 1024 || e.size() > 16) throw Error(ErrorKind::Crypto, "RSA JWK members are too large");
  BignumPtr bn_n = to_bn(n);
  BignumPtr bn_e = to_bn(e);
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "OSSL_PARAM_BLD failed");
  }
  return from_params("RSA", bld.get());
}

PublicKey ec_public_key_from_jwk(std::string_view crv, std::string_view x_b64url, std::string_view y_b64url) {
  std::size_t size = 0;
  const char* group = nullptr;
  if (crv == "P-256") {
    size = 32;
    group = "P-256";
  } else if (crv == "P-384") {
    size = 48;
    group = "P-384";
  } else {
    throw Error(ErrorKind::Crypto, "unsupported JWK curve '" + std::string(crv.substr(0, 32)) + "'");
  }
  const Bytes x = decode_member(x_b64url, "x");
  const Bytes y = decode_member(y_b64url, "y");
  if (x.size() != size || y.size() != size) {
    throw Error(ErrorKind::Crypto, "JWK EC coordinates must be exactly " + std::to_string(size) + " bytes");
  }
  Bytes point;
  point.reserve(1 + 2 * size);
  point.push_back(0x04);  // uncompressed
  point.insert(point.end(), x.begin(), x.end());
  point.insert(point.end(), y.begin(), y.end());
  OsslParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld || OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()) != 1) {
    detail::throw_openssl(ErrorKind::Internal, "OSSL_PARAM_BLD failed");
  }
  return from_params("EC", bld.get());
}

}  // namespace acme_sidecar::crypto
