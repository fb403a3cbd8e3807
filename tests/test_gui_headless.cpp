// The visualizer's app and panels without a window: Dear ImGui runs headless (a built font
// atlas, a fixed display size, input written into ImGuiIO by hand), so tests can click the
// timeline, press the shortcut keys and draw every panel in every machine state.
#include <catch2/catch.hpp>

#include <imgui.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "backend/backend.hpp"
#include "guests/guest_catalog.hpp"
#include "platform/block.hpp"
#include "trace/recorder.hpp"
#include "visualizer/app/app.hpp"
#include "visualizer/app/theme.hpp"
#include "visualizer/core/model.hpp"

using namespace trapscope;
using namespace trapscope::viz;
using trace::EventType;

namespace {

class RecordingDriver final : public Driver {
 public:
  RecordingDriver() {
    caps.live = true;
    caps.step_back = true;
    caps.step_kinds = ~0u;
  }
  void send(Command c) override { sent.push_back(std::move(c)); }
  void set_speed(double ips) override { speed = ips; }
  bool poll(Model&) override { return false; }
  bool busy() const override { return false; }
  const Capabilities& capabilities() const override { return caps; }
  std::vector<Command> sent;
  Capabilities caps;
  double speed = 0;
};

int key_index(Key k) { return 300 + static_cast<int>(k); }

struct Headless {
  Headless() {
    ImGui::CreateContext();
    ImGuiIO& io = ImGui::GetIO();
    io.IniFilename = nullptr;
    io.DisplaySize = ImVec2(1600, 900);
    io.DeltaTime = 1.0f / 60.0f;
    fonts = theme::load_fonts(1.0f);
    theme::apply_style();
    unsigned char* px;
    int w, h;
    io.Fonts->GetTexDataAsRGBA32(&px, &w, &h);
  }
  ~Headless() { ImGui::DestroyContext(); }
  void frame(App& app) {
    ImGui::NewFrame();
    app.frame();
    ImGui::Render();
  }
  // A left click at `pos`, as a user's: the pointer moves there, the button goes down for a
  // frame, then up.
  void click(App& app, ImVec2 pos) {
    ImGuiIO& io = ImGui::GetIO();
    io.MousePos = pos;
    frame(app);
    io.MouseDown[0] = true;
    frame(app);
    io.MouseDown[0] = false;
    frame(app);
  }
  theme::Fonts fonts;
};

void add(Model& m, EventType type, uint64_t rip, uint8_t cpl, uint32_t reason = 2) {
  EventRecord r{};
  switch (type) {
    case EventType::kVmExit:
      r.exit.header = trace::make_header<trace::VmExitEvent>(type);
      r.exit.reason = reason;
      r.exit.insn_len = 1;
      r.exit.insn[0] = 0xEE;
      r.exit.payload.io = {0xE9, 1, 1, 1, 'A', {}};
      break;
    case EventType::kException:
      r.exception.header = trace::make_header<trace::ExceptionEvent>(type);
      r.exception.vector = 13;
      r.exception.has_error_code = 1;
      break;
    case EventType::kRingTransition:
      r.ring.header = trace::make_header<trace::RingTransitionEvent>(type);
      r.ring.from_cpl = cpl == 0 ? 3 : 0;
      r.ring.to_cpl = cpl;
      r.ring.cause = trace::RingCause::kIret;
      break;
    default:
      r.insn.header = trace::make_header<trace::InstructionEvent>(EventType::kInstruction);
      r.insn.len = 1;
      r.insn.bytes[0] = 0x90;
      break;
  }
  r.header.rip = rip;
  r.header.cpl = cpl;
  r.header.cpu_mode = trace::CpuMode::kLong64;
  m.append(r.header);
}

void fill(Model& m) {
  for (int i = 0; i < 4; ++i) add(m, EventType::kInstruction, 0x8000 + i, 0);
  add(m, EventType::kVmExit, 0x8004, 0);              // 4
  add(m, EventType::kRingTransition, 0x9000, 3);      // 5
  add(m, EventType::kInstruction, 0x9000, 3);         // 6
  add(m, EventType::kException, 0x9001, 3);           // 7
  add(m, EventType::kRingTransition, 0x8100, 0);      // 8
  for (int i = 0; i < 7; ++i) add(m, EventType::kInstruction, 0x8100 + i, 0);
  add(m, EventType::kVmExit, 0x8107, 0, 5);           // 16: hlt
  MachineState s;
  s.status.state = RunState::kIdle;
  s.status.backend = "simulator";
  s.status.source = "test";
  s.stop = true;
  s.has_registers = true;
  s.registers.cr0 = x86::kCr0Pe | x86::kCr0Pg;
  s.registers.efer = x86::kEferLme | x86::kEferLma;
  s.registers.seg[x86::kCs].l = 1;
  s.registers.seg[x86::kCs].selector = 0x08;
  s.registers.rip = 0x8108;
  s.console.assign(1, 'A');  // (= "A" trips GCC 12's false -Wrestrict, bug 105329)
  s.select = 16;
  m.apply(s);
}

}  // namespace

TEST_CASE("gui headless: clicking an event in the timeline selects it everywhere", "[gui]") {
  Headless h;
  Model m;
  fill(m);
  RecordingDriver d;
  App app(d, m, h.fonts, &key_index);
  for (int i = 0; i < 3; ++i) h.frame(app);
  REQUIRE(m.selected() == 16);

  // The exception (#7) sits in the timeline's third lane.
  const TimelineState& t = app.timeline_state();
  REQUIRE(t.data_w > 100);
  const double span = t.view_end - t.view_start;
  const float x = t.data_x0 + static_cast<float>((7.5 - t.view_start) / span * t.data_w);
  const float y = (t.lane_top[2] + t.lane_bottom[2]) * 0.5f;
  h.click(app, ImVec2(x, y));
  CHECK(m.selected() == 7);
  ImGuiIO& io = ImGui::GetIO();

  SECTION("a click on empty lane space selects nothing new") {
    h.click(app, ImVec2(t.data_x0 + static_cast<float>((1.5 - t.view_start) / span * t.data_w),
                        (t.lane_top[2] + t.lane_bottom[2]) * 0.5f));
    CHECK(m.selected() == 7);
  }
  SECTION("the wheel zooms around the pointer") {
    const double before = t.view_end - t.view_start;
    io.MouseWheel = 2;
    h.frame(app);
    io.MouseWheel = 0;
    h.frame(app);
    CHECK(t.view_end - t.view_start < before);
  }
  SECTION("dragging pans a zoomed-in view and keeps its span") {
    app.set_timeline_view(4, 12);
    h.frame(app);
    const double start = t.view_start, width = t.view_end - t.view_start;
    io.MousePos = ImVec2(t.data_x0 + t.data_w * 0.25f, (t.lane_top[0] + t.lane_bottom[0]) * 0.5f);
    h.frame(app);
    io.MouseDown[0] = true;
    h.frame(app);
    for (int i = 0; i < 8; ++i) {  // drag right by half the lane width: earlier events come in
      io.MousePos.x += t.data_w * 0.5f / 8;
      h.frame(app);
    }
    io.MouseDown[0] = false;
    h.frame(app);
    CHECK(t.view_start < start - 1.0);
    CHECK(t.view_end - t.view_start == Approx(width));
  }
}

TEST_CASE("gui headless: a timeline view past 2^53 events draws a frame (grid lines bounded)",
          "[gui]") {
  // Far from 0 a double's step exceeds the grid's: `t += step` left t unchanged and the frame
  // never ended.
  Headless h;
  Model m;
  fill(m);
  RecordingDriver d;
  App app(d, m, h.fonts, &key_index);
  h.frame(app);
  const double far = 18014398509481984.0;  // 2^54
  app.set_timeline_view(far, far + 16);
  h.frame(app);
  h.frame(app);
  CHECK(app.timeline_state().view_end <= 64);  // then the view is brought back to the data
}

TEST_CASE("gui headless: the shortcut keys send the stepping commands", "[gui]") {
  Headless h;
  Model m;
  fill(m);
  RecordingDriver d;
  App app(d, m, h.fonts, &key_index);
  h.frame(app);
  ImGuiIO& io = ImGui::GetIO();
  auto press = [&](Key k, bool ctrl = false, bool shift = false) {
    io.KeyCtrl = ctrl;
    io.KeyShift = shift;
    io.KeysDown[key_index(k)] = true;
    h.frame(app);
    io.KeysDown[key_index(k)] = false;
    io.KeyCtrl = io.KeyShift = false;
    h.frame(app);
    REQUIRE_FALSE(d.sent.empty());
    const Command c = d.sent.back();
    d.sent.clear();
    return c;
  };
  CHECK(press(Key::kS).op == Command::Op::kStep);
  CHECK(press(Key::kF10).op == Command::Op::kStep);
  CHECK(press(Key::kF10, false, true).op == Command::Op::kStepBack);
  CHECK(press(Key::kB).op == Command::Op::kStepBack);
  Command c = press(Key::kX);
  CHECK(c.op == Command::Op::kStepTo);
  CHECK(c.kind == StepKind::kVmExit);
  CHECK(press(Key::kR).kind == StepKind::kRing);
  CHECK(press(Key::kE).kind == StepKind::kException);
  CHECK(press(Key::kW).kind == StepKind::kPageWalk);
  CHECK(press(Key::kA).kind == StepKind::kAny);
  CHECK(press(Key::kF5).op == Command::Op::kRun);
  CHECK(press(Key::kR, true).op == Command::Op::kReset);

  SECTION("while running, F5 pauses and stepping keys do nothing") {
    MachineState s;
    s.status.state = RunState::kRunning;
    m.apply(s);
    CHECK(press(Key::kSpace).op == Command::Op::kPause);
    io.KeysDown[key_index(Key::kS)] = true;
    h.frame(app);
    io.KeysDown[key_index(Key::kS)] = false;
    h.frame(app);
    CHECK(d.sent.empty());
  }
}

TEST_CASE("gui headless: every panel draws in every machine state", "[gui]") {
  Headless h;
  RecordingDriver d;
  for (RunState state : {RunState::kStarting, RunState::kIdle, RunState::kRunning,
                         RunState::kFinished, RunState::kError, RunState::kTrace}) {
    Model m;
    if (state != RunState::kStarting) fill(m);
    MachineState s;
    s.status.state = state;
    s.status.message = "a message";
    s.status.message_is_error = state == RunState::kError;
    m.apply(s);
    App app(d, m, h.fonts, &key_index);
    app.show_window("breakpoints", true);
    app.show_window("help", true);
    for (int i = 0; i < 3; ++i) h.frame(app);
    INFO("state " << to_string(state));
    CHECK(ImGui::GetDrawData()->TotalVtxCount > 2000);
  }
}

TEST_CASE("gui headless: the page-walk window shows a walk, a 2D walk and a shadow entry",
          "[gui][paging]") {
  Headless h;
  RecordingDriver d;
  Model m;
  EventRecord w{};
  w.walk.header = trace::make_header<trace::PageWalkEvent>(EventType::kPageWalk);
  w.walk.header.flags = trace::kWalk4Level;
  w.walk.linear = 0x200000;
  w.walk.levels = 4;
  w.walk.level[0] = {0x20000, 0x21023};
  w.walk.level[1] = {0x21000, 0x22023};
  w.walk.level[2] = {0x22008, 0x24023};
  w.walk.level[3] = {0x24000, 0x100063};
  w.walk.physical = 0x100000;
  m.append(w.header);
  EventRecord n{};
  n.nested_walk.header = trace::make_header<trace::NestedWalkEvent>(EventType::kNestedWalk);
  n.nested_walk.header.flags = trace::kWalk4Level;
  n.nested_walk.nrefs = 24;
  n.nested_walk.guest_levels = 4;
  for (unsigned i = 0; i < 24; ++i) {
    auto& r = n.nested_walk.ref[i];
    r.step = static_cast<uint8_t>(i / 5);
    r.kind = (i % 5 == 4) ? trace::NestedRefKind::kGuest : trace::NestedRefKind::kEpt;
    r.level = static_cast<uint8_t>(r.kind == trace::NestedRefKind::kGuest ? 4 - i / 5 : 4 - i % 5);
    r.entry = 0x1000 * i + 7;
  }
  m.append(n.header);
  EventRecord s{};
  s.shadow.header = trace::make_header<trace::ShadowPagingEvent>(EventType::kShadowPaging);
  s.shadow.action = trace::ShadowAction::kHiddenFault;
  s.shadow.guest_entry = 0x8063;
  s.shadow.shadow_entry = 0x8003;
  m.append(s.header);
  App app(d, m, h.fonts, &key_index);
  app.show_window("page walk", true);
  int vertices[3] = {};
  for (int e = 0; e < 3; ++e) {
    m.select(e);
    for (int i = 0; i < 2; ++i) h.frame(app);
    vertices[e] = ImGui::GetDrawData()->TotalVtxCount;
  }
  m.select(-1);
  for (int i = 0; i < 2; ++i) h.frame(app);
  const int none = ImGui::GetDrawData()->TotalVtxCount;
  // Each kind draws its own table (more than the "select a walk" hint).
  for (int v : vertices) CHECK(v > none);
  CHECK(vertices[1] > vertices[0]);  // the 2D grid has 24 cells
}

TEST_CASE("gui headless: breakpoints and filters go through the actions", "[gui]") {
  Headless h;
  Model m;
  fill(m);
  RecordingDriver d;
  App app(d, m, h.fonts, &key_index);
  h.frame(app);
  app.toggle_address_breakpoint(0x8100);
  REQUIRE(m.breakpoints().size() == 1);
  REQUIRE_FALSE(d.sent.empty());
  CHECK(d.sent.back().op == Command::Op::kSetBreakpoints);
  CHECK(d.sent.back().breakpoints.size() == 1);
  app.toggle_address_breakpoint(0x8100);
  CHECK(m.breakpoints().empty());
  CHECK(d.sent.back().breakpoints.empty());
  std::string err;
  REQUIRE(app.set_filter("exit", &err));
  m.advance_filter(100);
  CHECK(m.visible_count() == 2);
  app.set_speed(50);
  CHECK(d.speed == 50);
  h.frame(app);
}

// [SECTION] Devices panel (visualizer/core/devices_view.hpp, visualizer/panels/devices_panel.cpp)

namespace {
// The events of a disk-virtio run on the simulator over a pattern disk (tests/test_virtio_guest.cpp
// checks the run itself).
void fill_disk_virtio(Model& m) {
  const auto g = guests::find("disk-virtio");
  REQUIRE(g);
  backend::Config cfg;
  cfg.mode = platform::BootMode::kProtected;
  cfg.add_disks = [](platform::Devices& d) {
    auto disk = std::make_shared<platform::MemoryBlock>(128);
    for (uint64_t i = 0; i < disk->bytes().size(); ++i) {
      disk->bytes()[i] = static_cast<uint8_t>((i >> 9) * 0x1D + i);
    }
    d.disks.push_back(disk);
  };
  auto b = backend::make_backend(backend::Kind::kSim, cfg);
  b->load(g->image);
  trace::Recorder rec;
  REQUIRE(b->run({30.0}, &rec).exit_code == 0);
  for (size_t i = 0; i < rec.size(); ++i) m.append(rec.at(i));
}
}  // namespace

TEST_CASE("devices view: a disk-virtio run's registers, rings and sector map", "[gui][virtio]") {
  Model m;
  fill_disk_virtio(m);
  DevicesState st;
  update_devices(m, st);
  REQUIRE(st.view.devices().size() == 1);
  const DeviceModel& d = st.view.devices()[0];
  CHECK(d.kind == trace::DeviceKind::kVirtioBlk);
  CHECK(d.registers.at(0x070).value == 0x0F);  // Status: ACK|DRIVER|FEATURES_OK|DRIVER_OK
  CHECK(d.registers.at(0x000).value == 0x74726976);
  CHECK(d.queue_size == 32);
  CHECK(d.desc == 0x10000);
  CHECK(d.notifies == 5);
  CHECK(d.commands == 13);
  CHECK(d.used_idx == 13);
  CHECK(d.avail_ring.size() == 32);
  CHECK(d.avail_ring[1].head == 0);   // the first read of batch 2 (descriptors 0..2)
  CHECK(d.avail_ring[2].head == 3);
  CHECK(d.used_ring[12].type == 0);   // the read back
  const auto& map = st.view.sector_maps().at(0);
  REQUIRE(map.size() == 80);
  CHECK(std::all_of(map.begin(), map.begin() + 64, [](SectorState s) { return s == SectorState::kRead; }));
  CHECK(std::all_of(map.begin() + 64, map.end(), [](SectorState s) { return s == SectorState::kFlushed; }));
  // A truncation (step back) rebuilds from the events still held.
  const size_t half = m.lane(EventType::kDevice)[m.lane(EventType::kDevice).size() / 2];
  m.truncate(half);
  update_devices(m, st);
  CHECK(st.view.devices()[0].commands < 13);
}

TEST_CASE("gui headless: the Devices panel opens at the first device event and draws",
          "[gui][virtio]") {
  Headless h;
  RecordingDriver drv;
  Model m;
  App app(drv, m, h.fonts, &key_index);
  h.frame(app);
  CHECK_FALSE(app.window_shown("devices"));
  fill_disk_virtio(m);
  for (int i = 0; i < 3; ++i) h.frame(app);
  CHECK(app.window_shown("devices"));
  CHECK(ImGui::GetDrawData()->TotalVtxCount > 2000);
}
