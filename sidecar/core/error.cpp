#include "core/error.hpp"

namespace acme_sidecar::core {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Internal: return "internal";
    case ErrorKind::Config: return "config";
    case ErrorKind::Invalid: return "invalid";
    case ErrorKind::Parse: return "parse";
    case ErrorKind::Crypto: return "crypto";
    case ErrorKind::NotFound: return "not_found";
    case ErrorKind::AlreadyExists: return "already_exists";
    case ErrorKind::Conflict: return "conflict";
    case ErrorKind::Forbidden: return "forbidden";
    case ErrorKind::Unauthorized: return "unauthorized";
    case ErrorKind::Gone: return "gone";
    case ErrorKind::TooManyRequests: return "too_many_requests";
    case ErrorKind::ServerError: return "server_error";
    case ErrorKind::Timeout: return "timeout";
    case ErrorKind::Transport: return "transport";
    case ErrorKind::AcmeProblem: return "acme_problem";
    case ErrorKind::RateLimited: return "rate_limited";
    case ErrorKind::Cancelled: return "cancelled";
  }
  return "unknown";
}

bool is_transient(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Conflict:
    case ErrorKind::Gone:
    case ErrorKind::TooManyRequests:
    case ErrorKind::ServerError:
    case ErrorKind::Timeout:
    case ErrorKind::Transport:
    case ErrorKind::RateLimited:
      return true;
    default:
      return false;
  }
}

Error::Error(ErrorKind kind, std::string message, Context context)
    : std::runtime_error(render(kind, message, context)),
      kind_(kind),
      message_(std::move(message)),
      context_(std::move(context)) {}

Error Error::with(std::string key, std::string value) const {
  Context ctx = context_;
  ctx.emplace_back(std::move(key), std::move(value));
  Error copy(kind_, message_, std::move(ctx));
  copy.retry_after = retry_after;
  copy.acme_type = acme_type;
  copy.http_status = http_status;
  return copy;
}

std::string Error::render(ErrorKind kind, const std::string& message, const Context& context) {
  std::string out(to_string(kind));
  out += ": ";
  out += message;
  for (const auto& [k, v] : context) {
    out += ' ';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

}  // namespace acme_sidecar::core
