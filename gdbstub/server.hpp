// gdbstub/server.hpp — the gdb stub's TCP side: a listening socket on the address the user gave
// (`--gdb HOST:PORT`), one client at a time, and the Channel a Session reads and writes.
//
// HOST is a numeric IPv4 address or `localhost` (the stub has no authentication: bind it to
// 127.0.0.1 unless the network is trusted, docs/gdb.md). PORT 0 lets the kernel choose a free
// port; Listener::port() says which (`trapscope run` prints it).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gdbstub/session.hpp"

namespace trapscope::gdbstub {

struct ServerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "HOST:PORT" → IPv4 host (network order) and port; false with *why on a bad address.
bool parse_address(std::string_view text, uint32_t* host, uint16_t* port, std::string* why);

class SocketChannel final : public Channel {
 public:
  explicit SocketChannel(int fd) : fd_(fd) {}
  ~SocketChannel() override;
  SocketChannel(const SocketChannel&) = delete;
  SocketChannel& operator=(const SocketChannel&) = delete;
  Read read(std::string* out, int timeout_ms) override;
  bool write(std::string_view bytes) override;

 private:
  int fd_;
};

class Listener {
 public:
  // Binds and listens; throws ServerError (bad address, address in use, …).
  explicit Listener(std::string_view address);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  uint16_t port() const { return port_; }
  const std::string& host() const { return host_; }
  // Waits for the next client; -1 if interrupted by a signal (EINTR). Throws ServerError.
  int accept();

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string host_;
};

}  // namespace trapscope::gdbstub
