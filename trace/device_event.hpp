// trace/device_event.hpp — what a device model did, as a trace event (trace::DeviceEvent in
// trace/event.hpp): which device, which action, and its numbers. The names of device commands
// (ATA opcodes, virtio-blk request types) are written once here, so the device models, the
// printers and the visualizer say the same thing.
//
// Sources: ATA/ATAPI Command Set (ATA8-ACS, T13/1699-D) for the ATA opcodes; OASIS virtio 1.1
// §5.2.6 for the virtio-blk request types and status values.
#pragma once

#include <cstdint>
#include <string_view>

namespace trapscope::trace {

enum class DeviceKind : uint8_t {
  kAta = 0,          // the emulated ATA (IDE) PIO controller, primary bus
  kVirtioBlk = 1,    // virtio-blk over virtio-mmio
  kPassthrough = 2,  // the passthrough device (mapped or emulated)
  kIommu = 3,        // the simulator's IOMMU model (DMA remapping)
  kDisk = 4,         // the disk image itself (flushes at run end)
  kMax,
};
std::string_view to_string(DeviceKind kind);  // "ata", "virtio-blk", … ; "?" if unknown

// The fields of DeviceEvent each action fills (0 otherwise):
enum class DeviceAction : uint8_t {
  kRegisterRead = 0,   // command: register offset; value: the value read; count: access bytes
  kRegisterWrite = 1,  // command: register offset; value: the value written; count: access bytes
  kCommand = 2,        // command: the opcode / request type; address: first sector; count: sectors
  kData = 3,           // count: data-port accesses (words for ATA); bytes: bytes moved
  kComplete = 4,       // command: the opcode; status: the status after; count: sectors done
  kError = 5,          // command: the opcode; status: status; value: error register / reason code
  kFlush = 6,          // the disk's writes were made durable (command: who asked)
  kNotify = 7,         // virtio: command: queue index (the guest's doorbell; one VM exit)
  kChain = 8,          // virtio: a descriptor chain walked: command: request type; address:
                       //   sector; count: descriptors; bytes: data bytes; value: head index
  kUsed = 9,           // virtio: value: the used ring's index after the device's update
  kNeedsReset = 10,    // virtio: the device entered DEVICE_NEEDS_RESET; value: reason code
  kDma = 11,           // a device wrote/read guest memory: address: device address (IOVA/GPA);
                       //   bytes; value: the GPA it reached
  kIommuFault = 12,    // a DMA the IOMMU blocked: address: the device address; bytes
  kMax,
};
std::string_view to_string(DeviceAction action);  // "register_read", … ; "?" if unknown

// ATA command names (ATA8-ACS): 0xEC "IDENTIFY DEVICE", 0x20 "READ SECTORS", …; "?" otherwise.
std::string_view ata_command_name(uint8_t opcode);
// virtio-blk request types (virtio 1.1 §5.2.6): 0 "IN", 1 "OUT", 4 "FLUSH", 8 "GET_ID"; "?".
std::string_view virtio_blk_type_name(uint32_t type);

}  // namespace trapscope::trace
