// visualizer/core/words.hpp — the language of the visualizer's own words. Texts the visualizer
// adds come in Spanish and English, chosen as the lesson pane chooses (`--lang`, the pane's
// ES/EN switch, else LANG: lessons/step.hpp lang_from_environment), written side by side where
// they are used: es_en(lang, "español", "English").
#pragma once

#include "lessons/lesson.hpp"

namespace trapscope::viz {

using lessons::Lang;

inline const char* es_en(Lang lang, const char* es, const char* en) {
  return lang == Lang::kEs ? es : en;
}

}  // namespace trapscope::viz
