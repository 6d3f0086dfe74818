#include "kube/watch.hpp"

#include "core/error.hpp"
#include "core/json_document.hpp"
#include "kube/json_tree.hpp"

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
  auto doc = core::JsonDocument::parse(line);
  if (!doc.ok() || !doc.root().is_object()) throw Error(ErrorKind::Parse, "watch event is not a JSON object");
  auto t = doc.root().find("type");
  auto o = doc.root().find("object");
  if (!t || !t->is_string() || !o || !o->is_object()) throw Error(ErrorKind::Parse, "watch event lacks type or object");
  WatchEventType result;
  if (t->equals("ADDED")) result = WatchEventType::Added;
  else if (t->equals("MODIFIED")) result = WatchEventType::Modified;
  else if (t->equals("DELETED")) result = WatchEventType::Deleted;
  else if (t->equals("BOOKMARK")) result = WatchEventType::Bookmark;
  else if (t->equals("ERROR")) result = WatchEventType::Error;
  else throw Error(ErrorKind::Parse, "unknown watch event type", {{"type", t->str().substr(0, 64)}});
  object_out = to_tree(*o);
  return result;
}

}  // namespace acme_sidecar::kube
