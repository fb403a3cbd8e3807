// visualizer/platform/window.hpp — the platform layer: a GLFW window with an OpenGL 3.3 core
// context, the glad loader generated at build time, Dear ImGui's GLFW and OpenGL3 backends
// (Debian's libimgui-dev; its OpenGL3 backend loads GL with its own small loader, which uses
// different symbol names from glad's and coexists with it), and PNG screenshots of the back
// buffer with stb_image_write (Debian's libstb-dev). Nothing else in the visualizer includes
// GLFW or GL headers.
#pragma once

#include <memory>
#include <string>

#include "visualizer/app/app.hpp"

struct GLFWwindow;

namespace trapscope::viz::platform {

struct WindowOptions {
  int width = 1600;
  int height = 900;
  std::string title = "trapscope";
  bool vsync = true;
};

class Window {
 public:
  // Creates the window, the GL context and the ImGui backends (the ImGui context must exist).
  // nullptr with *error set when there is no display or no OpenGL 3.3.
  static std::unique_ptr<Window> open(const WindowOptions& options, std::string* error);
  ~Window();
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;

  bool should_close() const;
  void poll_events();
  void wait_events(double timeout_s);
  void begin_frame();  // backends' NewFrame; then call ImGui::NewFrame()
  void render();       // after ImGui::Render(): clear and draw ImGui's draw data
  // Writes the back buffer (what render() drew) as a PNG. Call before present().
  bool screenshot(const std::string& path, std::string* error);
  void present();
  std::string renderer() const;  // GL_RENDERER, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
  int framebuffer_width() const;
  int framebuffer_height() const;

  static int key_index(Key key);  // the ImGui key index of an app key (GLFW key codes)

 private:
  Window() = default;
  GLFWwindow* window_ = nullptr;
  bool backends_ = false;
};

}  // namespace trapscope::viz::platform
