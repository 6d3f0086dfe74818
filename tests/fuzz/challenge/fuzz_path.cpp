// libFuzzer target for the responder's pure request classification. Input: the first byte picks the
// method, the rest is the raw request path. Any broken invariant traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "challenge/path.hpp"

using namespace acme_sidecar::challenge;

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kMethods[] = {"GET", "HEAD", "POST", "get", "", "PUT"};
  std::string_view method = kMethods[data[0] % std::size(kMethods)];
  const std::string path(reinterpret_cast<const char*>(data + 1), size - 1);

  auto parsed = parse_challenge_path(path);
  if (parsed.kind == PathKind::Token) {
    require(is_valid_token(parsed.token));
    require(path == std::string(kChallengePrefix) + std::string(parsed.token));
    // A token can never smuggle traversal, escapes, separators or control bytes.
    for (char c : parsed.token) require(c != '.' && c != '/' && c != '%' && c != '\\' && c > ' ');
  } else {
    require(parsed.token.empty());
  }
  if (parsed.kind == PathKind::NotChallenge) require(path.rfind(kChallengePrefix, 0) != 0);

  for (bool body : {false, true}) {
    auto c = classify_request(method, path, body);
    bool allowed = method == "GET" || method == "HEAD";
    if (!allowed) require(c.action == Action::MethodNotAllowed);
    else if (body) require(c.action == Action::BadRequest);
    else if (parsed.kind == PathKind::Token) require(c.action == Action::Lookup && c.token == parsed.token);
    else require(c.action == Action::NotFound);
  }
  return 0;
}
