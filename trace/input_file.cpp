#include "trace/input_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace trapscope::trace {
namespace {

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a plain file";
}

}  // namespace

int open_regular_file(const std::string& path, uint64_t* size, std::string* error) {
  // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer (forever).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    *error = std::string("cannot open: ") + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = std::string("not a regular file (") + file_kind(st.st_mode) + ")";
    ::close(fd);
    return -1;
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

std::optional<std::string> read_input_file(const std::string& path, uint64_t max_bytes,
                                           const std::string& what, std::string* error) {
  uint64_t size = 0;
  const int fd = open_regular_file(path, &size, error);
  if (fd < 0) return std::nullopt;
  const std::string too_large = "larger than " + std::to_string(max_bytes) +
                                " bytes (the limit for " + what + ")";
  if (size > max_bytes) {
    *error = too_large;
    ::close(fd);
    return std::nullopt;
  }
  // Read at most max_bytes + 1: a file that grew since fstat is still caught.
  std::string text(static_cast<size_t>(size) + 1, '\0');
  size_t got = 0;
  while (true) {
    if (got == text.size()) {
      if (got > max_bytes) break;
      text.resize(std::min<uint64_t>(text.size() * 2, max_bytes + 1));
    }
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::string("read failed: ") + std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  if (got > max_bytes) {
    *error = too_large;
    return std::nullopt;
  }
  text.resize(got);
  return text;
}

}  // namespace trapscope::trace
