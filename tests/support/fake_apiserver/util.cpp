// Resource table, Status errors, selectors, validation and patch helpers of the fake API server.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <regex>

#include "internal.hpp"

namespace acme_sidecar::fake_apiserver::detail {

const std::vector<ResourceType>& resource_types() {
  static const std::vector<ResourceType> types = [] {
    std::vector<ResourceType> t;
    ResourceType ns{"", "v1", "namespaces", "Namespace", false, {"ns"}, true};
    ns.delete_returns_status = false;  // namespaces answer with the (Terminating) object
    t.push_back(ns);
    t.push_back({"", "v1", "secrets", "Secret", true, {}});
    t.push_back({"", "v1", "configmaps", "ConfigMap", true, {"cm"}});
    ResourceType ev{"", "v1", "events", "Event", true, {"ev"}};
    ev.create_on_update = true;
    t.push_back(ev);
    ResourceType ev2{"events.k8s.io", "v1", "events", "Event", true, {"ev"}};
    ev2.create_on_update = true;
    t.push_back(ev2);
    ResourceType ing{"networking.k8s.io", "v1", "ingresses", "Ingress", true, {"ing"}, true, true};
    t.push_back(ing);
    ResourceType ic{"networking.k8s.io", "v1", "ingressclasses", "IngressClass", false, {}, false, true};
    t.push_back(ic);
    ResourceType lease{"coordination.k8s.io", "v1", "leases", "Lease", true, {}};
    lease.unconditional_update = false;
    t.push_back(lease);
    return t;
  }();
  return types;
}

const ResourceType* find_type(std::string_view group, std::string_view version, std::string_view resource) {
  for (const auto& t : resource_types()) {
    if (t.group == group && t.version == version && t.resource == resource) return &t;
  }
  return nullptr;
}

const ResourceType* find_type_by_name(std::string_view name) {
  for (const auto& t : resource_types()) {
    if (t.group.empty() && t.resource == name) return &t;
  }
  for (const auto& t : resource_types()) {
    if (t.group_resource() == name || t.resource == name) return &t;
  }
  return nullptr;
}

json status_json(int code, const std::string& reason, const std::string& message, const json& details) {
  json s = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
            {"message", message}, {"code", code}};
  if (!reason.empty()) s["reason"] = reason;
  if (!details.is_null()) s["details"] = details;
  return s;
}

static json details_for(const ResourceType& rt, const std::string& name) {
  json d = {{"name", name}, {"kind", rt.resource}};
  if (!rt.group.empty()) d["group"] = rt.group;
  return d;
}

ApiError bad_request(const std::string& message) { return ApiError(400, "BadRequest", message); }

ApiError not_found(const ResourceType& rt, const std::string& name) {
  return ApiError(404, "NotFound", rt.group_resource() + " \"" + name + "\" not found", details_for(rt, name));
}

ApiError already_exists(const ResourceType& rt, const std::string& name) {
  return ApiError(409, "AlreadyExists", rt.group_resource() + " \"" + name + "\" already exists", details_for(rt, name));
}

ApiError conflict(const ResourceType& rt, const std::string& name, const std::string& why) {
  return ApiError(409, "Conflict",
                  "Operation cannot be fulfilled on " + rt.group_resource() + " \"" + name + "\": " + why,
                  details_for(rt, name));
}

ApiError invalid(const ResourceType& rt, const std::string& name, const std::vector<FieldCause>& causes) {
  std::string msg = rt.group_kind() + " \"" + name + "\" is invalid: ";
  json jc = json::array();
  std::vector<std::string> parts;
  for (const auto& c : causes) {
    parts.push_back(c.field + ": " + c.message);
    jc.push_back({{"reason", c.type}, {"message", c.message}, {"field", c.field}});
  }
  if (parts.size() == 1) {
    msg += parts[0];
  } else {
    msg += "[";
    for (std::size_t i = 0; i < parts.size(); ++i) msg += (i ? ", " : "") + parts[i];
    msg += "]";
  }
  json d = {{"name", name}, {"kind", rt.kind}, {"causes", jc}};
  if (!rt.group.empty()) d["group"] = rt.group;
  return ApiError(422, "Invalid", msg, d);
}

// ---- selectors ----

namespace {

std::string trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool valid_label_value(const std::string& v) {
  static const std::regex re(R"(^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$)");
  return v.size() <= 63 && std::regex_match(v, re);
}

bool valid_label_key(const std::string& k) {
  auto slash = k.find('/');
  std::string name = k;
  if (slash != std::string::npos) {
    std::string prefix = k.substr(0, slash);
    name = k.substr(slash + 1);
    if (prefix.empty() || prefix.size() > 253 || !is_dns1123_subdomain(prefix)) return false;
  }
  static const std::regex re(R"(^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$)");
  return !name.empty() && name.size() <= 63 && std::regex_match(name, re);
}

// Splits on commas outside parentheses.
std::vector<std::string> split_terms(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

const json* labels_of(const json& o) {
  auto m = o.find("metadata");
  if (m == o.end() || !m->is_object()) return nullptr;
  auto l = m->find("labels");
  if (l == m->end() || !l->is_object()) return nullptr;
  return &*l;
}

}  // namespace

LabelSelector parse_label_selector(const std::string& text) {
  LabelSelector sel;
  if (trim(text).empty()) return sel;
  auto fail = [&](const std::string& why) {
    return bad_request("unable to parse requirement: " + why);
  };
  // libstdc++'s regex recurses per character: bound the input before matching it.
  if (text.size() > 4096) throw fail("selector too long");
  for (const auto& raw : split_terms(text)) {
    std::string term = trim(raw);
    if (term.empty()) throw fail("found '', expected: identifier");
    LabelRequirement r;
    static const std::regex set_re(R"(^(\S+)\s+(in|notin)\s*\(([^()]*)\)$)");
    std::smatch m;
    if (term[0] == '!') {
      r.key = trim(term.substr(1));
      r.op = LabelRequirement::Op::NotExists;
    } else if (std::regex_match(term, m, set_re)) {
      r.key = m[1];
      r.op = m[2] == "in" ? LabelRequirement::Op::In : LabelRequirement::Op::NotIn;
      for (const auto& v : split_terms(m[3])) {
        std::string tv = trim(v);
        if (!valid_label_value(tv)) throw fail("values[0]: Invalid value: \"" + tv + "\": invalid label value");
        r.values.push_back(tv);
      }
    } else if (auto p = term.find("!="); p != std::string::npos) {
      r.key = trim(term.substr(0, p));
      r.op = LabelRequirement::Op::NotEquals;
      r.values.push_back(trim(term.substr(p + 2)));
    } else if (auto p2 = term.find("=="); p2 != std::string::npos) {
      r.key = trim(term.substr(0, p2));
      r.op = LabelRequirement::Op::Equals;
      r.values.push_back(trim(term.substr(p2 + 2)));
    } else if (auto p3 = term.find('='); p3 != std::string::npos) {
      r.key = trim(term.substr(0, p3));
      r.op = LabelRequirement::Op::Equals;
      r.values.push_back(trim(term.substr(p3 + 1)));
    } else {
      r.key = term;
      r.op = LabelRequirement::Op::Exists;
    }
    if (!valid_label_key(r.key)) {
      throw fail("key: Invalid value: \"" + r.key + "\": name part must consist of alphanumeric characters, '-', '_' or "
                 "'.', and must start and end with an alphanumeric character");
    }
    for (const auto& v : r.values) {
      if (!valid_label_value(v)) throw fail("values[0]: Invalid value: \"" + v + "\": invalid label value");
    }
    sel.requirements.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::matches(const json& object) const {
  const json* labels = labels_of(object);
  for (const auto& r : requirements) {
    const std::string* value = nullptr;
    std::string tmp;
    if (labels) {
      auto it = labels->find(r.key);
      if (it != labels->end() && it->is_string()) {
        tmp = it->get<std::string>();
        value = &tmp;
      }
    }
    auto in_values = [&] { return value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end(); };
    bool ok = true;
    switch (r.op) {
      case LabelRequirement::Op::Exists: ok = value != nullptr; break;
      case LabelRequirement::Op::NotExists: ok = value == nullptr; break;
      case LabelRequirement::Op::Equals:
      case LabelRequirement::Op::In: ok = in_values(); break;
      case LabelRequirement::Op::NotEquals:
      case LabelRequirement::Op::NotIn: ok = !in_values(); break;
    }
    if (!ok) return false;
  }
  return true;
}

FieldSelector parse_field_selector(const std::string& text, const ResourceType& rt) {
  FieldSelector sel;
  if (trim(text).empty()) return sel;
  if (text.size() > 4096) throw bad_request("invalid selector: too long");
  for (const auto& raw : split_terms(text)) {
    std::string term = trim(raw);
    FieldRequirement r;
    std::size_t p;
    if ((p = term.find("!=")) != std::string::npos) {
      r.field = trim(term.substr(0, p));
      r.negate = true;
      r.value = trim(term.substr(p + 2));
    } else if ((p = term.find("==")) != std::string::npos) {
      r.field = trim(term.substr(0, p));
      r.value = trim(term.substr(p + 2));
    } else if ((p = term.find('=')) != std::string::npos) {
      r.field = trim(term.substr(0, p));
      r.value = trim(term.substr(p + 1));
    } else {
      throw bad_request("invalid selector: '" + text + "'; can't understand '" + term + "'");
    }
    bool supported = r.field == "metadata.name" || r.field == "metadata.namespace" ||
                     (rt.resource == "secrets" && rt.group.empty() && r.field == "type");
    if (!supported) throw bad_request("field label not supported: " + r.field);
    sel.requirements.push_back(std::move(r));
  }
  return sel;
}

bool FieldSelector::matches(const json& object) const {
  for (const auto& r : requirements) {
    std::string actual;
    if (r.field == "type") {
      actual = object.value("type", "");
    } else {
      const auto& md = object.contains("metadata") ? object["metadata"] : json::object();
      actual = md.value(r.field == "metadata.name" ? "name" : "namespace", "");
    }
    if ((actual == r.value) == r.negate) return false;
  }
  return true;
}

// ---- validation ----

bool is_label_key(const std::string& k) { return valid_label_key(k); }
bool is_label_value(const std::string& v) { return valid_label_value(v); }

bool is_dns1123_label(std::string_view s) {
  static const std::regex re(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?$)");
  return !s.empty() && s.size() <= 63 && std::regex_match(s.begin(), s.end(), re);
}

bool is_dns1123_subdomain(std::string_view s) {
  static const std::regex re(R"(^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$)");
  return !s.empty() && s.size() <= 253 && std::regex_match(s.begin(), s.end(), re);
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Go's encoding/base64 StdEncoding (padded) as used for []byte in JSON.
bool is_valid_base64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() >= 2 && s[s.size() - 2] == '=') ++pad;
  for (std::size_t i = 0; i < s.size() - pad; ++i) {
    if (b64_value(s[i]) < 0) return false;
  }
  return true;
}

std::string base64_encode(std::string_view in) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += tbl[v >> 18 & 63];
    out += tbl[v >> 12 & 63];
    out += tbl[v >> 6 & 63];
    out += tbl[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += tbl[v >> 18 & 63];
    out += tbl[v >> 12 & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += tbl[v >> 18 & 63];
    out += tbl[v >> 12 & 63];
    out += tbl[v >> 6 & 63];
    out += '=';
  }
  return out;
}

std::optional<std::string> normalize_micro_time(std::string_view s) {
  // Go layout "2006-01-02T15:04:05.000000Z07:00": the fraction has exactly six digits.
  static const std::regex re(R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})$)");
  std::cmatch m;
  if (s.size() > 40 || !std::regex_match(s.begin(), s.end(), m, re)) return std::nullopt;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59) {
    return std::nullopt;
  }
  std::time_t t = timegm(&tm);
  std::string zone = m[8];
  if (zone != "Z") {
    int off = std::stoi(zone.substr(1, 2)) * 3600 + std::stoi(zone.substr(4, 2)) * 60;
    t += zone[0] == '+' ? -off : off;
  }
  std::tm out{};
  gmtime_r(&t, &out);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%sZ", out.tm_year + 1900, out.tm_mon + 1, out.tm_mday,
                out.tm_hour, out.tm_min, out.tm_sec, std::string(m[7]).c_str());
  return std::string(buf);
}

std::string rfc3339_now(bool millis) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (millis) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    char f[8];
    std::snprintf(f, sizeof f, ".%03d", static_cast<int>(ms));
    s += f;
  }
  return s + "Z";
}

// ---- patches ----

json apply_merge_patch(const json& target, const json& patch) {
  json result = target;
  result.merge_patch(patch);
  return result;
}

namespace {

// Lists merged by key in the types this server stores (patchStrategy "merge" in the Go types).
const char* merge_key_for(const std::string& field) {
  if (field == "ownerReferences") return "uid";
  return nullptr;
}
bool is_set_list(const std::string& field) { return field == "finalizers"; }

json smp(const json& target, const json& patch) {
  if (!patch.is_object()) return patch;
  if (patch.contains("$patch") && patch["$patch"] == "replace") {
    json p = patch;
    p.erase("$patch");
    return smp(json::object(), p);
  }
  json result = target.is_object() ? target : json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    const std::string& k = it.key();
    if (k.rfind("$setElementOrder/", 0) == 0 || k == "$retainKeys" || k == "$patch") continue;
    if (k.rfind("$deleteFromPrimitiveList/", 0) == 0) {
      std::string field = k.substr(std::string("$deleteFromPrimitiveList/").size());
      if (result.contains(field) && result[field].is_array() && it->is_array()) {
        json kept = json::array();
        for (const auto& v : result[field]) {
          if (std::find(it->begin(), it->end(), v) == it->end()) kept.push_back(v);
        }
        result[field] = kept;
      }
      continue;
    }
    const json& v = *it;
    if (v.is_null()) {
      result.erase(k);
    } else if (v.is_object()) {
      if (v.contains("$patch") && v["$patch"] == "delete") {
        result.erase(k);
      } else {
        result[k] = smp(result.contains(k) ? result[k] : json::object(), v);
      }
    } else if (v.is_array() && result.contains(k) && result[k].is_array()) {
      if (const char* mk = merge_key_for(k)) {
        json merged = result[k];
        for (const auto& item : v) {
          if (!item.is_object() || !item.contains(mk)) continue;
          bool del = item.contains("$patch") && item["$patch"] == "delete";
          auto pos = std::find_if(merged.begin(), merged.end(),
                                  [&](const json& e) { return e.is_object() && e.value(mk, json()) == item[mk]; });
          if (del) {
            if (pos != merged.end()) merged.erase(pos);
          } else if (pos != merged.end()) {
            *pos = smp(*pos, item);
          } else {
            merged.push_back(smp(json::object(), item));
          }
        }
        result[k] = merged;
      } else if (is_set_list(k)) {
        json merged = result[k];
        for (const auto& item : v) {
          if (std::find(merged.begin(), merged.end(), item) == merged.end()) merged.push_back(item);
        }
        result[k] = merged;
      } else {
        result[k] = v;
      }
    } else {
      result[k] = v;
    }
  }
  return result;
}

}  // namespace

json apply_strategic_merge_patch(const json& target, const json& patch) { return smp(target, patch); }

}  // namespace acme_sidecar::fake_apiserver::detail
