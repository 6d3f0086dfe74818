#include "kube/watch.hpp"

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace acme_sidecar::kube {

using core::Error;
using core::ErrorKind;

bool LineSplitter::feed(std::string_view chunk, const std::function<bool(std::string_view)>& on_line) {
  while (!chunk.empty()) {
    auto nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      if (buffer_.size() + chunk.size() > max_line_) {
        buffer_.clear();
        throw Error(ErrorKind::Parse, "watch line exceeds the size limit");
      }
      buffer_.append(chunk);
      return true;
    }
    std::string_view line;
    if (buffer_.empty()) {
      line = chunk.substr(0, nl);  // fast path: no copy
    } else {
      if (buffer_.size() + nl > max_line_) {
        buffer_.clear();
        throw Error(ErrorKind::Parse, "watch line exceeds the size limit");
      }
      buffer_.append(chunk.substr(0, nl));
      line = buffer_;
    }
    chunk.remove_prefix(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    bool keep_going = line.empty() ? true : on_line(line);
    buffer_.clear();
    if (!keep_going) return false;
  }
  return true;
}

std::string_view to_string(WatchEventType type) {
  switch (type) {
    case WatchEventType::Added: return "ADDED";
    case WatchEventType::Modified: return "MODIFIED";
    case WatchEventType::Deleted: return "DELETED";
    case WatchEventType::Bookmark: return "BOOKMARK";
    case WatchEventType::Error: return "ERROR";
  }
  return "UNKNOWN";
}

WatchEventType parse_watch_event(std::string_view line, nlohmann::json& object_out) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(ErrorKind::Parse, "watch event is not a JSON object");
  auto t = j.find("type");
  auto o = j.find("object");
  if (t == j.end() || !t->is_string() || o == j.end() || !o->is_object()) {
    throw Error(ErrorKind::Parse, "watch event lacks type or object");
  }
  const auto& type = t->get_ref<const std::string&>();
  WatchEventType result;
  if (type == "ADDED") result = WatchEventType::Added;
  else if (type == "MODIFIED") result = WatchEventType::Modified;
  else if (type == "DELETED") result = WatchEventType::Deleted;
  else if (type == "BOOKMARK") result = WatchEventType::Bookmark;
  else if (type == "ERROR") result = WatchEventType::Error;
  else throw Error(ErrorKind::Parse, "unknown watch event type", {{"type", type}});
  object_out = std::move(*o);
  return result;
}

}  // namespace acme_sidecar::kube
