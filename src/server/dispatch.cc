#include "server/dispatch.h"

#include <time.h>

#include "crypto/secret_bytes.h"

namespace kes::server {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

bool MethodAllowed(std::string_view got, std::string_view want) {
  return got == want || (want == "PUT" && got == "POST");
}

}  // namespace

std::string_view HttpDate() {
  thread_local time_t cached_sec = 0;
  thread_local char buf[40];
  thread_local size_t len = 0;
  time_t now = time(nullptr);
  if (now != cached_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    len = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_sec = now;
  }
  return {buf, len};
}

std::string_view ContentTypeOf(Response::Type t) {
  switch (t) {
    case Response::Type::kJson:
      return "application/json";
    case Response::Type::kText:
      return "text/plain; charset=utf-8";
    case Response::Type::kHtml:
      return "text/html; charset=utf-8";
    case Response::Type::kMetrics:
      return Metrics::kContentType;
    case Response::Type::kNone:
      break;
  }
  return {};
}

asio::awaitable<Dispatched> Dispatch(RequestHead& head, std::string& body, const PeerIdentity& peer,
                                     std::string_view remote_ip, const State& st, Services& sv) {
  Dispatched out;
  Resolution& res = head.target;
  switch (res.kind) {
    case Resolution::Kind::kBadRequest:
      out.response = Response::BadRequestPage();
      out.bad_target = true;
      co_return out;
    case Resolution::Kind::kNotFound:
      out.response = Response::NotFoundPage();
      co_return out;
    case Resolution::Kind::kRedirect:
      out.response = Response::Redirect(std::move(res.location), head.method == "GET");
      co_return out;
    case Resolution::Kind::kMatch:
      break;
  }
  const Route* route = res.route;
  const RouteSettings& settings = st.settings(*route);
  if (settings.timeout.count() > 0) {
    out.deadline = head.received + std::chrono::duration_cast<Clock::duration>(settings.timeout);
  }
  if (route->metered) sv.metrics.RequestStarted();

  Request req;
  req.route = route;
  req.method = head.method;
  req.path = std::move(res.path);
  req.resource = std::move(res.resource);
  req.body_too_large = head.body_too_large;
  req.body_present = head.body_present;
  req.remote_ip = remote_ip;
  req.received = head.received;
  if (settings.timeout.count() > 0) req.deadline = out.deadline;

  std::optional<Response> early;
  if (!MethodAllowed(head.method, route->method)) {
    early = Response::Error(405, "received method '" + std::string(head.method) + "' expected '" +
                                     std::string(route->method) + "'");
    early->accept = route->method;
  } else if (route->auth == AuthKind::kAuthenticated && !settings.skip_auth) {
    early = Authorize(req, peer, st, sv);
  }
  if (peer.error == PeerIdentity::Error::kNone && route->auth != AuthKind::kOpen) {
    req.identity = peer.identity;
  }

  if (!early && (route->id == RouteId::kLogError || route->id == RouteId::kLogAudit)) {
    out.log_stream = route->id == RouteId::kLogError ? LogStream::kError : LogStream::kAudit;
    co_return out;
  }

  if (early) {
    out.response = std::move(*early);
  } else {
    req.body = std::move(body);
    out.response = co_await Handle(req, st, sv);
    crypto::Zeroize(req.body.data(), req.body.size());
  }
  if (route->metered) sv.metrics.RequestFinished(out.response.status, Clock::now() - head.received);
  co_return out;
}

}  // namespace kes::server
