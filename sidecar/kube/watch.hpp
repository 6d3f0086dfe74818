#pragma once
// Watch stream decoding: a splitter that turns arbitrary chunks into lines, and event parsing.
#include <cstddef>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace acme_sidecar::kube {

// Accumulates chunks and yields complete '\n'-terminated lines (without the newline; a trailing
// '\r' is dropped, empty lines skipped). Bounded: a line longer than `max_line` throws core::Error(Parse).
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line = 64u << 20) : max_line_(max_line) {}
  // Calls on_line for each complete line; stops early (returns false) when on_line returns false.
  bool feed(std::string_view chunk, const std::function<bool(std::string_view line)>& on_line);
  // Bytes of an incomplete last line.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::size_t max_line_;
  std::string buffer_;
};

enum class WatchEventType { Added, Modified, Deleted, Bookmark, Error };
std::string_view to_string(WatchEventType type);

// Parses one watch line {"type":..., "object":{...}}; throws core::Error(Parse) on anything else.
// `object_out` receives the object.
WatchEventType parse_watch_event(std::string_view line, nlohmann::json& object_out);

}  // namespace acme_sidecar::kube
