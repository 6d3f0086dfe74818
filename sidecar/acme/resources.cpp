#include "acme/resources.hpp"

#include "core/error.hpp"
#include "core/json_document.hpp"

namespace acme_sidecar::acme {
namespace {

using core::Error;
using core::ErrorKind;
using core::JsonValue;

constexpr std::string_view kAcmeUrn = "urn:ietf:params:acme:error:";

// The document and its root; the text must outlive both (callers parse a response body they hold).
struct Parsed {
  core::JsonDocument doc;
  JsonValue root() const { return doc.root(); }
};

Parsed parse_object(std::string_view text, std::string_view what) {
  Parsed p{core::JsonDocument::parse(text)};
  if (!p.doc.ok()) throw Error(ErrorKind::Parse, std::string(what) + " is not valid JSON", {{"error", p.doc.error()}});
  if (!p.root().is_object()) throw Error(ErrorKind::Parse, std::string(what) + " is not a JSON object");
  return p;
}

// Optional string member: absent or null gives nullopt; any other non-string type is an error.
std::optional<std::string> opt_string(JsonValue j, const char* key, std::string_view what) {
  auto it = j.get(key);
  if (!it) return std::nullopt;
  if (!it->is_string()) throw Error(ErrorKind::Parse, std::string(what) + ": field '" + key + "' is not a string");
  return it->str();
}

std::string req_string(JsonValue j, const char* key, std::string_view what) {
  auto v = opt_string(j, key, what);
  if (!v) throw Error(ErrorKind::Parse, std::string(what) + ": field '" + key + "' is missing");
  return *v;
}

std::vector<std::string> string_array(JsonValue j, const char* key, std::string_view what) {
  std::vector<std::string> out;
  auto it = j.get(key);
  if (!it) return out;
  if (!it->is_array()) throw Error(ErrorKind::Parse, std::string(what) + ": field '" + key + "' is not an array");
  out.reserve(it->size());
  for (auto e : *it) {
    if (!e.is_string()) throw Error(ErrorKind::Parse, std::string(what) + ": '" + key + "' holds a non-string");
    out.push_back(e.str());
  }
  return out;
}

Status parse_status(JsonValue j, std::string_view what) {
  auto v = j.get("status");
  if (!v) throw Error(ErrorKind::Parse, std::string(what) + ": field 'status' is missing");
  if (!v->is_string()) throw Error(ErrorKind::Parse, std::string(what) + ": field 'status' is not a string");
  static constexpr Status kAll[] = {Status::Pending, Status::Ready,       Status::Processing, Status::Valid,
                                    Status::Invalid, Status::Deactivated, Status::Expired,    Status::Revoked};
  for (Status s : kAll)
    if (v->equals(to_string(s))) return s;
  throw Error(ErrorKind::Parse, std::string(what) + ": unknown status '" + v->str().substr(0, 64) + "'");
}

Identifier parse_identifier(JsonValue j, std::string_view what) {
  if (!j.is_object()) throw Error(ErrorKind::Parse, std::string(what) + ": identifier is not an object");
  return Identifier{req_string(j, "type", what), req_string(j, "value", what)};
}

Problem problem_from(JsonValue j) {
  Problem p;
  p.type = opt_string(j, "type", "problem").value_or("about:blank");
  p.detail = opt_string(j, "detail", "problem").value_or("");
  if (auto it = j.find("status")) {
    if (auto v = it->integer(); v && *v >= 0 && *v < 1000) p.status = static_cast<int>(*v);
  }
  if (auto it = j.find("subproblems"); it && it->is_array()) {
    for (auto s : *it) {
      if (!s.is_object()) continue;
      Subproblem sp;
      sp.type = opt_string(s, "type", "subproblem").value_or("");
      sp.detail = opt_string(s, "detail", "subproblem").value_or("");
      if (auto id = s.find("identifier"); id && id->is_object()) {
        sp.identifier = opt_string(*id, "value", "subproblem").value_or("");
      }
      p.subproblems.push_back(std::move(sp));
    }
  }
  return p;
}

std::optional<Problem> opt_problem(JsonValue j, const char* key) {
  auto it = j.get(key);
  if (!it) return std::nullopt;
  if (!it->is_object()) throw Error(ErrorKind::Parse, std::string("field '") + key + "' is not a problem object");
  return problem_from(*it);
}

Challenge challenge_from(JsonValue j) {
  if (!j.is_object()) throw Error(ErrorKind::Parse, "challenge is not an object");
  Challenge c;
  c.type = req_string(j, "type", "challenge");
  c.url = req_string(j, "url", "challenge");
  c.token = opt_string(j, "token", "challenge").value_or("");
  c.status = parse_status(j, "challenge");
  c.error = opt_problem(j, "error");
  return c;
}

int digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) throw Error(ErrorKind::Parse, "timestamp too short");
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') throw Error(ErrorKind::Parse, "timestamp has a non-digit where a digit belongs");
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::string_view to_string(Status s) {
  switch (s) {
    case Status::Pending: return "pending";
    case Status::Ready: return "ready";
    case Status::Processing: return "processing";
    case Status::Valid: return "valid";
    case Status::Invalid: return "invalid";
    case Status::Deactivated: return "deactivated";
    case Status::Expired: return "expired";
    case Status::Revoked: return "revoked";
  }
  return "unknown";
}

std::string Problem::short_type() const {
  if (type.compare(0, kAcmeUrn.size(), kAcmeUrn) == 0) return type.substr(kAcmeUrn.size());
  return type;
}

std::string Problem::describe() const {
  std::string out = detail.empty() ? short_type() : detail;
  if (!subproblems.empty()) {
    out += " [";
    for (std::size_t i = 0; i < subproblems.size(); ++i) {
      const auto& sp = subproblems[i];
      if (i) out += "; ";
      if (!sp.identifier.empty()) out += sp.identifier + ": ";
      std::string t = sp.type;
      if (t.compare(0, kAcmeUrn.size(), kAcmeUrn) == 0) t = t.substr(kAcmeUrn.size());
      out += t;
      if (!sp.detail.empty()) out += " " + sp.detail;
    }
    out += "]";
  }
  return out;
}

const Challenge* Authorization::find(std::string_view type) const {
  for (const auto& c : challenges)
    if (c.type == type) return &c;
  return nullptr;
}

Directory parse_directory(std::string_view text) {
  auto parsed = parse_object(text, "ACME directory");
  const JsonValue j = parsed.root();
  const char* what = "ACME directory";
  Directory d;
  d.new_nonce = req_string(j, "newNonce", what);
  d.new_account = req_string(j, "newAccount", what);
  d.new_order = req_string(j, "newOrder", what);
  d.new_authz = opt_string(j, "newAuthz", what).value_or("");
  d.revoke_cert = opt_string(j, "revokeCert", what).value_or("");
  d.key_change = opt_string(j, "keyChange", what).value_or("");
  d.renewal_info = opt_string(j, "renewalInfo", what).value_or("");
  if (auto it = j.get("meta")) {
    if (!it->is_object()) throw Error(ErrorKind::Parse, "ACME directory: 'meta' is not an object");
    const JsonValue m = *it;
    d.meta.terms_of_service = opt_string(m, "termsOfService", what);
    d.meta.website = opt_string(m, "website", what);
    d.meta.caa_identities = string_array(m, "caaIdentities", what);
    if (auto e = m.get("externalAccountRequired")) {
      if (!e->is_bool()) throw Error(ErrorKind::Parse, "ACME directory: externalAccountRequired is not a boolean");
      d.meta.external_account_required = e->boolean();
    }
    if (auto p = m.get("profiles")) {
      if (!p->is_object()) throw Error(ErrorKind::Parse, "ACME directory: 'profiles' is not an object");
      for (auto profile : *p) d.meta.profiles[profile.key()] = profile.str();  // "" for a non-string
    }
  }
  return d;
}

Order parse_order(std::string_view text) {
  auto parsed = parse_object(text, "ACME order");
  const JsonValue j = parsed.root();
  const char* what = "ACME order";
  Order o;
  o.status = parse_status(j, what);
  o.expires = opt_string(j, "expires", what);
  if (auto it = j.get("identifiers")) {
    if (!it->is_array()) throw Error(ErrorKind::Parse, "ACME order: 'identifiers' is not an array");
    for (auto e : *it) o.identifiers.push_back(parse_identifier(e, what));
  }
  o.authorizations = string_array(j, "authorizations", what);
  o.finalize = req_string(j, "finalize", what);
  o.certificate = opt_string(j, "certificate", what);
  o.error = opt_problem(j, "error");
  o.profile = opt_string(j, "profile", what);
  o.replaces = opt_string(j, "replaces", what);
  return o;
}

Authorization parse_authorization(std::string_view text) {
  auto parsed = parse_object(text, "ACME authorization");
  const JsonValue j = parsed.root();
  const char* what = "ACME authorization";
  Authorization a;
  auto id = j.find("identifier");
  if (!id) throw Error(ErrorKind::Parse, "ACME authorization: 'identifier' is missing");
  a.identifier = parse_identifier(*id, what);
  a.status = parse_status(j, what);
  if (auto w = j.find("wildcard"); w && w->is_bool()) a.wildcard = w->boolean();
  if (auto it = j.get("challenges")) {
    if (!it->is_array()) throw Error(ErrorKind::Parse, "ACME authorization: 'challenges' is not an array");
    for (auto c : *it) a.challenges.push_back(challenge_from(c));
  }
  return a;
}

Challenge parse_challenge(std::string_view text) { return challenge_from(parse_object(text, "ACME challenge").root()); }

Account parse_account(std::string_view text) {
  auto parsed = parse_object(text, "ACME account");
  const JsonValue j = parsed.root();
  Account a;
  if (j.find("status")) a.status = parse_status(j, "ACME account");
  a.contact = string_array(j, "contact", "ACME account");
  a.orders = opt_string(j, "orders", "ACME account");
  return a;
}

Problem parse_problem(std::string_view text) { return problem_from(parse_object(text, "problem document").root()); }

RenewalInfo parse_renewal_info(std::string_view text) {
  auto parsed = parse_object(text, "ACME renewal info");
  const JsonValue j = parsed.root();
  auto w = j.find("suggestedWindow");
  if (!w || !w->is_object()) throw Error(ErrorKind::Parse, "ACME renewal info: 'suggestedWindow' is missing");
  RenewalInfo r;
  r.window_start = parse_rfc3339(req_string(*w, "start", "ACME renewal info"));
  r.window_end = parse_rfc3339(req_string(*w, "end", "ACME renewal info"));
  if (r.window_end < r.window_start) throw Error(ErrorKind::Parse, "ACME renewal info: window ends before it starts");
  r.explanation_url = opt_string(j, "explanationURL", "ACME renewal info");
  return r;
}

core::TimePoint parse_rfc3339(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    throw Error(ErrorKind::Parse, "not an RFC 3339 timestamp: '" + std::string(s.substr(0, 40)) + "'");
  int Y = digits(s, 0, 4), M = digits(s, 5, 2), D = digits(s, 8, 2);
  int h = digits(s, 11, 2), m = digits(s, 14, 2), sec = digits(s, 17, 2);
  year_month_day ymd{year{Y}, month{static_cast<unsigned>(M)}, day{static_cast<unsigned>(D)}};
  // system_clock counts nanoseconds in 64 bits: only years 1678..2261 fit; CAs send nothing else.
  if (!ymd.ok() || Y < 1970 || Y > 2200 || h > 23 || m > 59 || sec > 60)
    throw Error(ErrorKind::Parse, "RFC 3339 timestamp out of range: '" + std::string(s.substr(0, 40)) + "'");
  std::size_t pos = 19;
  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::int64_t scale = 100'000'000;
    std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac += nanoseconds((s[pos] - '0') * scale);
      scale /= 10;
      ++pos;
    }
    if (pos == start) throw Error(ErrorKind::Parse, "RFC 3339 timestamp: empty fraction");
  }
  minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    if (pos + 6 != s.size() || s[pos + 3] != ':') throw Error(ErrorKind::Parse, "RFC 3339 timestamp: bad offset");
    int oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
    offset = hours(oh) + minutes(om);
    if (s[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    throw Error(ErrorKind::Parse, "RFC 3339 timestamp: missing time zone");
  }
  if (pos != s.size()) throw Error(ErrorKind::Parse, "RFC 3339 timestamp: trailing characters");
  auto tp = sys_days(ymd) + hours(h) + minutes(m) + seconds(sec) - offset;
  return time_point_cast<core::Duration>(tp) + duration_cast<core::Duration>(frac);
}

}  // namespace acme_sidecar::acme
