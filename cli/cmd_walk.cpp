// `trapscope walk GUEST --gva ADDR [--at-exit N]`: run a guest until its N-th VM exit, then
// reconstruct the guest's page walk of each address from the guest's own tables in guest memory
// (the VMM's view: it reads memory, the hardware is not asked), and follow the guest-physical
// result to the host: GPA → host-virtual address in the memory slot → host-physical frame
// (/proc/self/pagemap). Works on KVM and on the simulator.
#include <cinttypes>
#include <cstdio>

#include "backend/backend.hpp"
#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/guest_file.hpp"
#include "cli/options.hpp"
#include "trace/page_walk.hpp"
#include "platform/guest_paging.hpp"
#include "vmm/host_frame.hpp"

namespace trapscope::cli {
namespace {

struct WalkOptions {
  std::string guest;
  std::string mode;
  std::vector<uint64_t> gvas;
  uint64_t at_exit = 0;
  uint64_t mem_mib = 16;
  double timeout_s = 10;
  std::string backend;
};

void print_walk(const backend::Backend& m, const x86::CpuState& regs, uint64_t gva) {
  const auto mem = m.memory();
  const platform::PagingRegs pr{regs.cr0, regs.cr3, regs.cr4, regs.efer};
  const trace::PageWalkEvent w = platform::guest_walk(mem, pr, gva);
  std::printf("GVA 0x%" PRIx64 " (%s paging", gva,
              std::string(trace::walk_structure_name(w.header.flags)).c_str());
  const auto refs = trace::decode_walk(w);
  for (const auto& r : refs) {
    std::printf(", %s index %u = bits %u:%u", std::string(r.level_name).c_str(), r.index,
                r.index_hi, r.index_lo);
  }
  std::printf(")\n");
  for (const auto& r : refs) {
    std::printf("  %-4s [%3u] at GPA 0x%-8" PRIx64 " = 0x%016" PRIx64 "  %s%s\n",
                std::string(r.level_name).c_str(), r.index, r.entry_address, r.entry,
                r.flags.c_str(), r.fault ? "  <- the walk stops here (#PF)" : "");
  }
  if (w.faulted) {
    std::printf("  not mapped: an access would raise #PF in the guest\n\n");
    return;
  }
  const uint64_t gpa = w.physical;
  std::printf("  -> GPA 0x%" PRIx64 "\n", gpa);
  if (gpa >= mem.size()) {
    std::printf("  GPA is outside guest RAM (%zu MiB): an access is MMIO, no host memory\n\n",
                mem.size() >> 20);
    return;
  }
  const uint8_t* hva = mem.data() + gpa;
  if (m.kind() == backend::Kind::kKvm) {
    std::printf("  -> host-virtual %p (memory slot 0: GPA 0x0-0x%zx at host-virtual %p, "
                "KVM_SET_USER_MEMORY_REGION)\n",
                static_cast<const void*>(hva), mem.size() - 1, static_cast<const void*>(mem.data()));
  } else {
    std::printf("  -> host-virtual %p (the simulator's guest-memory buffer at %p)\n",
                static_cast<const void*>(hva), static_cast<const void*>(mem.data()));
  }
  std::string why;
  const auto f = vmm::host_frame(hva, &why);
  if (!f) {
    std::printf("  host-physical: unknown (%s)\n\n", why.c_str());
  } else if (!f->present) {
    std::printf("  host-physical: none (the host page is %s)\n\n",
                f->swapped ? "swapped out" : "not resident yet: the host has not touched it");
  } else if (!f->pfn_visible) {
    std::printf("  host-physical: hidden by the host (/proc/self/pagemap shows PFN 0: it needs "
                "CAP_SYS_ADMIN, i.e. run as root)\n\n");
  } else {
    std::printf("  -> host-physical 0x%" PRIx64 " (frame 0x%" PRIx64 ", /proc/self/pagemap)\n\n",
                f->pfn * 4096 + (f->host_virtual & 0xFFF), f->pfn);
  }
}

int walk(const WalkOptions& o) {
  std::string error;
  auto guest = resolve_guest(o.guest, o.mem_mib << 20, &error);
  if (!guest) {
    std::fprintf(stderr, "trapscope walk: %s\n", error.c_str());
    return kBadInput;
  }
  backend::Config cfg;
  cfg.memory_bytes = o.mem_mib << 20;
  cfg.mode = *platform::parse_boot_mode(o.mode.empty() ? guest->default_mode : o.mode);
  backend::Kind kind = o.backend == "sim" ? backend::Kind::kSim : backend::Kind::kKvm;
  std::string why;
  if (o.backend.empty() && !backend::kvm_usable(&why)) {
    std::fprintf(stderr, "trapscope walk: KVM is not usable here (%s); using the simulator\n",
                 why.c_str());
    kind = backend::Kind::kSim;
  }
  std::unique_ptr<backend::Backend> m;
  try {
    m = backend::make_backend(kind, cfg);
    m->load(guest->image);
  } catch (const platform::LoadError& e) {
    std::fprintf(stderr, "trapscope walk: cannot load '%s': %s\n", guest->name.c_str(), e.what());
    return kBadInput;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope walk: KVM is not usable: %s\n", e.what());
    return kNoKvm;
  }
  backend::RunOutcome r;
  try {
    r = m->run({o.timeout_s, o.at_exit, 0}, nullptr);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trapscope walk: %s\n", e.what());
    return kGuestFault;
  }
  const x86::CpuState regs = m->registers();
  std::printf("%s on %s stopped (%s) after %" PRIu64 " VM exits at rip=0x%" PRIx64
              "; CR0=0x%" PRIx64 " CR3=0x%" PRIx64 " CR4=0x%" PRIx64 " EFER=0x%" PRIx64 "\n",
              guest->name.c_str(), kind == backend::Kind::kKvm ? "KVM" : "the simulator",
              std::string(trace::to_string(r.reason)).c_str(), r.exits, regs.rip, regs.cr0,
              regs.cr3, regs.cr4, regs.efer);
  if (o.at_exit && r.exits < o.at_exit) {
    std::printf("(the run ended before VM exit %" PRIu64 ": walking in the final state)\n",
                o.at_exit);
  }
  std::printf("\n");
  for (uint64_t gva : o.gvas) print_walk(*m, regs, gva);
  return kOk;
}

}  // namespace

void add_walk_command(CLI::App& app, int* status) {
  auto o = std::make_shared<WalkOptions>();
  CLI::App* cmd = app.add_subcommand(
      "walk", "Stop a guest at a VM exit and show the guest's page walk of an address, down to "
              "the host-physical frame");
  cmd->add_option("GUEST", o->guest, "A built-in guest or a flat binary file")->required();
  cmd->add_option("--gva", o->gvas, "Guest-virtual (linear) address to walk; may be repeated")
      ->required();
  add_count_option(cmd, "--at-exit", &o->at_exit,
                   "Stop after this many VM exits (0: at the end of the run)");
  cmd->add_option("--mode", o->mode, "CPU mode the guest is entered in")
      ->check(CLI::IsMember({"real", "protected", "long"}));
  cmd->add_option("--mem", o->mem_mib, "Guest memory in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{3584}))
      ->capture_default_str();
  add_seconds_option(cmd, "--timeout", &o->timeout_s, "Wall-clock limit, seconds");
  cmd->add_option("--backend", o->backend, "kvm or sim; default: kvm where usable")
      ->check(CLI::IsMember({"kvm", "sim"}));
  cmd->footer("The host-physical frame comes from /proc/self/pagemap, which shows frame numbers "
              "only to root (CAP_SYS_ADMIN).\nExit status: 0 done; 2 bad input; 3 guest fault; "
              "5 no KVM.");
  cmd->callback([o, status] { *status = walk(*o); });
}

}  // namespace trapscope::cli
