#include "visualizer/platform/window.hpp"

// glad first: it provides the GL declarations; GLFW must not include its own.
#include <glad/gl.h>
#define GLFW_INCLUDE_NONE
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <stb_image_write.h>

#include <vector>

namespace trapscope::viz::platform {
namespace {

std::string g_glfw_error;

void on_glfw_error(int code, const char* text) {
  g_glfw_error = "GLFW error " + std::to_string(code) + ": " + (text ? text : "?");
}

}  // namespace

std::unique_ptr<Window> Window::open(const WindowOptions& o, std::string* error) {
  glfwSetErrorCallback(on_glfw_error);
  if (!glfwInit()) {
    *error = "cannot open a window (" + g_glfw_error +
             "); is there a display? Without one, run under Xvfb: xvfb-run -a trapscope gui …";
    return nullptr;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GLFW_TRUE);
  std::unique_ptr<Window> w(new Window());
  w->window_ = glfwCreateWindow(o.width, o.height, o.title.c_str(), nullptr, nullptr);
  if (!w->window_) {
    *error = "cannot create an OpenGL 3.3 core window (" + g_glfw_error + ")";
    return nullptr;
  }
  glfwMakeContextCurrent(w->window_);
  glfwSwapInterval(o.vsync ? 1 : 0);
  if (gladLoadGL(glfwGetProcAddress) == 0) {
    *error = "cannot load the OpenGL functions (glad)";
    return nullptr;
  }
  if (!ImGui_ImplGlfw_InitForOpenGL(w->window_, true) || !ImGui_ImplOpenGL3_Init("#version 330 core")) {
    *error = "cannot start Dear ImGui's GLFW/OpenGL3 backends";
    return nullptr;
  }
  w->backends_ = true;
  return w;
}

Window::~Window() {
  if (backends_) {
    ImGui_ImplOpenGL3_Shutdown();
    ImGui_ImplGlfw_Shutdown();
  }
  if (window_) glfwDestroyWindow(window_);
  glfwTerminate();
}

bool Window::should_close() const { return glfwWindowShouldClose(window_); }
void Window::poll_events() { glfwPollEvents(); }
void Window::wait_events(double timeout_s) { glfwWaitEventsTimeout(timeout_s); }

void Window::begin_frame() {
  ImGui_ImplOpenGL3_NewFrame();
  ImGui_ImplGlfw_NewFrame();
}

void Window::render() {
  int w = 0, h = 0;
  glfwGetFramebufferSize(window_, &w, &h);
  glViewport(0, 0, w, h);
  glClearColor(0.07f, 0.08f, 0.09f, 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);
  ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
}

bool Window::screenshot(const std::string& path, std::string* error) {
  int w = 0, h = 0;
  glfwGetFramebufferSize(window_, &w, &h);
  if (w <= 0 || h <= 0) {
    *error = "the window has no pixels";
    return false;
  }
  std::vector<unsigned char> pixels(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, w, h, GL_RGB, GL_UNSIGNED_BYTE, pixels.data());
  if (glGetError() != GL_NO_ERROR) {
    *error = "glReadPixels failed";
    return false;
  }
  stbi_flip_vertically_on_write(1);  // GL's rows go bottom-up
  if (!stbi_write_png(path.c_str(), w, h, 3, pixels.data(), w * 3)) {
    *error = "cannot write " + path;
    return false;
  }
  return true;
}

void Window::present() { glfwSwapBuffers(window_); }

std::string Window::renderer() const {
  const auto* r = reinterpret_cast<const char*>(glGetString(GL_RENDERER));
  const auto* v = reinterpret_cast<const char*>(glGetString(GL_VERSION));
  return std::string(r ? r : "?") + ", OpenGL " + (v ? v : "?");
}

int Window::framebuffer_width() const {
  int w = 0, h = 0;
  glfwGetFramebufferSize(window_, &w, &h);
  return w;
}

int Window::framebuffer_height() const {
  int w = 0, h = 0;
  glfwGetFramebufferSize(window_, &w, &h);
  return h;
}

int Window::key_index(Key k) {
  switch (k) {
    case Key::kF5: return GLFW_KEY_F5;
    case Key::kF8: return GLFW_KEY_F8;
    case Key::kF10: return GLFW_KEY_F10;
    case Key::kSpace: return GLFW_KEY_SPACE;
    case Key::kS: return GLFW_KEY_S;
    case Key::kB: return GLFW_KEY_B;
    case Key::kX: return GLFW_KEY_X;
    case Key::kR: return GLFW_KEY_R;
    case Key::kE: return GLFW_KEY_E;
    case Key::kW: return GLFW_KEY_W;
    case Key::kT: return GLFW_KEY_T;
    case Key::kA: return GLFW_KEY_A;
    case Key::kF: return GLFW_KEY_F;
    case Key::kCount: break;
  }
  return GLFW_KEY_UNKNOWN;
}

}  // namespace trapscope::viz::platform
