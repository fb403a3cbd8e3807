// The Devices panel (visualizer/panels/devices_panel.hpp). Everything shown comes from device events
// (engine → events → DevicesView → this view); nothing here reads a machine.
#include "visualizer/panels/devices_panel.hpp"

#include <algorithm>
#include <cstdio>
#include <string>

#include "platform/virtio_mmio.hpp"
#include "platform/virtqueue.hpp"

namespace trapscope::viz {

namespace {

const char* T(const DevicesState& st, const char* en, const char* es) {
  return st.lang == lessons::Lang::kEs ? es : en;
}

std::string register_label(trace::DeviceKind kind, uint32_t offset) {
  if (kind == trace::DeviceKind::kVirtioBlk) return platform::register_name(offset);
  char b[24];
  std::snprintf(b, sizeof b, "+0x%x", offset);
  return b;
}

std::string activity_text(const DeviceModel& d, const DeviceActivity& a) {
  char b[160];
  const std::string_view action = trace::to_string(a.action);
  switch (a.action) {
    case trace::DeviceAction::kChain:
      std::snprintf(b, sizeof b, "#%u chain %s head=%llu sector=%llu desc=%u bytes=%u status=%u",
                    a.event, std::string(trace::virtio_blk_type_name(a.command)).c_str(),
                    static_cast<unsigned long long>(a.value),
                    static_cast<unsigned long long>(a.address), a.count, a.bytes, a.status);
      break;
    case trace::DeviceAction::kCommand:
      std::snprintf(b, sizeof b, "#%u command %s lba=%llu count=%u", a.event,
                    d.kind == trace::DeviceKind::kAta
                        ? std::string(trace::ata_command_name(static_cast<uint8_t>(a.command))).c_str()
                        : std::to_string(a.command).c_str(),
                    static_cast<unsigned long long>(a.address), a.count);
      break;
    case trace::DeviceAction::kNeedsReset:
      std::snprintf(b, sizeof b, "#%u needs_reset: %s", a.event,
                    std::string(platform::to_string(static_cast<platform::VirtqError>(a.value))).c_str());
      break;
    case trace::DeviceAction::kUsed:
      std::snprintf(b, sizeof b, "#%u used idx=%llu", a.event, static_cast<unsigned long long>(a.value));
      break;
    default:
      std::snprintf(b, sizeof b, "#%u %s command=%u value=%llu", a.event,
                    std::string(action).c_str(), a.command, static_cast<unsigned long long>(a.value));
  }
  return b;
}

ImU32 type_color(uint32_t type, uint8_t status) {
  if (status != 0) return theme::kError;
  switch (type) {
    case 0: return IM_COL32(90, 160, 255, 255);   // IN
    case 1: return IM_COL32(255, 170, 70, 255);   // OUT
    case 4: return IM_COL32(120, 220, 140, 255);  // FLUSH
    default: return IM_COL32(180, 140, 255, 255);
  }
}

// One ring as a row of cells (at most 64 drawn); `mark` is the next slot the device takes.
void ring_row(const char* label, const std::vector<RingSlot>& slots, uint32_t mark, bool used) {
  ImGui::TextUnformatted(label);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float cell = 22;
  const size_t n = std::min<size_t>(slots.size(), 64);
  for (size_t i = 0; i < n; ++i) {
    const ImVec2 a(p.x + i * cell, p.y), b(a.x + cell - 2, a.y + cell - 2);
    const RingSlot& s = slots[i];
    dl->AddRectFilled(a, b, s.filled ? type_color(s.type, used ? s.status : 0) : theme::kLaneBg);
    if (i == mark % std::max<size_t>(n, 1)) dl->AddRect(a, b, theme::kSelected);
    if (s.filled) {
      char t[8];
      std::snprintf(t, sizeof t, "%u", s.head);
      dl->AddText(ImVec2(a.x + 2, a.y + 3), IM_COL32(0, 0, 0, 255), t);
    }
  }
  ImGui::Dummy(ImVec2(n * cell, cell));
}

void draw_rings(const DevicesState& st, const DeviceModel& d) {
  char b[200];
  std::snprintf(b, sizeof b, "%s %u  desc 0x%llx  avail 0x%llx  used 0x%llx  used idx %u",
                T(st, "queue 0: size", "cola 0: tamaño"), d.queue_size,
                static_cast<unsigned long long>(d.desc), static_cast<unsigned long long>(d.avail),
                static_cast<unsigned long long>(d.used), d.used_idx);
  ImGui::TextUnformatted(b);
  // Descriptor table: the chains of the requests in the used ring, head .. head + count − 1
  // as the driver laid them out (the events give each chain's head and length).
  std::vector<RingSlot> desc(std::min<uint32_t>(d.queue_size, DevicesView::kMaxRingSlots));
  for (const RingSlot& s : d.used_ring) {
    if (!s.filled) continue;
    for (uint32_t k = 0; k < s.descriptors && s.head + k < desc.size(); ++k) {
      desc[s.head + k] = s;
      desc[s.head + k].head = static_cast<uint16_t>(s.head + k);
    }
  }
  ring_row(T(st, "descriptor table (chains by request type)",
             "tabla de descriptores (cadenas por tipo de petición)"), desc, UINT32_MAX, false);
  ring_row(T(st, "available ring (heads the driver offered)",
             "anillo disponible (cabezas que ofreció el driver)"), d.avail_ring, d.avail_taken, false);
  ring_row(T(st, "used ring (heads the device returned; red = error status)",
             "anillo usado (cabezas que devolvió el dispositivo; rojo = estado de error)"),
           d.used_ring, d.used_idx, true);
}

void draw_sector_map(const DevicesState& st, uint8_t unit) {
  const auto it = st.view.sector_maps().find(unit);
  if (it == st.view.sector_maps().end()) return;
  const auto& map = it->second;
  ImGui::TextUnformatted(T(st, "sector map: blue read, orange written, green flushed",
                           "mapa de sectores: azul leído, naranja escrito, verde volcado (flush)"));
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float cell = 6;
  const size_t per_row = 64, n = std::min<size_t>(map.size(), 64 * 64);
  for (size_t i = 0; i < n; ++i) {
    const ImVec2 a(p.x + (i % per_row) * cell, p.y + (i / per_row) * cell);
    ImU32 c = theme::kLaneBgAlt;
    switch (map[i]) {
      case SectorState::kRead: c = IM_COL32(90, 160, 255, 255); break;
      case SectorState::kWritten: c = IM_COL32(255, 170, 70, 255); break;
      case SectorState::kFlushed: c = IM_COL32(120, 220, 140, 255); break;
      default: break;
    }
    dl->AddRectFilled(a, ImVec2(a.x + cell - 1, a.y + cell - 1), c);
  }
  ImGui::Dummy(ImVec2(per_row * cell, ((n + per_row - 1) / per_row) * cell));
}

}  // namespace

void update_devices(const Model& model, DevicesState& st) {
  const auto& lane = model.lane(trace::EventType::kDevice);
  const bool truncated = lane.size() < st.consumed ||
                         (st.consumed > 0 && static_cast<int64_t>(lane[st.consumed - 1]) != st.last_event);
  if (truncated) {
    st.view.rebuild(model.events(), lane, model.events().size());
    st.consumed = lane.size();
  }
  EventRecord r;
  for (; st.consumed < lane.size(); ++st.consumed) {
    model.events().load(lane[st.consumed], &r);
    st.view.on_event(lane[st.consumed], r.header);
  }
  st.last_event = lane.empty() ? -1 : lane.back();
}

void draw_devices(PanelContext& ctx, DevicesState& st, bool* open) {
  update_devices(ctx.model, st);
  const auto& devices = st.view.devices();
  if (!st.opened_once && !devices.empty()) {  // the first device event opens the panel
    st.opened_once = true;
    *open = true;
  }
  if (!*open) return;
  const ImVec2 disp = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowPos(ImVec2(disp.x * 0.31f, disp.y * 0.25f), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowSize(ImVec2(disp.x * 0.6f, disp.y * 0.7f), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Devices", open)) {
    ImGui::End();
    return;
  }
  if (devices.empty()) {
    ImGui::TextDisabled("%s", T(st, "No device events yet. Run a guest with a disk, e.g. "
                                    "trapscope gui disk-virtio --disk FILE.",
                                "Aún no hay eventos de dispositivo. Ejecuta un invitado con un "
                                "disco, p. ej. trapscope gui disk-virtio --disk FICHERO."));
    ImGui::End();
    return;
  }
  st.device = std::clamp(st.device, 0, static_cast<int>(devices.size()) - 1);
  for (size_t i = 0; i < devices.size(); ++i) {
    const std::string label = std::string(trace::to_string(devices[i].kind)) +
                              std::to_string(devices[i].unit);
    if (i) ImGui::SameLine();
    if (ImGui::RadioButton(label.c_str(), st.device == static_cast<int>(i))) st.device = static_cast<int>(i);
  }
  const DeviceModel& d = devices[st.device];
  ImGui::Text("%s 0x%02x   %s %llu   %s %llu   %s %llu   needs_reset %llu", T(st, "status", "estado"),
              d.status, T(st, "notifies", "avisos"), static_cast<unsigned long long>(d.notifies),
              T(st, "requests", "peticiones"), static_cast<unsigned long long>(d.commands),
              T(st, "errors", "errores"), static_cast<unsigned long long>(d.errors),
              static_cast<unsigned long long>(d.needs_reset));
  ImGui::SameLine();
  help_marker(T(st, "Built from the device events alone (trace/device_event.hpp). Registers in "
                    "yellow changed in the last 4 register accesses. virtio-blk completes by "
                    "polling the used ring: there are no interrupts.",
                "Construido solo a partir de los eventos de dispositivo. Los registros en "
                "amarillo cambiaron en los últimos 4 accesos. virtio-blk termina sondeando el "
                "anillo usado: no hay interrupciones."));
  if (ImGui::BeginTable("regs", 3, ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingFixedFit,
                        ImVec2(0, 0))) {
    ImGui::TableSetupColumn(T(st, "register", "registro"));
    ImGui::TableSetupColumn(T(st, "value", "valor"));
    ImGui::TableSetupColumn(T(st, "event", "evento"));
    ImGui::TableHeadersRow();
    for (const auto& [offset, r] : d.registers) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(register_label(d.kind, offset).c_str());
      ImGui::TableNextColumn();
      char v[24];
      std::snprintf(v, sizeof v, "0x%llx", static_cast<unsigned long long>(r.value));
      const bool changed = d.changed_recently(offset);
      if (changed) ImGui::TableSetBgColor(ImGuiTableBgTarget_RowBg0, theme::kChangedBg);
      mono_text(ctx.fonts, changed ? theme::kChanged : theme::kText, v);
      ImGui::TableNextColumn();
      ImGui::Text("#%u", r.event);
    }
    ImGui::EndTable();
  }
  ImGui::Separator();
  ImGui::TextUnformatted(T(st, "last commands", "últimas órdenes"));
  for (auto it = d.recent.rbegin(); it != d.recent.rend(); ++it) {
    const std::string t = activity_text(d, *it);
    if (ImGui::Selectable(t.c_str(), ctx.model.selected() == it->event)) ctx.actions.select(it->event);
  }
  if (d.kind == trace::DeviceKind::kVirtioBlk) {
    ImGui::Separator();
    draw_rings(st, d);
  }
  ImGui::Separator();
  draw_sector_map(st, d.unit);
  ImGui::End();
}

}  // namespace trapscope::viz
