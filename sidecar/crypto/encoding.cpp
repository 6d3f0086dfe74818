#include "crypto/encoding.hpp"

#include <array>

#include "core/error.hpp"

namespace acme_sidecar::crypto {
namespace {

using core::Error;
using core::ErrorKind;

constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(ByteView data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) | data[i + 2];
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    if (pad) out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out += alphabet[(v >> 18) & 63];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    if (pad) out += '=';
  }
  return out;
}

std::array<int, 256> reverse(const char* alphabet) {
  std::array<int, 256> r{};
  r.fill(-1);
  for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(alphabet[i])] = i;
  return r;
}

// Decodes unpadded symbols (already stripped of padding/whitespace); rejects non-canonical tails.
Bytes decode_symbols(std::string_view sym, const std::array<int, 256>& rev, std::string_view what) {
  if (sym.size() % 4 == 1) throw Error(ErrorKind::Parse, std::string(what) + ": impossible length");
  Bytes out;
  out.reserve(sym.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < sym.size(); ++i) {
    const int v = rev[static_cast<unsigned char>(sym[i])];
    if (v < 0) {
      throw Error(ErrorKind::Parse, std::string(what) + ": invalid character",
                  {{"offset", std::to_string(i)}});
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    throw Error(ErrorKind::Parse, std::string(what) + ": non-zero trailing bits (non-canonical encoding)");
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

std::string base64url_encode(ByteView data) { return encode(data, kUrl, false); }

Bytes base64url_decode(std::string_view text) {
  static const auto rev = reverse(kUrl);
  return decode_symbols(text, rev, "base64url");
}

std::string base64_encode(ByteView data) { return encode(data, kStd, true); }

Bytes base64_decode(std::string_view text) {
  static const auto rev = reverse(kStd);
  std::string sym;
  sym.reserve(text.size());
  std::size_t padding = 0;
  for (char c : text) {
    if (is_space(c)) continue;
    if (c == '=') {
      ++padding;
      continue;
    }
    if (padding > 0) throw Error(ErrorKind::Parse, "base64: data after padding");
    sym += c;
  }
  if (padding > 2 || (sym.size() + padding) % 4 != 0) {
    throw Error(ErrorKind::Parse, "base64: bad length or padding");
  }
  if ((padding == 1 && sym.size() % 4 != 3) || (padding == 2 && sym.size() % 4 != 2)) {
    throw Error(ErrorKind::Parse, "base64: bad padding");
  }
  return decode_symbols(sym, rev, "base64");
}

std::string hex_encode(ByteView data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::uint8_t b : data) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Bytes hex_decode(std::string_view text) {
  if (text.size() % 2 != 0) throw Error(ErrorKind::Parse, "hex: odd length");
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Bytes out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = nibble(text[i]);
    const int lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) throw Error(ErrorKind::Parse, "hex: invalid character", {{"offset", std::to_string(i)}});
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

}  // namespace acme_sidecar::crypto
