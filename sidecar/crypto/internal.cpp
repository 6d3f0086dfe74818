#include "crypto/internal.hpp"

#include <climits>

#include <openssl/bio.h>
#include <openssl/err.h>

namespace acme_sidecar::crypto::detail {

using core::Error;
using core::ErrorKind;

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    const char* lib = ERR_lib_error_string(code);
    const char* reason = ERR_reason_error_string(code);
    if (!out.empty()) out += "; ";
    out += lib != nullptr ? lib : "openssl";
    out += ':';
    out += reason != nullptr ? reason : std::to_string(ERR_GET_REASON(code));
  }
  return out;
}

void throw_openssl(ErrorKind kind, std::string what) {
  const std::string reasons = drain_openssl_errors();
  if (!reasons.empty()) throw Error(kind, std::move(what), {{"openssl", reasons}});
  throw Error(kind, std::move(what));
}

void clear_openssl_errors() noexcept { ERR_clear_error(); }

BioPtr mem_bio(std::string_view data) {
  if (data.size() > static_cast<std::size_t>(INT_MAX)) throw Error(ErrorKind::Invalid, "input too large");
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) throw_openssl(ErrorKind::Internal, "BIO_new_mem_buf failed");
  return bio;
}

BioPtr new_mem_bio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) throw_openssl(ErrorKind::Internal, "BIO_new failed");
  return bio;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return {data, static_cast<std::size_t>(len)};
}

namespace {

constexpr std::string_view kBegin = "-----BEGIN ";
constexpr std::string_view kEnd = "-----END ";
constexpr std::string_view kDashes = "-----";

// Parses "-----BEGIN LABEL-----" at `pos`; returns the label and moves pos past the line's dashes.
bool read_marker(std::string_view text, std::size_t& pos, std::string_view prefix, std::string& label) {
  if (text.compare(pos, prefix.size(), prefix) != 0) return false;
  const std::size_t start = pos + prefix.size();
  const std::size_t close = text.find(kDashes, start);
  const std::size_t eol = text.find('\n', start);
  if (close == std::string_view::npos || (eol != std::string_view::npos && eol < close)) return false;
  const std::string_view candidate = text.substr(start, close - start);
  // RFC 7468 labels: short, printable, no hyphen. Anything else is garbage (and never echoed back).
  if (candidate.empty() || candidate.size() > 64) return false;
  for (char c : candidate) {
    if (c < 0x20 || c > 0x7e || c == '-') return false;
  }
  label.assign(candidate);
  pos = close + kDashes.size();
  return true;
}

}  // namespace

std::vector<PemBlock> parse_pem_blocks(std::string_view text) {
  std::vector<PemBlock> blocks;
  std::size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    const std::size_t index = blocks.size();
    std::string label;
    if (!read_marker(text, pos, kBegin, label)) {
      throw Error(ErrorKind::Parse, "malformed PEM BEGIN line", {{"block", std::to_string(index)}});
    }
    const std::size_t end = text.find(kEnd, pos);
    if (end == std::string_view::npos) {
      throw Error(ErrorKind::Parse, "truncated PEM: no END line", {{"block", std::to_string(index)}, {"label", label}});
    }
    const std::string_view body = text.substr(pos, end - pos);
    if (body.find(kBegin) != std::string_view::npos) {
      throw Error(ErrorKind::Parse, "truncated PEM: BEGIN inside a block",
                  {{"block", std::to_string(index)}, {"label", label}});
    }
    std::size_t after = end;
    std::string end_label;
    if (!read_marker(text, after, kEnd, end_label) || end_label != label) {
      throw Error(ErrorKind::Parse, "PEM END line does not match its BEGIN line",
                  {{"block", std::to_string(index)}, {"label", label}});
    }
    if (body.find(':') != std::string_view::npos) {
      throw Error(ErrorKind::Parse, "PEM headers (encrypted or legacy PEM) are not supported",
                  {{"block", std::to_string(index)}, {"label", label}});
    }
    PemBlock block;
    block.label = std::move(label);
    try {
      block.der = base64_decode(body);
    } catch (const Error& e) {
      throw Error(ErrorKind::Parse, "PEM body is not valid base64: " + e.message(),
                  {{"block", std::to_string(index)}, {"label", block.label}});
    }
    if (block.der.empty()) {
      throw Error(ErrorKind::Parse, "empty PEM block", {{"block", std::to_string(index)}, {"label", block.label}});
    }
    blocks.push_back(std::move(block));
    pos = after;
  }
  return blocks;
}

std::vector<std::string> pem_labels(std::string_view text) {
  std::vector<std::string> labels;
  std::size_t pos = 0;
  while ((pos = text.find(kBegin, pos)) != std::string_view::npos) {
    std::string label;
    std::size_t p = pos;
    if (read_marker(text, p, kBegin, label)) labels.push_back(std::move(label));
    pos += kBegin.size();
  }
  return labels;
}

std::string to_pem(std::string_view label, ByteView der) {
  const std::string b64 = base64_encode(der);
  std::string out;
  out.reserve(b64.size() + b64.size() / 64 + 2 * label.size() + 40);
  out += "-----BEGIN ";
  out += label;
  out += "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) {
    out += b64.substr(i, 64);
    out += '\n';
  }
  out += "-----END ";
  out += label;
  out += "-----\n";
  return out;
}

}  // namespace acme_sidecar::crypto::detail
