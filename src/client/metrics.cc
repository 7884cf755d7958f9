#include "client/metrics.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace kes::client {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool ParseNumber(std::string_view text, double* out) {
  std::string s(text);
  if (s == "+Inf") {
    *out = INFINITY;
    return true;
  }
  char* end = nullptr;
  *out = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size();
}

// Value of label `name` inside `{a="x",b="y"}`, or empty.
std::string_view LabelValue(std::string_view labels, std::string_view name) {
  std::string needle = std::string(name) + "=\"";
  size_t pos = labels.find(needle);
  if (pos == std::string_view::npos) return {};
  pos += needle.size();
  size_t end = labels.find('"', pos);
  if (end == std::string_view::npos) return {};
  return labels.substr(pos, end - pos);
}

struct Sample {
  std::string_view name;
  std::string_view labels;
  double value = 0;
};

bool ParseSample(std::string_view line, Sample* s) {
  size_t name_end = line.find_first_of("{ \t");
  if (name_end == std::string_view::npos) return false;
  s->name = line.substr(0, name_end);
  std::string_view rest = line.substr(name_end);
  if (!rest.empty() && rest.front() == '{') {
    size_t close = rest.find('}');
    if (close == std::string_view::npos) return false;
    s->labels = rest.substr(0, close + 1);
    rest.remove_prefix(close + 1);
  }
  rest = Trim(rest);
  // An optional timestamp may follow the value.
  size_t space = rest.find(' ');
  if (space != std::string_view::npos) rest = rest.substr(0, space);
  return ParseNumber(rest, &s->value);
}

}  // namespace

Result<Metrics> ParseMetrics(std::string_view text) {
  Metrics m;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = Trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.substr(0, 4) != "kes_") continue;

    Sample s;
    if (!ParseSample(line, &s)) {
      return Status::Invalid("kes: invalid metrics sample: " + std::string(line));
    }
    auto u = [&] { return s.value < 0 ? uint64_t{0} : static_cast<uint64_t>(s.value); };
    if (s.name == "kes_http_request_success") {
      m.request_ok += u();
    } else if (s.name == "kes_http_request_error") {
      m.request_err += u();
    } else if (s.name == "kes_http_request_failure") {
      m.request_fail += u();
    } else if (s.name == "kes_http_request_active") {
      m.request_active = u();
    } else if (s.name == "kes_log_audit_events") {
      m.audit_events = u();
    } else if (s.name == "kes_log_error_events") {
      m.error_events = u();
    } else if (s.name == "kes_http_response_time_bucket") {
      double le = 0;
      if (!ParseNumber(LabelValue(s.labels, "le"), &le)) {
        return Status::Invalid("kes: invalid histogram bucket: " + std::string(line));
      }
      if (std::isinf(le)) continue;
      m.latency_histogram[static_cast<int64_t>(std::llround(le * 1e9))] = u();
    } else if (s.name == "kes_system_up_time") {
      m.uptime = std::chrono::nanoseconds(static_cast<int64_t>(std::llround(s.value * 1e9)));
    } else if (s.name == "kes_system_num_cpu") {
      m.cpus = u();
    } else if (s.name == "kes_system_num_cpu_used") {
      m.usable_cpus = u();
    } else if (s.name == "kes_system_num_threads") {
      m.threads = u();
    } else if (s.name == "kes_system_mem_heap_used") {
      m.heap_alloc = u();
    } else if (s.name == "kes_system_mem_heap_objects") {
      m.heap_objects = u();
    } else if (s.name == "kes_system_mem_stack_used") {
      m.stack_alloc = u();
    }
  }
  return m;
}

}  // namespace kes::client
