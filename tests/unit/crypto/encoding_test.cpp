#include "crypto/encoding.hpp"

#include <catch2/catch.hpp>

#include "core/error.hpp"

using namespace acme_sidecar::crypto;
using acme_sidecar::core::Error;
using acme_sidecar::core::ErrorKind;

namespace {

ErrorKind kind_of(auto&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  return ErrorKind::Internal;
}

}  // namespace

TEST_CASE("base64 and base64url: RFC 4648 §10 test vectors", "[crypto][encoding]") {
  struct Row {
    const char* in;
    const char* b64;
    const char* b64url;
  };
  auto row = GENERATE(values<Row>({
      {"", "", ""},
      {"f", "Zg==", "Zg"},
      {"fo", "Zm8=", "Zm8"},
      {"foo", "Zm9v", "Zm9v"},
      {"foob", "Zm9vYg==", "Zm9vYg"},
      {"fooba", "Zm9vYmE=", "Zm9vYmE"},
      {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
  }));
  CAPTURE(row.in);
  CHECK(base64_encode(std::string_view(row.in)) == row.b64);
  CHECK(base64url_encode(std::string_view(row.in)) == row.b64url);
  CHECK(to_string(base64_decode(row.b64)) == row.in);
  CHECK(to_string(base64url_decode(row.b64url)) == row.in);
}

TEST_CASE("base64url uses the URL-safe alphabet and never pads", "[crypto][encoding]") {
  const Bytes bytes{0xfb, 0xff, 0xbf};
  CHECK(base64_encode(bytes) == "+/+/");
  CHECK(base64url_encode(bytes) == "-_-_");
  CHECK(base64url_encode(Bytes{0xfb, 0xff}) == "-_8");
  CHECK(base64url_decode("-_8") == Bytes{0xfb, 0xff});
  // Every byte value survives a round trip.
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  CHECK(base64url_decode(base64url_encode(all)) == all);
  CHECK(base64_decode(base64_encode(all)) == all);
}

TEST_CASE("base64url rejects padding, foreign characters and non-canonical input", "[crypto][encoding]") {
  for (const char* bad : {"Zg==", "Zm8=", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zm9vY", "Zh", "Zm9", "\xff\xfe"}) {
    CAPTURE(bad);
    CHECK(kind_of([&] { base64url_decode(bad); }) == ErrorKind::Parse);
  }
}

TEST_CASE("standard base64 skips whitespace and checks padding", "[crypto][encoding]") {
  CHECK(to_string(base64_decode("Zm9v\nYmFy\r\n")) == "foobar");
  CHECK(to_string(base64_decode(" Zg = = ")) == "f");
  for (const char* bad : {"Zg", "Zg=", "Zg===", "Zm9v=", "Zg==Zg==", "Zm-_", "Zh=="}) {
    CAPTURE(bad);
    CHECK(kind_of([&] { base64_decode(bad); }) == ErrorKind::Parse);
  }
}

TEST_CASE("hex encodes lower case and decodes either case", "[crypto][encoding]") {
  CHECK(hex_encode(Bytes{0x00, 0x01, 0xab, 0xff}) == "0001abff");
  CHECK(hex_decode("0001ABff") == Bytes{0x00, 0x01, 0xab, 0xff});
  CHECK(hex_decode("").empty());
  CHECK(kind_of([] { hex_decode("abc"); }) == ErrorKind::Parse);
  CHECK(kind_of([] { hex_decode("zz"); }) == ErrorKind::Parse);
}
