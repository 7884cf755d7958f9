// The API handlers (api.md §3): authorization (§2.3) and one function per
// route, producing a complete Response. Backend calls (anything on the
// keystore except a cache hit) run on the worker pool; the calling I/O
// coroutine is suspended meanwhile, never blocked.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/deadline.h"
#include "server/logs.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/state.h"

namespace kes::server {

// Process-wide services that survive reloads.
struct Services {
  Logs logs;
  Metrics metrics;
  boost::asio::thread_pool* workers = nullptr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

struct Request {
  const Route* route = nullptr;
  std::string_view method;
  std::string path;      // percent-decoded URL path
  std::string resource;  // decoded path after the route prefix
  std::string body;
  bool body_too_large = false;  // the body exceeded the route's limit
  bool body_present = false;    // Content-Length > 0, or chunked
  std::string_view identity;    // empty if the peer has none
  std::string_view remote_ip;
  std::chrono::steady_clock::time_point received;
  // received + the route's timeout: every keystore call returns by then.
  Deadline deadline = kNoDeadline;
};

struct Response {
  enum class Type { kNone, kJson, kText, kHtml, kMetrics };
  unsigned status = 200;
  Type type = Type::kNone;
  std::string body;
  std::string_view accept;  // 405: the route's method
  std::string location;     // 301
  bool sensitive = false;   // body holds key material: zeroize after sending

  static Response Error(unsigned status, std::string_view message);
  static Response Error(const Status& status) {
    return Error(status.http_status(), status.message());
  }
  static Response Json(std::string body);  // appends the trailing '\n'
  static Response Empty() { return {}; }
  static Response NotFoundPage();
  static Response Redirect(std::string location, bool with_body);
  // Go's "400 Bad Request" page; with `why`, "400 Bad Request: <why>".
  static Response BadRequestPage(std::string_view why = {});
};

// §2.3 for an authenticated route. `peer` is the connection's identity
// computation. Returns an error response, or nullopt if the request may
// proceed.
std::optional<Response> Authorize(const Request& req, const PeerIdentity& peer, const State& state,
                                  Services& services);

// Runs the route's handler (everything except the log streams).
boost::asio::awaitable<Response> Handle(const Request& req, const State& state, Services& services);

}  // namespace kes::server
