#include "kube/status.hpp"

#include <charconv>
#include "core/json_document.hpp"

namespace acme_sidecar::kube {
namespace {

using core::ErrorKind;

ErrorKind kind_for(long code, const std::string& reason) {
  if (reason == "AlreadyExists") return ErrorKind::AlreadyExists;
  if (reason == "Expired" || reason == "Gone") return ErrorKind::Gone;
  if (reason == "Timeout") return ErrorKind::Timeout;
  switch (code) {
    case 400:
    case 422: return ErrorKind::Invalid;
    case 401: return ErrorKind::Unauthorized;
    case 403: return ErrorKind::Forbidden;
    case 404: return ErrorKind::NotFound;
    case 409: return ErrorKind::Conflict;
    case 410: return ErrorKind::Gone;
    case 429: return ErrorKind::TooManyRequests;
    case 504: return ErrorKind::Timeout;
    default: break;
  }
  if (code >= 500) return ErrorKind::ServerError;
  if (code >= 400) return ErrorKind::Invalid;
  return ErrorKind::Internal;
}

std::optional<long> parse_seconds(std::string_view s) {
  long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

using core::Error;
core::Error decode(std::string_view body, long http_code, const std::optional<std::string>& retry_after_header) {
  std::string message;
  std::string reason;
  long code = http_code;
  std::optional<long> retry_after;
  Error::Context ctx;
  auto doc = core::JsonDocument::parse(body);
  const auto j = doc.root();
  if (doc.ok() && j.is_object() && j.find("kind") && j.find("kind")->equals("Status")) {
    if (auto v = j.find("message"); v && v->is_string()) message = v->str();
    if (auto v = j.find("reason"); v && v->is_string()) reason = v->str();
    if (auto v = j.find("code"); code == 0 && v && v->integer()) code = static_cast<long>(*v->integer());
    if (auto d = j.find("details"); d && d->is_object()) {
      if (auto v = d->find("retryAfterSeconds"); v && v->integer()) retry_after = static_cast<long>(*v->integer());
      if (auto v = d->find("name"); v && v->is_string()) ctx.emplace_back("name", v->str());
      if (auto v = d->find("kind"); v && v->is_string()) ctx.emplace_back("kind", v->str());
    }
  } else {
    // Not a Status (a proxy page, garbage): keep a bounded, printable excerpt.
    std::string excerpt(body.substr(0, 200));
    for (char& c : excerpt) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    message = excerpt.empty() ? "HTTP " + std::to_string(code) : excerpt;
  }
  if (retry_after_header) {
    if (auto v = parse_seconds(*retry_after_header)) retry_after = v;
  }
  ctx.emplace_back("code", std::to_string(code));
  if (!reason.empty()) ctx.emplace_back("reason", reason);
  core::Error e(kind_for(code, reason), message.empty() ? "Kubernetes API error" : message, std::move(ctx));
  e.http_status = static_cast<int>(code);
  if (retry_after) e.retry_after = std::chrono::seconds(*retry_after);
  return e;
}

}  // namespace

using core::Error;

core::Error status_error(const http::Response& response) {
  try {
    return decode(response.body, response.status, response.header("Retry-After"));
  } catch (...) {
    return core::Error(ErrorKind::Internal, "could not decode API error");
  }
}

core::Error status_error_from_body(std::string_view status_json, long fallback_code) {
  try {
    auto e = decode(status_json, 0, std::nullopt);
    if (e.http_status == 0 && fallback_code != 0) return decode(status_json, fallback_code, std::nullopt);
    return e;
  } catch (...) {
    return core::Error(ErrorKind::Internal, "could not decode API error");
  }
}

}  // namespace acme_sidecar::kube
