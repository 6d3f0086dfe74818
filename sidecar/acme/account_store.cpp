#include "acme/account_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.hpp"

namespace acme_sidecar::acme {

using core::Error;
using core::ErrorKind;

std::optional<std::string> FileAccountKeyStore::load() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path_)) return std::nullopt;
    throw Error(ErrorKind::Config, "cannot read ACME account key file", {{"path", path_.string()}});
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.empty()) return std::nullopt;
  return s;
}

void FileAccountKeyStore::save(const std::string& pem) {
  std::filesystem::path tmp = path_;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw Error(ErrorKind::Config, "cannot write ACME account key file: " + std::string(std::strerror(errno)),
                {{"path", tmp.string()}});
  std::size_t off = 0;
  while (off < pem.size()) {
    ssize_t n = ::write(fd, pem.data() + off, pem.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw Error(ErrorKind::Config, "cannot write ACME account key file", {{"path", tmp.string()}});
    }
    off += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, 0600);
  ::fsync(fd);
  ::close(fd);
  std::error_code ec;
  std::filesystem::rename(tmp, path_, ec);
  if (ec) throw Error(ErrorKind::Config, "cannot rename ACME account key file: " + ec.message(), {{"path", path_.string()}});
}

}  // namespace acme_sidecar::acme
