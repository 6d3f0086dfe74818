#include "challenge/path.hpp"

namespace acme_sidecar::challenge {

bool is_valid_token(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenLength) return false;
  for (char c : token) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

ParsedPath parse_challenge_path(std::string_view path) {
  if (path.substr(0, kChallengePrefix.size()) != kChallengePrefix) return {PathKind::NotChallenge, {}};
  auto token = path.substr(kChallengePrefix.size());
  if (!is_valid_token(token)) return {PathKind::InvalidToken, {}};
  return {PathKind::Token, token};
}

std::string_view to_string(Result result) {
  switch (result) {
    case Result::Hit:
      return "hit";
    case Result::Miss:
      return "miss";
    case Result::Invalid:
      return "invalid";
  }
  return "invalid";
}

Classified classify_request(std::string_view method, std::string_view path, bool has_body) {
  if (method != "GET" && method != "HEAD") return {Action::MethodNotAllowed, {}};
  if (has_body) return {Action::BadRequest, {}};
  auto parsed = parse_challenge_path(path);
  if (parsed.kind != PathKind::Token) return {Action::NotFound, {}};
  return {Action::Lookup, parsed.token};
}

}  // namespace acme_sidecar::challenge
