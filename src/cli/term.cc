#include "cli/term.h"

#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <vector>

#include "crypto/secret_bytes.h"

namespace kes::cli {
namespace {

int g_terminal = -1;  // -1: detect
int g_color = -1;

bool StdoutColorCapable() {
  if (!isatty(STDOUT_FILENO)) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && *no_color != '\0') return false;
  const char* term = std::getenv("TERM");
  return term == nullptr || std::string_view(term) != "dumb";
}

std::string Sgr(std::string_view code, std::string_view s) {
  if (!ColorEnabled()) return std::string(s);
  return "\x1b[" + std::string(code) + "m" + std::string(s) + "\x1b[0m";
}

std::string Rgb(uint32_t rgb) {
  return "38;2;" + std::to_string((rgb >> 16) & 0xff) + ";" + std::to_string((rgb >> 8) & 0xff) +
         ";" + std::to_string(rgb & 0xff);
}

void WriteAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return;
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

bool IsTerminal() {
  if (g_terminal >= 0) return g_terminal == 1;
  return isatty(STDOUT_FILENO) || isatty(STDERR_FILENO);
}

bool ColorEnabled() {
  if (g_color >= 0) return g_color == 1;
  return StdoutColorCapable();
}

Status SetColorMode(std::string_view mode) {
  std::string m(mode);
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  if (m.empty() || m == "auto") return Status::Ok();
  if (m == "always") {
    g_color = 1;
    return Status::Ok();
  }
  if (m == "never") {
    g_color = 0;
    return Status::Ok();
  }
  return Status::Invalid("invalid argument \"" + std::string(mode) +
                         "\" for \"--color\" flag: invalid color option");
}

void OverrideTerminal(bool terminal, bool color) {
  g_terminal = terminal ? 1 : 0;
  g_color = color ? 1 : 0;
}

std::string Bold(std::string_view s) { return Sgr("1", s); }
std::string Faint(std::string_view s) { return Sgr("2", s); }
std::string Underline(std::string_view s) { return Sgr("4", s); }
std::string Color(uint32_t rgb, std::string_view s) { return Sgr(Rgb(rgb), s); }
std::string BoldColor(uint32_t rgb, std::string_view s) { return Sgr("1;" + Rgb(rgb), s); }

void Out(std::string_view s) { WriteAll(STDOUT_FILENO, s); }
void Err(std::string_view s) { WriteAll(STDERR_FILENO, s); }

int Fail(std::string_view message) {
  // Colour of the error prefix follows stdout like all styling.
  Err(Color(kRed, "Error:") + " " + std::string(message) + "\n");
  return 1;
}

int FailSee(std::string_view message, std::string_view command) {
  return Fail(std::string(message) + ". See '" + std::string(command) + " --help'");
}

Result<std::string> ReadPassword(std::string_view prompt) {
  if (const char* env = std::getenv("KES_CLIENT_KEY_PASSWORD"); env != nullptr) {
    return std::string(env);
  }
  int fd = STDERR_FILENO;
  if (!isatty(fd)) fd = STDIN_FILENO;
  if (!isatty(fd)) {
    return Status::Invalid("failed to read password: no terminal (set KES_CLIENT_KEY_PASSWORD)");
  }
  // Echo goes off before the prompt appears, and type-ahead is kept
  // (TCSANOW, not TCSAFLUSH), so a fast typist or a script loses nothing.
  termios old{};
  tcgetattr(fd, &old);
  termios noecho = old;
  noecho.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  noecho.c_lflag |= ICANON;
  tcsetattr(fd, TCSANOW, &noecho);
  Err(prompt);
  std::string password;
  char c;
  bool ok = true;
  while (true) {
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = !password.empty();
      break;
    }
    if (c == '\n' || c == '\r') break;
    password.push_back(c);
  }
  tcsetattr(fd, TCSANOW, &old);
  Err("\n");
  if (!ok) return Status::Invalid("failed to read password: EOF");
  return password;
}

std::string Frame(std::string_view text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) {
      lines.emplace_back(text.substr(start));
      break;
    }
    lines.emplace_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  // Width counts visible characters (styling escapes excluded).
  auto visible = [](const std::string& s) {
    size_t n = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\x1b') {
        while (i < s.size() && s[i] != 'm') ++i;
        continue;
      }
      if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) ++n;
    }
    return n;
  };
  size_t width = 0;
  for (auto& l : lines) width = std::max(width, visible(l));
  std::string out = std::string(width + 2, ' ') + "\n";
  for (auto& l : lines) out += " " + l + std::string(width - visible(l) + 1, ' ') + "\n";
  out += std::string(width + 2, ' ') + "\n";
  return out;
}

void PrintNames(const std::vector<std::string>& names, std::string_view header, bool as_json) {
  if (as_json) {
    Out((names.empty() ? nlohmann::json(nullptr) : nlohmann::json(names)).dump() + "\n");
    return;
  }
  if (names.empty()) return;
  std::string out = Underline(header) + "\n";
  for (const auto& n : names) out += n + "\n";
  Out(out);
}

}  // namespace kes::cli
