// Fuzz target: the gdb stub's packet parser (gdbstub/packet.hpp) and command layer
// (gdbstub/session.hpp) on a hostile byte stream, as a TCP client could send it.
//
// Input: byte 0 chooses how the stream is cut into reads (1..16 bytes, or all at once); the rest
// is the stream. Checked besides ASan/UBSan:
//   - the parser finds the same inputs however the stream is cut;
//   - no packet holds more than kMaxPacketBytes;
//   - every packet found, framed again by frame(), parses back to exactly itself;
//   - every packet, given to a Session over a simulator running a 3-instruction guest
//     (nop; nop; hlt), gets a reply without crashing or hanging (a continue is interrupted by
//     the fake connection's 0x03 at its first poll), and a reply is a well-formed packet.
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_input.hpp"
#include "backend/backend.hpp"
#include "gdbstub/packet.hpp"
#include "gdbstub/session.hpp"

using namespace trapscope;

namespace {

constexpr const char* kTarget = "fuzz_gdbstub";

// A connection whose peer always has an interrupt waiting and takes every write.
struct FakeChannel final : gdbstub::Channel {
  Read read(std::string* out, int) override {
    out->push_back('\x03');
    return Read::kData;
  }
  bool write(std::string_view bytes) override {
    written += bytes;
    return true;
  }
  std::string written;
};

std::vector<gdbstub::Input> parse(std::span<const uint8_t> bytes, size_t cut) {
  gdbstub::PacketParser p;
  std::vector<gdbstub::Input> out;
  for (size_t i = 0; i < bytes.size(); i += cut) {
    p.feed(bytes.subspan(i, std::min(cut, bytes.size() - i)), out);
  }
  return out;
}

bool same(const std::vector<gdbstub::Input>& a, const std::vector<gdbstub::Input>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].data != b[i].data) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::FuzzInput in(data, size);
  const unsigned choice = in.pick(17);
  const auto stream = in.rest();
  const auto whole = parse(stream, stream.empty() ? 1 : stream.size());
  const auto cut = parse(stream, choice == 16 ? 1 + stream.size() : choice + 1);
  if (!same(whole, cut)) fuzz::invariant_failed(kTarget, "the inputs depend on how the stream is cut");

  static const uint8_t kGuest[] = {0x90, 0x90, 0xF4};  // nop; nop; hlt
  backend::Config cfg;
  cfg.memory_bytes = 1 << 20;
  auto machine = backend::make_backend(backend::Kind::kSim, cfg);
  machine->load(kGuest);
  gdbstub::Session session(*machine, nullptr);
  FakeChannel channel;
  unsigned packets = 0;
  for (const gdbstub::Input& i : whole) {
    if (i.kind != gdbstub::Input::Kind::kPacket) continue;
    if (i.data.size() > gdbstub::kMaxPacketBytes) {
      fuzz::invariant_failed(kTarget, "a packet longer than kMaxPacketBytes");
    }
    const std::string framed = gdbstub::frame(i.data);
    const auto again = parse(std::span(reinterpret_cast<const uint8_t*>(framed.data()), framed.size()), framed.size());
    if (again.size() != 1 || again[0].kind != gdbstub::Input::Kind::kPacket || again[0].data != i.data) {
      fuzz::invariant_failed(kTarget, "frame() does not parse back to the same packet");
    }
    if (++packets > 64) continue;  // bounded work per input
    std::optional<gdbstub::SessionEnd> end;
    const std::string reply = session.handle(i.data, channel, &end);
    const std::string f = gdbstub::frame(reply);
    const auto r = parse(std::span(reinterpret_cast<const uint8_t*>(f.data()), f.size()), f.size());
    if (r.size() != 1 || r[0].kind != gdbstub::Input::Kind::kPacket) {
      fuzz::invariant_failed(kTarget, "a reply that is not one well-formed packet");
    }
    if (end) break;
  }
  return 0;
}
