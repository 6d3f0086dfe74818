// libFuzzer target: PEM/DER parsing and X.509 inspection must turn any input into either a value or
// a core::Error — never a crash, hang, leak or another exception type.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.hpp"
#include "crypto/csr.hpp"
#include "crypto/encoding.hpp"
#include "crypto/jwk.hpp"
#include "crypto/sign.hpp"
#include "crypto/key.hpp"
#include "crypto/x509.hpp"

namespace {

using namespace acme_sidecar::crypto;
using acme_sidecar::core::Error;

template <typename F>
void guarded(F&& f) {
  try {
    f();
  } catch (const Error&) {
    // Expected for hostile input. Any other exception escapes and fails the run.
  }
}

void inspect(const Certificate& c) {
  guarded([&] {
    (void)c.not_before();
    (void)c.not_after();
  });
  (void)c.dns_names();
  (void)c.ip_addresses();
  guarded([&] { (void)c.serial_hex(); });
  guarded([&] { (void)c.serial_bytes(); });
  (void)c.issuer_cn();
  (void)c.subject_cn();
  (void)c.authority_key_id();
  (void)c.subject_key_id();
  (void)c.is_ca();
  (void)c.sha256_fingerprint_hex();
  guarded([&] { (void)c.public_key(); });
  guarded([&] { (void)ari_cert_id(c); });
  const Certificate again = Certificate::from_der(c.to_der());
  if (!(again == c)) __builtin_trap();  // re-encoding must be stable
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView bytes(data, size);
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  guarded([&] {
    for (const auto& c : parse_pem_chain(text)) inspect(c);
  });
  guarded([&] { inspect(Certificate::from_der(bytes)); });
  guarded([&] {
    const PrivateKey key = PrivateKey::from_pem(text);
    (void)key.public_key_pem();
  });
  guarded([&] { (void)PublicKey::from_pem(text); });
  guarded([&] { (void)PublicKey::from_der(bytes); });
  guarded([&] { (void)parse_csr(bytes); });
  guarded([&] { (void)parse_csr_pem(text); });
  guarded([&] {
    const Bytes decoded = base64url_decode(text);
    if (base64url_encode(decoded) != text) __builtin_trap();  // decoder accepts canonical input only
  });
  guarded([&] { (void)base64_decode(text); });
  guarded([&] { (void)hex_decode(text); });

  // JWS signature handling: fixed-width raw R||S and DER must round-trip; verify never throws on junk.
  guarded([&] {
    const Bytes raw = ecdsa_der_to_raw(bytes, 32);
    if (raw.size() != 64) __builtin_trap();
  });
  guarded([&] { (void)ecdsa_raw_to_der(bytes); });
  {
    static const PrivateKey p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    static const PublicKey p256_pub = p256.public_key();
    if (verify(p256_pub, std::string_view("fixed input"), bytes)) __builtin_trap();  // forging is not expected
  }
  // JWK members: "crv x y" or "n e" separated by spaces.
  const std::size_t sp1 = text.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : text.find(' ', sp1 + 1);
  if (sp2 != std::string_view::npos) {
    guarded([&] {
      (void)jwk_json(ec_public_key_from_jwk(text.substr(0, sp1), text.substr(sp1 + 1, sp2 - sp1 - 1),
                                            text.substr(sp2 + 1)));
    });
  }
  if (sp1 != std::string_view::npos) {
    guarded([&] { (void)jwk_json(rsa_public_key_from_jwk(text.substr(0, sp1), text.substr(sp1 + 1))); });
  }
  return 0;
}
