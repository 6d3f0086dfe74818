// Server-side printing (meta.k8s.io/v1 Table), which `kubectl get` asks for, with the real server's columns
// for the kinds served here.
#include <chrono>
#include <cstdio>
#include <ctime>

#include "internal.hpp"

namespace acme_sidecar::fake_apiserver::detail {
namespace {

json column(const std::string& name, const std::string& type, const std::string& format = "", int priority = 0) {
  return {{"name", name}, {"type", type}, {"format", format}, {"description", name}, {"priority", priority}};
}

std::optional<std::time_t> parse_time(const std::string& s) {
  std::tm tm{};
  int y, mo, d, h, mi, sec;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d", &y, &mo, &d, &h, &mi, &sec) != 6) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return timegm(&tm);
}

}  // namespace

// k8s.io/apimachinery/pkg/util/duration.HumanDuration.
std::string human_duration(long long seconds) {
  char b[32];
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) {
    std::snprintf(b, sizeof b, "%llds", seconds);
    return b;
  }
  long long minutes = seconds / 60;
  if (minutes < 10) {
    long long s = seconds % 60;
    if (s == 0) std::snprintf(b, sizeof b, "%lldm", minutes);
    else std::snprintf(b, sizeof b, "%lldm%llds", minutes, s);
    return b;
  }
  if (minutes < 180) {
    std::snprintf(b, sizeof b, "%lldm", minutes);
    return b;
  }
  long long hours = seconds / 3600;
  if (hours < 8) {
    long long m = minutes % 60;
    if (m == 0) std::snprintf(b, sizeof b, "%lldh", hours);
    else std::snprintf(b, sizeof b, "%lldh%lldm", hours, m);
    return b;
  }
  if (hours < 48) {
    std::snprintf(b, sizeof b, "%lldh", hours);
    return b;
  }
  if (hours < 24 * 8) {
    long long h = hours % 24;
    if (h == 0) std::snprintf(b, sizeof b, "%lldd", hours / 24);
    else std::snprintf(b, sizeof b, "%lldd%lldh", hours / 24, h);
    return b;
  }
  if (hours < 24 * 365 * 2) {
    std::snprintf(b, sizeof b, "%lldd", hours / 24);
    return b;
  }
  if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    if (dy == 0) std::snprintf(b, sizeof b, "%lldy", hours / 24 / 365);
    else std::snprintf(b, sizeof b, "%lldy%lldd", hours / 24 / 365, dy);
    return b;
  }
  std::snprintf(b, sizeof b, "%lldy", hours / 24 / 365);
  return b;
}

json table_columns(const ResourceType& rt) {
  json c = json::array();
  c.push_back(column("Name", "string", "name"));
  if (rt.kind == "Namespace") {
    c.push_back(column("Status", "string"));
  } else if (rt.kind == "Secret") {
    c.push_back(column("Type", "string"));
    c.push_back(column("Data", "string"));
  } else if (rt.kind == "ConfigMap") {
    c.push_back(column("Data", "string"));
  } else if (rt.kind == "Ingress") {
    c.push_back(column("Class", "string"));
    c.push_back(column("Hosts", "string"));
    c.push_back(column("Address", "string"));
    c.push_back(column("Ports", "string"));
  } else if (rt.kind == "IngressClass") {
    c.push_back(column("Controller", "string"));
    c.push_back(column("Parameters", "string"));
  } else if (rt.kind == "Lease") {
    c.push_back(column("Holder", "string"));
  } else if (rt.kind == "Event") {
    c.push_back(column("Type", "string"));
    c.push_back(column("Reason", "string"));
    c.push_back(column("Object", "string"));
    c.push_back(column("Message", "string"));
  }
  c.push_back(column("Age", "string"));
  return c;
}

json table_row(const ResourceType& rt, const json& o) {
  const json& md = o.contains("metadata") ? o["metadata"] : json::object();
  json cells = json::array();
  cells.push_back(md.value("name", ""));
  auto str = [](const json& j, const char* k) { return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  if (rt.kind == "Namespace") {
    cells.push_back(str(o.value("status", json::object()), "phase"));
  } else if (rt.kind == "Secret") {
    cells.push_back(o.value("type", "Opaque"));
    cells.push_back(static_cast<long long>(o.value("data", json::object()).size()));
  } else if (rt.kind == "ConfigMap") {
    cells.push_back(static_cast<long long>(o.value("data", json::object()).size() + o.value("binaryData", json::object()).size()));
  } else if (rt.kind == "Ingress") {
    json spec = o.value("spec", json::object());
    std::string cls = str(spec, "ingressClassName");
    cells.push_back(cls.empty() ? "<none>" : cls);
    std::string hosts;
    for (const auto& r : spec.value("rules", json::array())) {
      std::string h = str(r, "host");
      if (!h.empty()) hosts += (hosts.empty() ? "" : ",") + h;
    }
    cells.push_back(hosts.empty() ? "*" : hosts);
    std::string addr;
    json lb = o.value("status", json::object()).value("loadBalancer", json::object()).value("ingress", json::array());
    for (const auto& i : lb) {
      std::string a = str(i, "ip").empty() ? str(i, "hostname") : str(i, "ip");
      if (!a.empty()) addr += (addr.empty() ? "" : ",") + a;
    }
    cells.push_back(addr);
    cells.push_back(spec.value("tls", json::array()).empty() ? "80" : "80, 443");
  } else if (rt.kind == "IngressClass") {
    json spec = o.value("spec", json::object());
    cells.push_back(str(spec, "controller"));
    cells.push_back("<none>");
  } else if (rt.kind == "Lease") {
    cells.push_back(str(o.value("spec", json::object()), "holderIdentity"));
  } else if (rt.kind == "Event") {
    cells.push_back(o.value("type", ""));
    cells.push_back(o.value("reason", ""));
    json ref = o.contains("regarding") ? o["regarding"] : o.value("involvedObject", json::object());
    std::string kind = str(ref, "kind");
    for (auto& ch : kind) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    cells.push_back(kind + "/" + str(ref, "name"));
    cells.push_back(o.contains("note") ? o.value("note", "") : o.value("message", ""));
  }
  std::string age = "<unknown>";
  if (auto t = parse_time(md.value("creationTimestamp", ""))) {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    age = human_duration(static_cast<long long>(now - *t));
  }
  cells.push_back(age);
  json partial = {{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", md}};
  return {{"cells", cells}, {"object", partial}};
}

json make_table(const ResourceType& rt, const std::vector<const json*>& objects, const json& list_meta) {
  json rows = json::array();
  for (const json* o : objects) rows.push_back(table_row(rt, *o));
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", list_meta},
          {"columnDefinitions", table_columns(rt)},
          {"rows", rows}};
}

}  // namespace acme_sidecar::fake_apiserver::detail
