#include "core/log.hpp"

#include <cstdio>
#include <ctime>
#include <mutex>

#include "core/error.hpp"
#include "core/json_document.hpp"

namespace acme_sidecar::core {

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

LogLevel parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::Debug;
  if (text == "info") return LogLevel::Info;
  if (text == "warn" || text == "warning") return LogLevel::Warn;
  if (text == "error") return LogLevel::Error;
  throw Error(ErrorKind::Config, "invalid log level (want debug, info, warn or error)", {{"value", std::string(text)}});
}

LogSink stderr_sink() {
  auto mu = std::make_shared<std::mutex>();
  return [mu](std::string_view line) {
    std::lock_guard lock(*mu);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

Logger::Logger(LogSink sink, LogLevel min_level, const Clock* clock)
    : state_(std::make_shared<State>(State{std::move(sink), min_level, clock})) {}

Logger Logger::discard() { return Logger([](std::string_view) {}, LogLevel::Error, nullptr); }

Logger Logger::with(std::string key, std::string value) const {
  Logger copy = *this;
  copy.context_.emplace_back(std::move(key), std::move(value));
  return copy;
}

Logger Logger::with(const LogFields& fields) const {
  Logger copy = *this;
  copy.context_.insert(copy.context_.end(), fields.begin(), fields.end());
  return copy;
}

namespace {
std::string timestamp(TimePoint t) {
  using namespace std::chrono;
  auto secs = time_point_cast<seconds>(t);
  auto ms = duration_cast<milliseconds>(t - secs).count();
  std::time_t tt = system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

void append_field(std::string& line, std::string_view key, std::string_view value) {
  line += ',';
  append_json_string(line, key);
  line += ':';
  if (looks_like_secret(value)) {
    line += "\"[redacted]\"";
  } else {
    append_json_string(line, value);
  }
}
}  // namespace

void Logger::log(LogLevel level, std::string_view msg, const LogFields& fields) const {
  if (!enabled(level)) return;
  TimePoint t = state_->clock ? state_->clock->now() : std::chrono::system_clock::now();
  std::string line = "{\"ts\":\"" + timestamp(t) + "\",\"level\":\"" + std::string(to_string(level)) + "\"";
  append_field(line, "msg", msg);
  for (const auto& [k, v] : context_) append_field(line, k, v);
  for (const auto& [k, v] : fields) append_field(line, k, v);
  line += '}';
  state_->sink(line);
}

std::string json_escape(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out.substr(1, out.size() - 2);  // without the quotes
}

bool looks_like_secret(std::string_view s) {
  return s.find("PRIVATE KEY") != std::string_view::npos || s.find("\"d\":") != std::string_view::npos;
}

}  // namespace acme_sidecar::core
