// Dispatch: what the server does with one request once its head and body are
// read, whichever protocol carried it (HTTP/1.1: http_server.cc, HTTP/2:
// http2_session.cc). Routing outcome, method check, authorization, the
// handler and the request metrics live here once; a protocol only frames
// the request and writes the Response.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "server/handlers.h"
#include "server/logs.h"
#include "server/router.h"
#include "server/state.h"
#include "server/tls.h"

namespace kes::server {

// The protocol-independent part of a request head.
struct RequestHead {
  std::string_view method;
  Resolution target;  // ResolveTarget of the request-target
  bool body_too_large = false;
  bool body_present = false;
  std::chrono::steady_clock::time_point received;
};

struct Dispatched {
  Response response;
  // Set: the request passed its checks and the caller streams this log
  // instead of writing `response`.
  std::optional<LogStream> log_stream;
  // The request-target was malformed; HTTP/1.1 closes the connection.
  bool bad_target = false;
  // When the answer must be written by (the route's timeout counted from
  // `received`, as upstream enforces it on the write); {} when none.
  std::chrono::steady_clock::time_point deadline{};
};

// Serves `head` with `body` (moved to the handler if one runs and zeroized
// after it; otherwise left to its owner, which zeroizes it). `peer` and
// `remote_ip` belong to the connection.
boost::asio::awaitable<Dispatched> Dispatch(RequestHead& head, std::string& body,
                                            const PeerIdentity& peer, std::string_view remote_ip,
                                            const State& state, Services& services);

// The Content-Type of a response type ("" for kNone).
std::string_view ContentTypeOf(Response::Type t);
// "Sat, 28 Nov 2026 20:22:58 GMT", recomputed at most once per second per thread.
std::string_view HttpDate();

}  // namespace kes::server
