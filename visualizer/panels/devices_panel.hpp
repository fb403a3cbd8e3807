// visualizer/panels/devices_panel.hpp — the Devices panel's state: a DevicesView (visualizer/core/
// devices_view.hpp) fed from the model's device events as they arrive (rebuilt after a
// truncation), the device shown and the language of its text.
#pragma once

#include <cstdint>

#include "lessons/lesson.hpp"
#include "lessons/step.hpp"
#include "visualizer/core/devices_view.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {

struct DevicesState {
  DevicesView view;
  size_t consumed = 0;         // device events of the model's lane fed to `view`
  int64_t last_event = -1;     // the last one (a truncation + re-run changes it)
  int device = 0;              // index into view.devices()
  bool opened_once = false;
  lessons::Lang lang = lessons::lang_from_environment();  // a lesson's language wins
};

// Feeds `st.view` the device events the model gained (rebuilds after a truncation).
void update_devices(const Model& model, DevicesState& st);
// The Devices window: per device its registers (changes highlighted), the last commands, the
// virtqueue as its three rings, and the disk's sector map. Opens itself at the first device
// event.
void draw_devices(PanelContext& ctx, DevicesState& st, bool* open);

}  // namespace trapscope::viz
