// trace/input_file.hpp — opening a file the user names as input (a trace, a lesson, a GUI
// script, a compare result) without trusting it: only a regular file is read, it is opened
// without blocking (a FIFO named by mistake or by an attacker must not hang the open), and a
// file read whole is read only if it is at most a stated size. A device such as /dev/zero is
// refused before a byte is read, instead of growing a buffer until std::bad_alloc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trapscope::trace {

// Opens `path` read-only (O_NONBLOCK for the open only, O_CLOEXEC). Returns the descriptor and
// its size in bytes (*size); -1 with *error set ("cannot open: <strerror>", or "not a regular
// file (a FIFO)", …; without the path, which the caller names) for anything else.
int open_regular_file(const std::string& path, uint64_t* size, std::string* error);

// The whole content of a regular file of at most `max_bytes` bytes; nullopt with *error set
// (as open_regular_file, "larger than N bytes (the limit for ...)", or a read error) otherwise.
// `what` names the kind of input in the error ("a lesson file").
std::optional<std::string> read_input_file(const std::string& path, uint64_t max_bytes,
                                           const std::string& what, std::string* error);

}  // namespace trapscope::trace
