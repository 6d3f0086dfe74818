#include "tests/support/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace acme_sidecar::testing {

namespace {
int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}
}  // namespace

Subprocess::Subprocess(Options options) : options_(std::move(options)) {
  if (options_.argv.empty()) throw std::invalid_argument("Subprocess: empty argv");
  // Prepare everything that allocates before fork().
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    auto eq = s.find('=');
    bool overridden = false;
    for (auto& [k, v] : options_.env)
      if (s.compare(0, eq, k) == 0 && eq == k.size()) overridden = true;
    if (!overridden) env_strings.push_back(s);
  }
  for (auto& [k, v] : options_.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (auto& s : options_.argv) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string log = options_.log_file.empty() ? "/dev/null" : options_.log_file.string();
  std::string cwd = options_.cwd.string();

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    execvpe(argv[0], argv.data(), envp.data());
    _exit(127);
  }
}

Subprocess::~Subprocess() {
  if (pid_ > 0 && running()) kill();
}

bool Subprocess::running() {
  if (pid_ <= 0 || status_ >= 0) return false;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = decode_status(st);
    return false;
  }
  return r == 0;
}

void Subprocess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

int Subprocess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

int Subprocess::stop(std::chrono::milliseconds grace) {
  if (!running()) return status_;
  ::kill(pid_, SIGTERM);
  int st = wait(grace);
  if (st >= 0) return st;
  return kill();
}

int Subprocess::kill() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    status_ = decode_status(st);
  }
  return status_;
}

std::string Subprocess::log() const {
  return options_.log_file.empty() ? std::string() : read_file(options_.log_file);
}

bool poll_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool wait_for_port(const std::string& host, int port, std::chrono::milliseconds timeout) {
  return poll_until(
      [&] {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
        bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        close(fd);
        return ok;
      },
      timeout);
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("free_port: bind failed");
  }
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::vector<std::pair<std::string, std::string>>& env, const std::string& stdin_data) {
  TempDir dir("acme-sidecar-run");
  Subprocess::Options opts;
  if (!stdin_data.empty()) {
    // Feed stdin through a file via sh redirection to keep Subprocess simple.
    write_file(dir / "stdin", stdin_data);
    std::string cmd = "exec \"$0\" \"$@\" < " + (dir / "stdin").string();
    opts.argv = {"/bin/sh", "-c", cmd};
    opts.argv.insert(opts.argv.end(), argv.begin(), argv.end());
  } else {
    opts.argv = argv;
  }
  opts.env = env;
  opts.log_file = dir / "out";
  Subprocess p(opts);
  RunResult r;
  r.status = p.wait(timeout);
  if (r.status < 0) {
    p.kill();
    r.status = -1;
  }
  r.output = read_file(dir / "out");
  return r;
}

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  const char* keep = std::getenv("ACME_SIDECAR_KEEP_TMP");
  if (keep && std::string(keep) == "1") return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("write_file failed: " + p.string());
}

std::size_t count_in_file(const std::filesystem::path& p, const std::string& needle) {
  std::string s = read_file(p);
  std::size_t n = 0;
  for (auto pos = s.find(needle); pos != std::string::npos; pos = s.find(needle, pos + needle.size())) ++n;
  return n;
}

std::filesystem::path source_dir() { return ACME_SIDECAR_SOURCE_DIR; }
std::filesystem::path binary_dir() { return ACME_SIDECAR_BINARY_DIR; }

}  // namespace acme_sidecar::testing
