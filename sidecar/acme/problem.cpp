#include "acme/problem.hpp"

#include <string>

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;

core::Error problem_error(const Problem& problem, long http_status, std::optional<std::chrono::seconds> retry_after,
                          std::string_view context) {
  std::string type = problem.short_type();
  ErrorKind kind = type == "rateLimited" ? ErrorKind::RateLimited : ErrorKind::AcmeProblem;
  std::string msg = std::string(context) + ": " + type + ": " + problem.describe();
  Error e(kind, msg, {{"acme_type", type}, {"http_status", std::to_string(http_status)}});
  e.acme_type = type;
  e.http_status = static_cast<int>(http_status);
  e.retry_after = retry_after;
  return e;
}

core::Error response_error(long http_status, std::string_view content_type, std::string_view body,
                           std::optional<std::chrono::seconds> retry_after, std::string_view context) {
  // Pebble and Boulder send application/problem+json; some CAs send plain JSON. Try both.
  bool maybe_json = content_type.find("json") != std::string_view::npos || (!body.empty() && body.front() == '{');
  if (maybe_json) {
    try {
      Problem p = parse_problem(body);
      if (!p.type.empty() && p.type != "about:blank") return problem_error(p, http_status, retry_after, context);
    } catch (const Error&) {
      // Fall through to the generic error: a garbled problem document is still an HTTP error.
    }
  }
  ErrorKind kind = ErrorKind::Invalid;
  if (http_status == 429) kind = ErrorKind::RateLimited;
  else if (http_status >= 500) kind = ErrorKind::ServerError;
  else if (http_status == 404) kind = ErrorKind::NotFound;
  else if (http_status == 401) kind = ErrorKind::Unauthorized;
  else if (http_status == 403) kind = ErrorKind::Forbidden;
  std::string snippet(body.substr(0, 200));
  for (char& c : snippet)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  Error e(kind, std::string(context) + ": HTTP " + std::to_string(http_status) +
                    (snippet.empty() ? std::string() : ": " + snippet),
          {{"http_status", std::to_string(http_status)}});
  e.http_status = static_cast<int>(http_status);
  e.retry_after = retry_after;
  return e;
}

}  // namespace acme_sidecar::acme
