#pragma once
// Private and public keys (EC P-256/P-384, RSA 2048/3072/4096) over OpenSSL 3 EVP.
// A PrivateKey is never printable: operator<< is deleted and no error message ever contains key
// material. Copies share the same immutable EVP_PKEY (cheap, thread-safe for signing).
#include <iosfwd>
#include <memory>
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
  // SubjectPublicKeyInfo PEM of the public half.
  std::string public_key_pem() const;
  PublicKey public_key() const;
  KeyAlgorithm algorithm() const noexcept { return alg_; }
  EVP_PKEY* native() const noexcept { return key_.get(); }

  // Keys must never end up in logs or test output.
  friend std::ostream& operator<<(std::ostream&, const PrivateKey&) = delete;

 private:
  PrivateKey(std::shared_ptr<EVP_PKEY> key, KeyAlgorithm alg) : key_(std::move(key)), alg_(alg) {}
  std::shared_ptr<EVP_PKEY> key_;
  KeyAlgorithm alg_;
};

}  // namespace acme_sidecar::crypto
