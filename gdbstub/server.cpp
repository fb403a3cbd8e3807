#include "gdbstub/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace trapscope::gdbstub {

bool parse_address(std::string_view text, uint32_t* host, uint16_t* port, std::string* why) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    *why = fmt::format("'{}' is not HOST:PORT (e.g. 127.0.0.1:1234)", text);
    return false;
  }
  std::string h(text.substr(0, colon));
  if (h == "localhost") h = "127.0.0.1";
  in_addr a{};
  if (inet_pton(AF_INET, h.c_str(), &a) != 1) {
    *why = fmt::format("'{}' is not an IPv4 address (e.g. 127.0.0.1)", h);
    return false;
  }
  const std::string_view p = text.substr(colon + 1);
  unsigned v = 0;
  const auto r = std::from_chars(p.data(), p.data() + p.size(), v);
  if (p.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || v > 65535) {
    *why = fmt::format("'{}' is not a port number from 0 to 65535", p);
    return false;
  }
  *host = a.s_addr;
  *port = static_cast<uint16_t>(v);
  return true;
}

SocketChannel::~SocketChannel() { ::close(fd_); }

Channel::Read SocketChannel::read(std::string* out, int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  const int n = ::poll(&p, 1, timeout_ms);
  if (n < 0) return errno == EINTR ? Read::kTimeout : Read::kClosed;
  if (n == 0) return Read::kTimeout;
  char buf[4096];
  const ssize_t got = ::recv(fd_, buf, sizeof buf, 0);
  if (got < 0 && (errno == EINTR || errno == EAGAIN)) return Read::kTimeout;
  if (got <= 0) return Read::kClosed;
  out->append(buf, static_cast<size_t>(got));
  return Read::kData;
}

bool SocketChannel::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

Listener::Listener(std::string_view address) {
  uint32_t host = 0;
  uint16_t port = 0;
  std::string why;
  if (!parse_address(address, &host, &port, &why)) throw ServerError(why);
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw ServerError(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = host;
  sa.sin_port = htons(port);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 1) != 0) {
    const std::string e = std::strerror(errno);
    ::close(fd_);
    throw ServerError("cannot listen on " + std::string(address) + ": " + e);
  }
  socklen_t len = sizeof sa;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  port_ = ntohs(sa.sin_port);
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa.sin_addr, text, sizeof text);
  host_ = text;
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
}

int Listener::accept() {
  const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EINTR) return -1;
    throw ServerError(std::string("accept: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace trapscope::gdbstub
