#include "server/logs.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>

#include "common/strings.h"
#include "common/time.h"
#include "config/config.h"
#include "server/json.h"

namespace kes::server {
namespace {

bool NeedsQuoting(std::string_view s) {
  if (s.empty()) return true;
  for (unsigned char c : s) {
    if (c <= ' ' || c == '"' || c == '=' || c == 0x7f) return true;
  }
  return false;
}

void AppendValue(std::string& out, std::string_view v) {
  if (!NeedsQuoting(v)) {
    out += v;
    return;
  }
  AppendGoQuoted(out, v);
}

// Local time, RFC 3339 with milliseconds, as slog's text handler prints it.
std::string SlogTime() {
  auto now = std::chrono::system_clock::now();
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ns / 1000000000);
  int ms = static_cast<int>((ns / 1000000) % 1000);
  struct tm tm;
  localtime_r(&secs, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  n += std::snprintf(buf + n, sizeof buf - n, ".%03d", ms);
  long off = tm.tm_gmtoff;
  if (off == 0) {
    n += std::snprintf(buf + n, sizeof buf - n, "Z");
  } else {
    char sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;
    n += std::snprintf(buf + n, sizeof buf - n, "%c%02ld:%02ld", sign, off / 3600,
                       (off % 3600) / 60);
  }
  return std::string(buf, n);
}

}  // namespace

void WriteLine(int fd, std::string_view line) {
  std::string buf;
  buf.reserve(line.size() + 1);
  buf.append(line);
  buf += '\n';
  const char* p = buf.data();
  size_t left = buf.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // nowhere to report a failing log target
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string FormatSlogLine(int level, std::string_view msg, std::initializer_list<LogAttr> attrs) {
  std::string out = "time=" + SlogTime() + " level=" + config::LogLevelName(level) + " msg=";
  AppendValue(out, msg);
  for (const auto& [k, v] : attrs) {
    out += ' ';
    out += k;
    out += '=';
    AppendValue(out, v);
  }
  return out;
}

void LogSubscriber::Drain(std::vector<std::string>* out) {
  out->clear();
  std::lock_guard lock(mu_);
  while (!queue_.empty()) {
    out->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void LogSubscriber::Push(std::string line) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) return;  // slow reader: drop
    queue_.push_back(std::move(line));
  }
  wake_();
}

void Logs::Error(int level, std::string_view msg, std::initializer_list<LogAttr> attrs) {
  if (!ErrorEnabled(level)) return;
  std::string line = FormatSlogLine(level, msg, attrs);
  WriteLine(2, line);
  error_events_.fetch_add(1, std::memory_order_relaxed);
  if (subscriber_count_.load(std::memory_order_acquire) > 0) {
    std::string json;
    JsonWriter(json).BeginObject().Key("message").String(line).EndObject();
    Publish(LogStream::kError, json);
  }
}

void Logs::Audit(const AuditEvent& e) {
  if (audit_enabled_.load(std::memory_order_relaxed)) {
    std::string code = std::to_string(e.code);
    std::string elapsed = config::FormatDuration(std::chrono::nanoseconds(e.elapsed_ns));
    WriteLine(1, FormatSlogLine(config::kLevelInfo, e.message,
                                {{"req.method", e.method},
                                 {"req.path", e.path},
                                 {"req.ip", e.ip},
                                 {"req.identity", e.identity},
                                 {"res.code", code},
                                 {"res.time", elapsed}}));
  }
  audit_events_.fetch_add(1, std::memory_order_relaxed);
  if (subscriber_count_.load(std::memory_order_acquire) == 0) return;
  std::string json;
  JsonWriter w(json);
  w.BeginObject().Key("time").String(Timestamp::NowLocal().ToRfc3339());
  w.Key("request").BeginObject();
  if (!e.ip.empty()) w.Key("ip").String(e.ip);
  w.Key("path").String(e.path);
  if (!e.identity.empty()) w.Key("identity").String(e.identity);
  w.EndObject();
  w.Key("response").BeginObject().Key("code").Int(e.code).Key("time").Int(e.elapsed_ns / 1000000);
  w.EndObject();
  if (!e.key_name.empty()) {
    w.Key("key").BeginObject().Key("name").String(e.key_name);
    w.Key("version").String(e.key_version);
    w.Key("min_decryption_version").String(e.key_min_decryption_version).EndObject();
  }
  w.EndObject();
  Publish(LogStream::kAudit, json);
}

std::shared_ptr<LogSubscriber> Logs::Subscribe(LogStream stream, std::function<void()> wake) {
  auto sub = std::make_shared<LogSubscriber>(std::move(wake));
  std::lock_guard lock(mu_);
  (stream == LogStream::kError ? error_subs_ : audit_subs_).push_back(sub);
  subscriber_count_.fetch_add(1, std::memory_order_release);
  return sub;
}

void Logs::Unsubscribe(LogStream stream, const std::shared_ptr<LogSubscriber>& sub) {
  std::lock_guard lock(mu_);
  auto& subs = stream == LogStream::kError ? error_subs_ : audit_subs_;
  auto it = std::find(subs.begin(), subs.end(), sub);
  if (it != subs.end()) {
    subs.erase(it);
    subscriber_count_.fetch_sub(1, std::memory_order_release);
  }
}

void Logs::Publish(LogStream stream, const std::string& json_line) {
  std::vector<std::shared_ptr<LogSubscriber>> subs;
  {
    std::lock_guard lock(mu_);
    subs = stream == LogStream::kError ? error_subs_ : audit_subs_;
  }
  for (auto& s : subs) s->Push(json_line);
}

}  // namespace kes::server
