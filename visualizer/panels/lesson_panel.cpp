// The lesson pane: a guided lesson (lessons/README.md) driving the live machine through
// LessonDriver (visualizer/core/lesson_driver.hpp). The matched event is selected in every view,
// as a step-to would select it.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string_view>
#include <vector>

#include "visualizer/core/lesson_driver.hpp"
#include "visualizer/panels/panels.hpp"

namespace trapscope::viz {
namespace {

struct Word {
  std::string text;
  bool strong = false;
  bool code = false;
  bool glued = false;  // no space before it: a style change inside a word (`hlt`, **exit**.)
};

// One paragraph's words with their style. `**` toggles strong, a backquote toggles code.
std::vector<Word> words_of(std::string_view p) {
  std::vector<Word> out;
  Word w;
  bool strong = false, code = false, space = true;
  auto flush = [&] {
    if (!w.text.empty()) out.push_back(w);
    w = Word{};
  };
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (!code && p.compare(i, 2, "**") == 0) {
      flush();
      strong = !strong;
      ++i;
    } else if (c == '`') {
      flush();
      code = !code;
    } else if (c == ' ' || c == '\n' || c == '\t') {
      flush();
      space = true;
    } else {
      if (w.text.empty()) {
        w.strong = strong;
        w.code = code;
        w.glued = !space;
        space = false;
      }
      w.text += c;
    }
  }
  flush();
  return out;
}

const char* tr(lessons::Lang lang, const char* es, const char* en) {
  return lang == lessons::Lang::kEs ? es : en;
}

}  // namespace

void markdown_text(const theme::Fonts& fonts, const std::string& text) {
  const float wrap = ImGui::GetContentRegionAvail().x;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find("\n\n", start);
    if (end == std::string::npos) end = text.size();
    const std::vector<Word> words = words_of(std::string_view(text).substr(start, end - start));
    float x = 0;
    bool first = true;
    for (const Word& w : words) {
      ImFont* f = w.code ? fonts.mono : w.strong ? fonts.bold : fonts.ui;
      ImGui::PushFont(f);
      const float width = ImGui::CalcTextSize(w.text.c_str()).x;
      const float space = ImGui::CalcTextSize(" ").x;
      if (!first && w.glued) {
        ImGui::SameLine(0, 0);
        x += width;
      } else if (!first && x + space + width <= wrap) {
        ImGui::SameLine(0, space);
        x += space + width;
      } else {
        x = width;
      }
      if (w.code) ImGui::PushStyleColor(ImGuiCol_Text, IM_COL32(140, 200, 255, 255));
      ImGui::TextUnformatted(w.text.c_str());
      if (w.code) ImGui::PopStyleColor();
      ImGui::PopFont();
      first = false;
    }
    ImGui::Spacing();
    start = end + 2;
  }
}

// The question's answer: a field (a number; an event: the one selected in the views) or one
// button per option (a choice), two tries with the lesson's hint between them, then the answer.
static void draw_grading(PanelContext& ctx, LessonDriver& d, const lessons::Step& s) {
  const lessons::Lang lang = d.lang();
  const AnswerState& a = d.answer_state(d.current());
  const lessons::Grade& g = *s.grade;
  if (a.right) {
    ImGui::TextColored(theme::to_vec4(theme::kOk), "\u2713 %s", tr(lang, "¡Correcto!", "Right!"));
    return;
  }
  if (a.done()) {
    const StepResult& r = d.result(d.current());
    const std::optional<uint64_t> event =
        r.event >= 0 ? std::optional<uint64_t>(static_cast<uint64_t>(r.event)) : std::nullopt;
    ImGui::TextWrapped("%s %s", tr(lang, "La respuesta:", "The answer:"),
                       lessons::expected_text(g, lang, event).c_str());
    return;
  }
  ImGui::PushID("grading");
  switch (g.kind) {
    case lessons::Grade::Kind::kChoice:
      for (const lessons::Option& o : g.options) {
        if (ImGui::Button((lang == lessons::Lang::kEs ? o.es : o.en).c_str())) d.answer(o.id);
        ImGui::SameLine();
      }
      ImGui::NewLine();
      break;
    case lessons::Grade::Kind::kNumber: {
      std::string& draft = d.draft();
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s", draft.c_str());
      ImGui::SetNextItemWidth(ImGui::CalcTextSize("0x0000000000000").x);
      const bool enter = ImGui::InputText("##answer", buf, sizeof buf,
                                          ImGuiInputTextFlags_EnterReturnsTrue);
      draft = buf;
      ImGui::SameLine();
      if (ImGui::Button(tr(lang, "Comprobar", "Check")) || enter) d.answer(draft);
      break;
    }
    case lessons::Grade::Kind::kEvent:
      if (ImGui::Button(tr(lang, "Comprobar el evento seleccionado", "Check the selected event")))
        d.answer("", ctx.model.selected());
      break;
  }
  if (!a.message.empty()) {
    ImGui::SameLine();
    ImGui::PushStyleColor(ImGuiCol_Text, theme::kError);
    ImGui::TextWrapped("\u2717 %s", a.message.c_str());
    ImGui::PopStyleColor();
  }
  if (a.tries > 0 && s.hint) {
    ImGui::PushFont(ctx.fonts.bold);
    ImGui::TextUnformatted(tr(lang, "Pista:", "Hint:"));
    ImGui::PopFont();
    ImGui::SameLine();
    markdown_text(ctx.fonts, s.hint->in(lang));
  }
  if (ImGui::SmallButton(tr(lang, "ver la respuesta", "show the answer"))) d.give_up();
  ImGui::PopID();
}

// A separator, then `mark` in bold before a Markdown text (the question, the answer).
static void marked_text(const theme::Fonts& fonts, const char* mark, const std::string& text) {
  ImGui::Separator();
  ImGui::PushFont(fonts.bold);
  ImGui::TextUnformatted(mark);
  ImGui::PopFont();
  ImGui::SameLine();
  markdown_text(fonts, text);
}

void draw_lesson(PanelContext& ctx, LessonDriver& d) {
  ImGui::Begin("Lesson");
  const lessons::Lesson& l = d.lesson();
  const lessons::Lang lang = d.lang();
  ImGui::PushFont(ctx.fonts.bold);
  ImGui::TextWrapped("%s %d: %s", tr(lang, "Lección", "Lesson"), l.number,
                     l.title.in(lang).c_str());
  ImGui::PopFont();
  const size_t i = d.current();
  const lessons::Step& s = l.steps[i];
  const StepResult& r = d.result(i);
  ImGui::TextDisabled("%s %zu/%zu · %s, %s, %s paging", tr(lang, "Paso", "Step"), i + 1, d.count(),
                      l.guest.c_str(), d.setup().technique.c_str(), d.setup().paging.c_str());
  const float toggle = ImGui::CalcTextSize("ES EN").x + 2 * ImGui::GetFrameHeight() +
                       3 * ImGui::GetStyle().ItemSpacing.x + ImGui::GetStyle().WindowPadding.x;
  ImGui::SameLine(std::max(ImGui::GetItemRectMax().x - ImGui::GetWindowPos().x + 8, ImGui::GetWindowWidth() - toggle));
  if (ImGui::RadioButton("ES", lang == lessons::Lang::kEs)) d.set_lang(lessons::Lang::kEs);
  ImGui::SameLine();
  if (ImGui::RadioButton("EN", lang == lessons::Lang::kEn)) d.set_lang(lessons::Lang::kEn);

  ImGui::Separator();

  ImGui::BeginChild("lesson text", ImVec2(0, -ImGui::GetFrameHeightWithSpacing() - 4));
  if (s.title) {
    ImGui::PushFont(ctx.fonts.bold);
    ImGui::TextWrapped("%s", s.title->in(lang).c_str());
    ImGui::PopFont();
  }
  markdown_text(ctx.fonts, s.text.in(lang));
  if (s.restart) {
    ImGui::TextColored(theme::to_vec4(theme::kTextDim), "%s",
                       tr(lang, "Este paso vuelve a empezar el invitado.",
                          "This step starts the guest again."));
  }
  if (s.question) marked_text(ctx.fonts, "?", s.question->in(lang));
  if (s.question && s.grade) draw_grading(ctx, d, s);
  const bool has_action = s.run_until || s.restart || s.exits || s.console;
  if (has_action) {
    if (s.run_until) ImGui::TextDisabled("run until %s", s.run_until->describe().c_str());
    ImGui::BeginDisabled(!d.can_run());
    if (ImGui::Button(tr(lang, "Ejecutar paso", "Run step"))) d.run_step();
    ImGui::EndDisabled();
    if (!d.can_run() && r.verdict == Verdict::kNotRun && i > d.next_to_run()) {
      ImGui::SameLine();
      ImGui::TextDisabled("%s", tr(lang, "(primero los pasos anteriores)",
                                   "(run the steps before it first)"));
    } else if (!d.can_run() && r.verdict == Verdict::kNotRun && d.failed()) {
      ImGui::SameLine();
      ImGui::TextDisabled("%s", tr(lang, "(un paso anterior falló)", "(a step before failed)"));
    }
  }
  switch (r.verdict) {
    case Verdict::kRunning:
      ImGui::TextDisabled("%s", tr(lang, "ejecutando…", "running…"));
      break;
    case Verdict::kPassed:
      if (r.event >= 0) {
        ImGui::TextColored(theme::to_vec4(theme::kOk), "\u2713 #%lld", static_cast<long long>(r.event));
        ImGui::SameLine();
        if (ImGui::SmallButton(tr(lang, "seleccionar", "select"))) ctx.actions.select(r.event);
        ImGui::PushFont(ctx.fonts.mono);
        ImGui::TextWrapped("%s", r.event_line.c_str());
        ImGui::PopFont();
      } else {
        ImGui::TextColored(theme::to_vec4(theme::kOk), "\u2713 %s", tr(lang, "comprobado", "checked"));
      }
      if (r.efficiency)
        ImGui::TextWrapped("%s",
                           lessons::efficiency_line(*r.efficiency, d.setup().technique, lang).c_str());
      if (s.answer && d.answer_shown(i)) {
        marked_text(ctx.fonts, "\u2192", s.answer->in(lang));
      } else if (s.answer) {
        ImGui::TextDisabled("%s", tr(lang, "(responde a la pregunta para ver la explicación)",
                                     "(answer the question to see the explanation)"));
      }
      break;
    case Verdict::kFailed:
      ImGui::PushStyleColor(ImGuiCol_Text, theme::kError);
      ImGui::TextWrapped("\u2717 %s", r.failure.c_str());
      ImGui::PopStyleColor();
      if (r.event >= 0 && ImGui::SmallButton(tr(lang, "ver el evento", "show the event"))) {
        ctx.actions.select(r.event);
      }
      break;
    case Verdict::kNotRun:
      break;
  }
  ImGui::EndChild();

  ImGui::BeginDisabled(i == 0 || d.running());
  if (ImGui::Button(tr(lang, "< Anterior", "< Previous"))) d.previous();
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::BeginDisabled(i + 1 >= d.count() || d.running());
  if (ImGui::Button(tr(lang, "Siguiente >", "Next >"))) d.next();
  ImGui::EndDisabled();
  ImGui::SameLine();
  size_t passed = 0;
  for (size_t k = 0; k < d.count(); ++k) passed += d.result(k).verdict == Verdict::kPassed;
  ImGui::TextDisabled("%zu/%zu %s", passed, d.count(), tr(lang, "pasos comprobados", "steps passed"));
  if (d.questions() > 0) {
    ImGui::SameLine();
    ImGui::TextDisabled("· %zu/%zu %s", d.right(), d.questions(),
                        tr(lang, "respuestas correctas", "answers right"));
  }
  ImGui::End();
}

}  // namespace trapscope::viz
