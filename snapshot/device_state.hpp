// snapshot/device_state.hpp — each device's state as a named record of the "DEVS" section
// (docs/snapshots.md). Adding a device's state to snapshot files is one entry in the table of
// device_state.cpp: its record name and two small functions, one writing its fields of
// platform::Devices::State, one reading them back.
//
// Reading: a record whose name no entry knows is refused (a device this build cannot restore);
// a device with no record in the file keeps its reset state (a file from before the device).
#pragma once

#include <span>

#include "platform/devices.hpp"
#include "snapshot/bytes.hpp"

namespace trapscope::snapshot {

struct DeviceCodec {
  const char* name;  // the record name, e.g. "uart16550"
  void (*save)(const platform::Devices::State& state, Writer& out);
  // Reads what save wrote (the reader spans exactly the record). Throws FormatError.
  void (*load)(Reader& in, platform::Devices::State* state);
};

std::span<const DeviceCodec> device_codecs();

}  // namespace trapscope::snapshot
