#pragma once
// Private helpers of the crypto module (not part of its API; do not include from other modules).
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "crypto/encoding.hpp"
#include "crypto/ossl_ptr.hpp"

namespace acme_sidecar::crypto::detail {

// Drains OpenSSL's thread-local error queue into "lib:reason; lib:reason" (never contains input data).
std::string drain_openssl_errors();
// Throws core::Error(kind, what + OpenSSL's reasons) after draining the queue.
[[noreturn]] void throw_openssl(core::ErrorKind kind, std::string what);
// Clears the queue (after an expected failure, so stale errors do not leak into later messages).
void clear_openssl_errors() noexcept;

// Read-only memory BIO over `data` (no copy; `data` must outlive the BIO).
BioPtr mem_bio(std::string_view data);
// A fresh writable memory BIO, and its contents.
BioPtr new_mem_bio();
std::string bio_contents(BIO* bio);

struct PemBlock {
  std::string label;  // e.g. "CERTIFICATE", "PRIVATE KEY"
  Bytes der;
};
// Every "-----BEGIN X-----" … "-----END X-----" block, in order. Missing END, mismatched labels,
// bad base64 or an empty body → Parse error naming the block index and label. Text outside blocks
// is ignored.
std::vector<PemBlock> parse_pem_blocks(std::string_view text);
// Just the labels of BEGIN lines (tolerant; used to explain errors).
std::vector<std::string> pem_labels(std::string_view text);
// Base64 body in 64-column lines between BEGIN/END lines.
std::string to_pem(std::string_view label, ByteView der);

}  // namespace acme_sidecar::crypto::detail
