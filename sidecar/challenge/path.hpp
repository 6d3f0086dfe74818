#pragma once
// Pure request classification for the HTTP-01 responder (no I/O; fuzzed in tests/fuzz/challenge).
#include <cstddef>
#include <string_view>

namespace acme_sidecar::challenge {

inline constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";
inline constexpr std::size_t kMaxTokenLength = 256;

// [A-Za-z0-9_-]{1,256}: the base64url alphabet RFC 8555 tokens use.
bool is_valid_token(std::string_view token);

enum class PathKind {
  Token,         // /.well-known/acme-challenge/<valid token>
  InvalidToken,  // the prefix, then something that is not a valid token (traversal, %-escapes, '/', ...)
  NotChallenge,  // any other path
};

struct ParsedPath {
  PathKind kind = PathKind::NotChallenge;
  std::string_view token;  // set for Token only; points into the input
};

// `path` is the raw request path (no percent-decoding, no query string). Matching is exact: no
// normalisation, so "/.well-known/acme-challenge/../x" or "%2F" can never reach a token lookup.
ParsedPath parse_challenge_path(std::string_view path);

enum class Result { Hit, Miss, Invalid };
std::string_view to_string(Result result);

enum class Action {
  Lookup,            // answer from the store (200 or 404)
  NotFound,          // 404, Result::Invalid
  MethodNotAllowed,  // 405, Result::Invalid
  BadRequest,        // 400, Result::Invalid
};

struct Classified {
  Action action = Action::BadRequest;
  std::string_view token;  // set for Lookup
};

// Decides what to do with a request: only GET and HEAD without a body reach the store.
Classified classify_request(std::string_view method, std::string_view path, bool has_body);

}  // namespace acme_sidecar::challenge
