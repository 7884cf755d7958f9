// The server's two logs (config.md §3.8, cli.md §3.3, api.md §3.8):
//   * error log: Go log/slog text lines on stderr, filtered by level, and
//     {"message":"<line>"} events on GET /v1/log/error;
//   * audit log: one slog text line per key create/import/delete on stdout
//     (when enabled), and JSON events on GET /v1/log/audit.
// Stream subscribers get their own bounded queue, so a slow client never
// blocks a request thread; events beyond the queue bound are dropped.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kes::server {

enum class LogStream { kError, kAudit };

// One stream subscriber: a queue of JSON lines (without newline) plus a
// wake-up callback that the publisher invokes after queueing.
class LogSubscriber {
 public:
  explicit LogSubscriber(std::function<void()> wake) : wake_(std::move(wake)) {}
  // Moves all queued lines into `out` (which is cleared first).
  void Drain(std::vector<std::string>* out);
  void Push(std::string line);

 private:
  static constexpr size_t kMaxQueued = 4096;
  std::mutex mu_;
  std::deque<std::string> queue_;
  std::function<void()> wake_;
};

// slog text attribute: key and unquoted value.
using LogAttr = std::pair<std::string_view, std::string_view>;

// Formats one Go slog text line (without trailing newline):
// time=<local RFC 3339 ms> level=<LEVEL> msg=<quoted if needed> k=v ...
std::string FormatSlogLine(int level, std::string_view msg, std::initializer_list<LogAttr> attrs);

class Logs {
 public:
  Logs() = default;

  // Levels are re-applied on reload.
  void SetLevels(int error_level, bool audit_enabled) {
    error_level_.store(error_level, std::memory_order_relaxed);
    audit_enabled_.store(audit_enabled, std::memory_order_relaxed);
  }
  bool ErrorEnabled(int level) const {
    return level >= error_level_.load(std::memory_order_relaxed);
  }

  // Writes an error-log record (stderr + error stream) if `level` passes.
  void Error(int level, std::string_view msg, std::initializer_list<LogAttr> attrs = {});

  struct AuditEvent {
    std::string_view message;  // "secret key 'k' created"
    std::string_view method;
    std::string_view path;
    std::string_view ip;
    std::string_view identity;
    int code = 200;
    int64_t elapsed_ns = 0;
    // Key-version events (rotation.md §8) add a "key" object to the stream
    // event: {"name", "version", "min_decryption_version"}. Empty: none.
    std::string_view key_name;
    std::string_view key_version;
    std::string_view key_min_decryption_version;
  };
  void Audit(const AuditEvent& event);

  std::shared_ptr<LogSubscriber> Subscribe(LogStream stream, std::function<void()> wake);
  void Unsubscribe(LogStream stream, const std::shared_ptr<LogSubscriber>& sub);

  uint64_t error_events() const { return error_events_.load(std::memory_order_relaxed); }
  uint64_t audit_events() const { return audit_events_.load(std::memory_order_relaxed); }

 private:
  void Publish(LogStream stream, const std::string& json_line);

  std::atomic<int> error_level_{0};
  std::atomic<bool> audit_enabled_{true};
  std::atomic<uint64_t> error_events_{0};
  std::atomic<uint64_t> audit_events_{0};
  std::atomic<int> subscriber_count_{0};
  std::mutex mu_;
  std::vector<std::shared_ptr<LogSubscriber>> error_subs_;
  std::vector<std::shared_ptr<LogSubscriber>> audit_subs_;
};

// Writes a whole line (a '\n' is appended) to fd 1 or 2 with one write(2).
void WriteLine(int fd, std::string_view line);

}  // namespace kes::server
