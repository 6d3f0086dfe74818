#include "core/desired.hpp"

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "core/names.hpp"

namespace acme_sidecar::core {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || is_digit(c); }

bool looks_like_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t start = 0;
  while (true) {
    auto dot = s.find('.', start);
    auto part = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || part.size() > 3 || !std::all_of(part.begin(), part.end(), is_digit)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts == 4;
}

// A Kubernetes object name (DNS-1123 subdomain).
bool valid_object_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  if (!is_lower_alnum(s.front()) || !is_lower_alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) || c == '-' || c == '.'; });
}

std::string display(std::string s) {
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

const std::string* find(const std::map<std::string, std::string>& m, std::string_view key) {
  auto it = m.find(std::string(key));
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace

std::string_view to_string(NameProblem problem) {
  switch (problem) {
    case NameProblem::Empty: return "empty";
    case NameProblem::Wildcard: return "wildcard";
    case NameProblem::IpAddress: return "ip_address";
    case NameProblem::TooLong: return "too_long";
    case NameProblem::LabelTooLong: return "label_too_long";
    case NameProblem::EmptyLabel: return "empty_label";
    case NameProblem::NotAscii: return "not_ascii";
    case NameProblem::InvalidCharacters: return "invalid_characters";
  }
  return "unknown";
}

std::string normalize_name(std::string_view host) {
  while (!host.empty() && std::isspace(static_cast<unsigned char>(host.front()))) host.remove_prefix(1);
  while (!host.empty() && std::isspace(static_cast<unsigned char>(host.back()))) host.remove_suffix(1);
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);
  std::string out(host);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<NameProblem> check_dns_name(std::string_view name) {
  if (name.empty()) return NameProblem::Empty;
  if (name.find('*') != std::string_view::npos) return NameProblem::Wildcard;
  if (name.find(':') != std::string_view::npos || looks_like_ipv4(name) ||
      (name.front() == '[' && name.back() == ']')) {
    return NameProblem::IpAddress;
  }
  if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) {
    return NameProblem::NotAscii;
  }
  if (name.size() > 253) return NameProblem::TooLong;
  std::size_t start = 0;
  while (true) {
    auto dot = name.find('.', start);
    auto label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty()) return NameProblem::EmptyLabel;
    if (label.size() > 63) return NameProblem::LabelTooLong;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; }) ||
        label.front() == '-' || label.back() == '-') {
      return NameProblem::InvalidCharacters;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

std::size_t name_limit(const DesiredConfig& config, std::string_view profile) {
  auto it = config.name_limits.find(profile);
  return it == config.name_limits.end() ? config.default_name_limit : it->second;
}

bool is_known_key_algorithm(std::string_view text) {
  return text == "ecdsa-p256" || text == "ecdsa-p384" || text == "rsa-2048" || text == "rsa-3072" ||
         text == "rsa-4096";
}

std::string DesiredCertificate::fingerprint() const {
  std::string out = key_algorithm + "|" + profile + "|";
  for (const auto& n : names) out += n + ",";
  return out;
}

std::vector<std::string> certificate_keys(const IngressView& ingress) {
  std::set<std::string> keys;
  for (const auto& tls : ingress.tls) {
    if (!tls.secret_name.empty()) keys.insert(ingress.namespace_name + "/" + tls.secret_name);
  }
  return {keys.begin(), keys.end()};
}

std::optional<std::pair<std::string, std::string>> split_key(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == key.size() ||
      key.find('/', slash + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  return std::make_pair(std::string(key.substr(0, slash)), std::string(key.substr(slash + 1)));
}

DesiredState desired_certificates(const std::vector<IngressView>& ingresses, const DesiredConfig& config) {
  DesiredState state;

  // Deterministic order regardless of cache iteration order: (namespace, name, uid).
  std::vector<const IngressView*> ordered;
  ordered.reserve(ingresses.size());
  for (const auto& ing : ingresses) ordered.push_back(&ing);
  std::sort(ordered.begin(), ordered.end(), [](const IngressView* a, const IngressView* b) {
    return std::tie(a->namespace_name, a->name, a->uid) < std::tie(b->namespace_name, b->name, b->uid);
  });

  struct Accumulator {
    std::set<std::string> names;
    std::set<std::string> rejected_seen;
    std::optional<std::pair<std::string, IngressRef>> key_algorithm;  // value, first setter
    std::optional<std::pair<std::string, IngressRef>> profile;
  };
  std::map<std::string, Accumulator> acc;

  for (const IngressView* ing : ordered) {
    IngressRef ref{ing->namespace_name, ing->name, ing->uid};
    auto sel = select_ingress(*ing, config.classes);
    if (!sel.ours) {
      state.ignored.emplace_back(ref, std::move(sel));
      continue;
    }

    // Per-Ingress annotations; invalid values are reported and ignored.
    std::optional<std::string> key_alg;
    if (const auto* v = find(ing->annotations, names::kKeyAlgorithm)) {
      if (is_known_key_algorithm(*v)) {
        key_alg = *v;
      } else {
        state.issues.push_back({ref, "invalid_key_algorithm",
                                "annotation " + std::string(names::kKeyAlgorithm) + " \"" + display(*v) +
                                    "\" is not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096; "
                                    "using the default"});
      }
    }
    std::optional<std::string> profile;
    if (const auto* v = find(ing->annotations, names::kProfile); v && !v->empty()) profile = *v;

    std::set<std::string> seen_secrets;  // one Ingress listing the same Secret twice counts once
    for (std::size_t i = 0; i < ing->tls.size(); ++i) {
      const auto& tls = ing->tls[i];
      auto where = "spec.tls[" + std::to_string(i) + "]";
      if (tls.secret_name.empty()) {
        state.issues.push_back({ref, "tls_without_secret", where + " has no secretName: nothing to write to"});
        continue;
      }
      if (!valid_object_name(tls.secret_name)) {
        state.issues.push_back({ref, "invalid_secret_name",
                                where + " secretName \"" + display(tls.secret_name) + "\" is not a valid name"});
        continue;
      }
      if (tls.hosts.empty()) {
        state.issues.push_back({ref, "tls_without_hosts", where + " has no hosts: nothing to request"});
        continue;
      }
      auto key = ing->namespace_name + "/" + tls.secret_name;
      auto [it, inserted] = state.certificates.try_emplace(key);
      auto& cert = it->second;
      auto& a = acc[key];
      if (inserted) {
        cert.namespace_name = ing->namespace_name;
        cert.secret_name = tls.secret_name;
      }
      if (seen_secrets.insert(key).second) {
        cert.sources.push_back(ref);
        auto merge = [&](std::optional<std::pair<std::string, IngressRef>>& slot, const std::optional<std::string>& v,
                         std::string_view annotation) {
          if (!v) return;
          if (!slot) {
            slot.emplace(*v, ref);
          } else if (slot->first != *v) {
            cert.issues.push_back({ref, "annotation_conflict",
                                   "annotation " + std::string(annotation) + " \"" + display(*v) +
                                       "\" conflicts with \"" + slot->first + "\" of Ingress " +
                                       slot->second.key() + " for Secret " + key + "; using \"" + slot->first +
                                       "\" (first Ingress by namespace/name wins)"});
          }
        };
        merge(a.key_algorithm, key_alg, names::kKeyAlgorithm);
        merge(a.profile, profile, names::kProfile);
      }
      for (const auto& host : tls.hosts) {
        auto name = normalize_name(host);
        if (auto problem = check_dns_name(name)) {
          if (a.rejected_seen.insert(name).second) cert.rejected_names.push_back({display(name), *problem, ref});
          continue;
        }
        a.names.insert(std::move(name));
      }
    }
  }

  for (auto& [key, cert] : state.certificates) {
    auto& a = acc[key];
    cert.names.assign(a.names.begin(), a.names.end());
    cert.key_algorithm = a.key_algorithm ? a.key_algorithm->first : config.default_key_algorithm;
    cert.profile = a.profile ? a.profile->first : config.default_profile;
    auto limit = name_limit(config, cert.profile);
    if (cert.names.empty()) {
      cert.refusal = "no issuable name: every host of Secret " + key + " was rejected";
    } else if (cert.names.size() > limit) {
      cert.refusal = std::to_string(cert.names.size()) + " names exceed the limit of " + std::to_string(limit) +
                     " for profile \"" + (cert.profile.empty() ? std::string("classic") : cert.profile) +
                     "\"; split the hosts over several Secrets (names are never truncated)";
    }
  }
  return state;
}

}  // namespace acme_sidecar::core
