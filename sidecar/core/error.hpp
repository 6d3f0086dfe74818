#pragma once
// One error type for the whole sidecar: a kind that decides what the caller does (retry, give up,
// re-read, back off) plus human context. Adapters throw it; the reconciler catches it in one place.
// C++20 has no std::expected, and exceptions keep the adapter code linear; see docs/design-notes.md.
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace acme_sidecar::core {

enum class ErrorKind {
  Internal,         // a bug or broken invariant
  Config,           // bad user configuration: terminal for that object, no retry loop
  Invalid,          // bad input data (malformed object, 400/422)
  Parse,            // garbage that could not be decoded
  Crypto,           // key/certificate material that does not verify or parse
  NotFound,         // 404
  AlreadyExists,    // 409 AlreadyExists
  Conflict,         // 409 Conflict: re-read and retry
  Forbidden,        // 403
  Unauthorized,     // 401
  Gone,             // 410 Expired / Gone: relist
  TooManyRequests,  // 429 (retry_after set when the server said so)
  ServerError,      // 5xx
  Timeout,          // deadline exceeded
  Transport,        // connection refused, TLS failure, reset
  AcmeProblem,      // RFC 8555 problem document (acme_type set)
  RateLimited,      // ACME rateLimited problem (retry_after set when given)
  Cancelled,        // shutdown requested
};

std::string_view to_string(ErrorKind kind);

// True for kinds that are worth retrying with backoff without user intervention.
bool is_transient(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  using Context = std::vector<std::pair<std::string, std::string>>;

  Error(ErrorKind kind, std::string message, Context context = {});

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& message() const noexcept { return message_; }
  const Context& context() const noexcept { return context_; }

  // Server-suggested wait (HTTP Retry-After), when known.
  std::optional<std::chrono::seconds> retry_after;
  // ACME problem type without the "urn:ietf:params:acme:error:" prefix, e.g. "badNonce".
  std::string acme_type;
  // HTTP status that produced the error, 0 when not from HTTP.
  int http_status = 0;

  // Returns a copy with one more context pair (for adding context while re-throwing).
  Error with(std::string key, std::string value) const;

 private:
  static std::string render(ErrorKind kind, const std::string& message, const Context& context);
  ErrorKind kind_;
  std::string message_;
  Context context_;
};

}  // namespace acme_sidecar::core
