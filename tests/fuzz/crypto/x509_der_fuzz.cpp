// libFuzzer target, differential: crypto::read_certificate_der either rejects the input with a Parse
// error or says exactly what OpenSSL's Certificate says about it — never a crash, an out-of-bounds read
// (ASan), another exception type, or a certificate OpenSSL refuses. signature_verifies (with the
// certificate's own key) and same_name must not contradict X509_verify and X509_NAME_cmp either.
#include <cstddef>
#include <cstdint>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/error.hpp"
#include "crypto/x509.hpp"
#include "crypto/x509_der.hpp"

namespace {

using namespace acme_sidecar::crypto;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView der(data, size);
  CertificateSummary s;
  try {
    s = read_certificate_der(der);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Parse) __builtin_trap();
    return 0;
  }
  try {
    const Certificate c = Certificate::from_der(der);
    if (s.dns_names != c.dns_names() || s.ip_addresses != c.ip_addresses() || s.not_before != c.not_before() ||
        s.not_after != c.not_after() || s.subject_cn != c.subject_cn() || s.issuer_cn != c.issuer_cn() ||
        s.serial != c.serial_bytes() || s.authority_key_id != c.authority_key_id()) {
      __builtin_trap();  // accepted, but says something else than OpenSSL
    }
    // The signature checked with the certificate's own key (a self-signed root's link; for others a
    // refusal): signature_verifies must say what X509_verify says whenever it says anything.
    if (const auto verdict = signature_verifies(s, s)) {
      EVP_PKEY* key = X509_get0_pubkey(c.native());
      const bool ref = key != nullptr && X509_verify(c.native(), key) == 1;
      ERR_clear_error();
      if (*verdict != ref) __builtin_trap();
    }
    if (same_name(s.issuer_name, s.subject_name) && !self_issued(c)) {
      __builtin_trap();  // equal raw names must be equal to OpenSSL
    }
  } catch (const Error&) {
    __builtin_trap();  // accepted what OpenSSL refuses
  }
  return 0;
}
