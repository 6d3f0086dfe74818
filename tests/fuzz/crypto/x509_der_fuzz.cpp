// libFuzzer target, differential: crypto::read_certificate_der either rejects the input with a Parse
// error or says exactly what OpenSSL's Certificate says about it — never a crash, an out-of-bounds read
// (ASan), another exception type, or a certificate OpenSSL refuses.
#include <cstddef>
#include <cstdint>

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
  } catch (const Error&) {
    __builtin_trap();  // accepted what OpenSSL refuses
  }
  return 0;
}
