#pragma once
// Structured JSON-lines logging: {"ts":"...","level":"info","msg":"...","secret":"ns/name",...}.
// A Logger is a cheap value carrying per-key context (klog's LoggerWithValues); it is passed in,
// never global. Values that look like key material are replaced by "[redacted]".
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.hpp"

namespace acme_sidecar::core {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };
std::string_view to_string(LogLevel level);
// Parses debug|info|warn|error. Throws core::Error(Config).
LogLevel parse_log_level(std::string_view text);

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Receives one complete line (without the trailing newline).
using LogSink = std::function<void(std::string_view line)>;
LogSink stderr_sink();

class Logger {
 public:
  Logger(LogSink sink, LogLevel min_level, const Clock* clock = nullptr);
  // A logger that discards everything.
  static Logger discard();

  Logger with(std::string key, std::string value) const;
  Logger with(const LogFields& fields) const;

  void debug(std::string_view msg, const LogFields& fields = {}) const { log(LogLevel::Debug, msg, fields); }
  void info(std::string_view msg, const LogFields& fields = {}) const { log(LogLevel::Info, msg, fields); }
  void warn(std::string_view msg, const LogFields& fields = {}) const { log(LogLevel::Warn, msg, fields); }
  void error(std::string_view msg, const LogFields& fields = {}) const { log(LogLevel::Error, msg, fields); }
  void log(LogLevel level, std::string_view msg, const LogFields& fields) const;
  bool enabled(LogLevel level) const { return level >= state_->min_level; }

 private:
  struct State {
    LogSink sink;
    LogLevel min_level;
    const Clock* clock;
  };
  std::shared_ptr<const State> state_;
  LogFields context_;
};

// JSON string escaping (RFC 8259) without the quotes, as core::append_json_string writes it (a byte that
// is not UTF-8 becomes U+FFFD, so a log line is always valid JSON).
std::string json_escape(std::string_view s);
// True when `s` contains PEM private-key armour or similar secret material.
bool looks_like_secret(std::string_view s);

}  // namespace acme_sidecar::core
