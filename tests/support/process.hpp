#pragma once
// Test-side helpers for multi-process tests: spawn a program, wait for its port, stop it, temp dirs.
// Output goes to a file so a test can count what the other side logged (Pebble's requests, nginx's
// access log) independently of our own metrics.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace acme_sidecar::testing {

class Subprocess {
 public:
  struct Options {
    std::vector<std::string> argv;
    std::vector<std::pair<std::string, std::string>> env;  // added to (or overriding) the environment
    std::filesystem::path log_file;                        // stdout+stderr; /dev/null when empty
    std::filesystem::path cwd;
  };
  explicit Subprocess(Options options);
  ~Subprocess();  // SIGKILLs the process if still running
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, then SIGKILL after `grace`; returns the exit status (or 128+signal).
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  int kill();  // SIGKILL now
  void signal(int sig);
  // Waits for exit up to `timeout`; returns exit status or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  const Options& options() const { return options_; }
  std::string log() const;  // the whole log file

 private:
  Options options_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// Polls `condition` every 20 ms until it is true or `timeout` passes. Returns the final value.
bool poll_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
// True once a TCP connect to host:port succeeds within `timeout`.
bool wait_for_port(const std::string& host, int port, std::chrono::milliseconds timeout);
// An ephemeral port that is free right now on 127.0.0.1.
int free_port();
// Runs argv to completion (bounded by timeout), returning exit status and combined output.
struct RunResult {
  int status = -1;
  std::string output;
};
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::vector<std::pair<std::string, std::string>>& env = {}, const std::string& stdin_data = "");

// A temporary directory removed on destruction (kept when ACME_SIDECAR_KEEP_TMP=1, for debugging).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "acme-sidecar-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::filesystem::path& p);
void write_file(const std::filesystem::path& p, const std::string& content);
// Counts occurrences of `needle` in a file (0 when missing).
std::size_t count_in_file(const std::filesystem::path& p, const std::string& needle);
// Directory of the source tree (from the ACME_SIDECAR_SOURCE_DIR compile definition).
std::filesystem::path source_dir();
// Directory of the build tree (ACME_SIDECAR_BINARY_DIR).
std::filesystem::path binary_dir();

}  // namespace acme_sidecar::testing
