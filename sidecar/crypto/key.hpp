#pragma once
// Private and public keys (EC P-256/P-384, RSA 2048/3072/4096) over OpenSSL 3 EVP.
// A PrivateKey is never printable: operator<< is deleted and no error message ever contains key
// material. Copies share the same immutable EVP_PKEY (cheap, thread-safe for signing).
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include "crypto/encoding.hpp"
#include "crypto/ossl_ptr.hpp"

namespace acme_sidecar::crypto {

enum class KeyAlgorithm { EcdsaP256, EcdsaP384, Rsa2048, Rsa3072, Rsa4096 };

// Flag / annotation spelling: "ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096".
std::string_view to_string(KeyAlgorithm alg) noexcept;
// Exact, case-sensitive match of the strings above; anything else → core::Error(Config) naming the
// accepted values.
KeyAlgorithm parse_key_algorithm(std::string_view text);

class PublicKey {
 public:
  // "-----BEGIN PUBLIC KEY-----" (SubjectPublicKeyInfo). Crypto/Parse error on garbage or on an
  // unsupported key type (only the five KeyAlgorithm shapes are accepted).
  static PublicKey from_pem(std::string_view pem);
  // DER SubjectPublicKeyInfo.
  static PublicKey from_der(ByteView der);
  // Takes a reference to an existing EVP_PKEY (only its public half is used). Throws Crypto when the
  // key type is unsupported.
  static PublicKey from_native(EVP_PKEY* key);

  std::string to_pem() const;
  Bytes to_der() const;  // SubjectPublicKeyInfo
  KeyAlgorithm algorithm() const noexcept { return alg_; }
  EVP_PKEY* native() const noexcept { return key_.get(); }

  // Same public key (EVP_PKEY_eq on the public components).
  friend bool operator==(const PublicKey& a, const PublicKey& b);

 private:
  PublicKey(std::shared_ptr<EVP_PKEY> key, KeyAlgorithm alg) : key_(std::move(key)), alg_(alg) {}
  std::shared_ptr<EVP_PKEY> key_;
  KeyAlgorithm alg_;
};

// Signing contexts already initialised for one key, reused across crypto::sign() calls: initialising a
// context (provider, key management and signature fetches) cost as much as a third of each JWS
// signature in the daemon. One context serves one thread at a time; the pool hands them out.
class SignContextPool {
 public:
  EvpPkeyCtxPtr take();  // nullptr when none is idle
  void give(EvpPkeyCtxPtr ctx);

 private:
  std::mutex mu_;
  std::vector<EvpPkeyCtxPtr> idle_;
};

class PrivateKey {
 public:
  // Fresh key from the OpenSSL DRBG.
  static PrivateKey generate(KeyAlgorithm alg);
  // PKCS#8 (PEM label "PRIVATE KEY") or traditional (labels "EC PRIVATE KEY" / "RSA PRIVATE KEY").
  // Encrypted keys, public keys, certificates, garbage, unsupported curves/sizes (e.g. RSA-1024,
  // P-521, Ed25519) → core::Error(Crypto or Parse); the message never echoes the input.
  static PrivateKey from_pem(std::string_view pem);
  // Takes a reference to an existing EVP_PKEY holding a private key; Crypto error when unsupported.
  static PrivateKey from_native(EVP_PKEY* key);

  // Unencrypted PKCS#8 PEM (label "PRIVATE KEY"), the form written to Secrets' tls.key.
  std::string to_pkcs8_pem() const;
  // The same through OpenSSL's encoder (to_pkcs8_pem writes P-256/P-384 keys itself; tests compare).
  std::string to_pkcs8_pem_openssl() const;
  // SubjectPublicKeyInfo PEM of the public half.
  std::string public_key_pem() const;
  PublicKey public_key() const;
  KeyAlgorithm algorithm() const noexcept { return alg_; }
  EVP_PKEY* native() const noexcept { return key_.get(); }
  // Shared by copies, like the key itself (see crypto::sign).
  SignContextPool& sign_contexts() const noexcept { return *sign_contexts_; }

  // Keys must never end up in logs or test output.
  friend std::ostream& operator<<(std::ostream&, const PrivateKey&) = delete;

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, KeyAlgorithm alg)
      : key_(std::move(key)), alg_(alg), sign_contexts_(std::make_shared<SignContextPool>()) {}
  std::shared_ptr<EVP_PKEY> key_;
  KeyAlgorithm alg_;
  std::shared_ptr<SignContextPool> sign_contexts_;
};

// Consistency check of EC private keys without building an EVP_PKEY (for the certificate inspector:
// PrivateKey::from_pem spends most of its time creating the curve group and in OpenSSL's pairwise
// check). Holds the P-256/P-384 groups, created once; safe to use from several threads.
class EcKeyVerifier {
 public:
  EcKeyVerifier();
  struct PublicPoint {
    KeyAlgorithm algorithm;
    Bytes point;  // uncompressed 04||X||Y
  };
  // For an unencrypted P-256/P-384 key in PKCS#8 or SEC1 PEM (the first private key block, as
  // PrivateKey::from_pem reads it) whose scalar d is in [1, n) and whose embedded point Q is on the
  // curve and equals d·G: its public point. nullopt for anything else (RSA, other curves, encrypted,
  // malformed, inconsistent): the caller then takes PrivateKey::from_pem, which explains the problem.
  std::optional<PublicPoint> public_point(std::string_view pem) const;

 private:
  std::shared_ptr<const EC_GROUP> p256_, p384_;
};

}  // namespace acme_sidecar::crypto
