#include "server/http_server.h"

#include <sys/resource.h>
#include <time.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "crypto/secret_bytes.h"

namespace kes::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A connection runs on one single-threaded io_context, so its socket and
// timers name that executor directly instead of the type-erased
// any_io_executor (no per-operation executor copies through a vtable).
using IoExecutor = asio::io_context::executor_type;
using Socket = tcp::socket::rebind_executor<IoExecutor>::other;
using TcpStream = beast::basic_stream<tcp, IoExecutor>;

constexpr auto kHeaderTimeout = 5s;
constexpr auto kIdleTimeout = 90s;
constexpr size_t kHeaderLimit = 1 << 20;       // Go: DefaultMaxHeaderBytes
constexpr size_t kDiscardBodyLimit = 1 << 20;  // bodies of routes that read none
constexpr size_t kDrainLimit = 8 << 20;        // larger bodies close the connection

// "Sat, 28 Nov 2026 20:22:58 GMT", recomputed at most once per second per thread.
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

// Go prints syscall errors in lower case ("address already in use").
std::string GoErrorText(const beast::error_code& ec) {
  std::string m = ec.message();
  if (!m.empty() && m[0] >= 'A' && m[0] <= 'Z') m[0] = static_cast<char>(m[0] - 'A' + 'a');
  return m;
}

bool MethodAllowed(std::string_view got, std::string_view want) {
  return got == want || (want == "PUT" && got == "POST");
}

}  // namespace

// One TLS connection: handshake, identity, request loop.
class HttpServer::Connection : public std::enable_shared_from_this<HttpServer::Connection> {
 public:
  Connection(HttpServer& server, Socket socket, std::shared_ptr<const State> state,
             uint64_t generation)
      : server_(server),
        state_(std::move(state)),
        generation_(generation),
        tls_(state_->tls),
        stream_(std::move(socket), *tls_) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec) {
      remote_ip_ = ep.address().to_string();
      remote_port_ = ep.port();
    }
  }

  asio::awaitable<void> Run();
  auto executor() { return stream_.get_executor(); }

 private:
  const State& CurrentState() {
    uint64_t g = server_.state_.generation();
    if (g != generation_) {
      state_ = server_.state_.Load();
      generation_ = g;
    }
    return *state_;
  }

  asio::awaitable<bool> ServeOne(bool first);
  asio::awaitable<bool> Write(Response& resp, const http::request_header<>& req,
                              std::chrono::steady_clock::time_point deadline, bool keep_alive);
  asio::awaitable<void> StreamLog(LogStream which, const http::request_header<>& req);

  HttpServer& server_;
  std::shared_ptr<const State> state_;
  uint64_t generation_;
  std::shared_ptr<asio::ssl::context> tls_;  // keeps the context alive across reloads
  beast::ssl_stream<TcpStream> stream_;
  beast::flat_buffer buffer_;
  PeerIdentity peer_;
  std::string remote_ip_;
  uint16_t remote_port_ = 0;
};

asio::awaitable<void> HttpServer::Connection::Run() {
  beast::error_code ec;
  beast::get_lowest_layer(stream_).expires_after(kHeaderTimeout);
  co_await stream_.async_handshake(asio::ssl::stream_base::server,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
      server_.services_.logs.Error(config::kLevelInfo,
                                   "http: TLS handshake error from " + remote_ip_ + ":" +
                                       std::to_string(remote_port_) + ": " + ec.message());
    }
    co_return;
  }
  peer_ = PeerIdentityOf(stream_.native_handle());
  bool first = true;
  while (co_await ServeOne(first)) first = false;
  beast::get_lowest_layer(stream_).expires_after(1s);
  co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

// Serves one request; false when the connection must close.
asio::awaitable<bool> HttpServer::Connection::ServeOne(bool first) {
  beast::error_code ec;
  auto& lowest = beast::get_lowest_layer(stream_);
  if (buffer_.size() == 0) {
    // Idle keep-alive wait for the first byte of the next request.
    lowest.expires_after(first ? std::chrono::steady_clock::duration(kHeaderTimeout)
                               : std::chrono::steady_clock::duration(kIdleTimeout));
    size_t n = co_await stream_.async_read_some(buffer_.prepare(4096),
                                                asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return false;
    buffer_.commit(n);
  }
  if (server_.stopping_.load()) co_return false;

  lowest.expires_after(kHeaderTimeout);
  http::request_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(boost::none);
  co_await http::async_read_header(stream_, buffer_, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec != asio::error::eof && ec != beast::error::timeout &&
        ec != asio::error::operation_aborted && ec != asio::ssl::error::stream_truncated &&
        ec != http::error::end_of_stream) {
      Response bad = Response::BadRequestPage();
      http::request_header<> none;
      co_await Write(bad, none, {}, false);
    }
    co_return false;
  }

  server_.in_flight_.fetch_add(1);
  struct InFlight {
    std::atomic<int64_t>& n;
    ~InFlight() { n.fetch_sub(1); }
  } in_flight{server_.in_flight_};

  const auto received = std::chrono::steady_clock::now();
  const State& st = CurrentState();
  std::shared_ptr<const State> pin = state_;  // the snapshot outlives a reload mid-request
  auto& hdr = parser.get();
  const std::string_view method(hdr.method_string().data(), hdr.method_string().size());
  bool keep_alive = hdr.keep_alive() && !server_.stopping_.load();

  Resolution res = ResolveTarget(std::string_view(hdr.target().data(), hdr.target().size()));
  const Route* route = res.kind == Resolution::Kind::kMatch ? res.route : nullptr;

  // The body: read it (bounded) so the connection stays usable.
  const size_t limit =
      route != nullptr && route->max_body > 0 ? route->max_body : kDiscardBodyLimit;
  bool too_large = false;
  bool body_present = false;
  if (!parser.is_done()) {
    body_present = true;
    if (parser.content_length() && *parser.content_length() > kDrainLimit) {
      // Not worth reading: answer and close.
      too_large = true;
      keep_alive = false;
    } else {
      const bool drain = parser.content_length() && *parser.content_length() > limit;
      if (auto expect = hdr[http::field::expect]; beast::iequals(expect, "100-continue")) {
        http::response<http::empty_body> cont{http::status::continue_, 11};
        lowest.expires_after(kHeaderTimeout);
        co_await http::async_write(stream_, cont, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return false;
      }
      // An over-long body with a known length is read and dropped, so the
      // client can finish sending and read the answer on a live connection.
      parser.body_limit(drain ? *parser.content_length() : limit);
      lowest.expires_after(route != nullptr && st.settings(*route).timeout.count() > 0
                               ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                     st.settings(*route).timeout)
                               : std::chrono::steady_clock::duration(15s));
      co_await http::async_read(stream_, buffer_, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec == http::error::body_limit) {
        too_large = true;
        keep_alive = false;
      } else if (ec) {
        co_return false;
      }
      if (drain) {
        too_large = true;
        parser.get().body().clear();
      }
    }
  }

  Response resp;
  switch (res.kind) {
    case Resolution::Kind::kBadRequest:
      resp = Response::BadRequestPage();
      keep_alive = false;
      break;
    case Resolution::Kind::kNotFound:
      resp = Response::NotFoundPage();
      break;
    case Resolution::Kind::kRedirect:
      resp = Response::Redirect(std::move(res.location), method == "GET");
      break;
    case Resolution::Kind::kMatch:
      break;
  }
  if (route == nullptr) {
    if (too_large) keep_alive = false;
    co_return co_await Write(resp, hdr, {}, keep_alive);
  }

  const RouteSettings& settings = st.settings(*route);
  const auto deadline =
      settings.timeout.count() > 0
          ? received +
                std::chrono::duration_cast<std::chrono::steady_clock::duration>(settings.timeout)
          : std::chrono::steady_clock::time_point{};
  Services& sv = server_.services_;
  if (route->metered) sv.metrics.RequestStarted();

  Request req;
  req.route = route;
  req.method = method;
  req.path = std::move(res.path);
  req.resource = std::move(res.resource);
  req.body_too_large = too_large;
  req.body_present = body_present;
  req.remote_ip = remote_ip_;
  req.received = received;

  std::optional<Response> early;
  if (!MethodAllowed(method, route->method)) {
    early = Response::Error(405, "received method '" + std::string(method) + "' expected '" +
                                     std::string(route->method) + "'");
    early->accept = route->method;
  } else if (route->auth == AuthKind::kAuthenticated && !settings.skip_auth) {
    early = Authorize(req, peer_, st, sv);
  }
  if (peer_.error == PeerIdentity::Error::kNone && route->auth != AuthKind::kOpen) {
    req.identity = peer_.identity;
  }

  if (!early && (route->id == RouteId::kLogError || route->id == RouteId::kLogAudit)) {
    co_await StreamLog(route->id == RouteId::kLogError ? LogStream::kError : LogStream::kAudit,
                       hdr);
    co_return false;
  }

  if (early) {
    resp = std::move(*early);
  } else {
    req.body = std::move(parser.get().body());
    resp = co_await Handle(req, st, sv);
    crypto::Zeroize(req.body.data(), req.body.size());
  }
  if (route->metered) {
    sv.metrics.RequestFinished(resp.status, std::chrono::steady_clock::now() - received);
  }
  co_return co_await Write(resp, hdr, deadline, keep_alive);
}

asio::awaitable<bool> HttpServer::Connection::Write(Response& resp,
                                                    const http::request_header<>& req,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    bool keep_alive) {
  auto& lowest = beast::get_lowest_layer(stream_);
  if (deadline != std::chrono::steady_clock::time_point{}) {
    // The route's write deadline has passed: upstream's write fails and the
    // client sees a broken connection.
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    lowest.expires_at(deadline);
  } else {
    lowest.expires_after(kIdleTimeout);
  }
  // HTTP/1.0 clients (ab) get a 1.0 answer, with "Connection: keep-alive"
  // when they asked for it, as Go does.
  http::response<http::string_body> res{static_cast<http::status>(resp.status),
                                        req.version() == 10 ? 10u : 11u};
  if (!resp.accept.empty()) res.set(http::field::accept, resp.accept);
  if (!resp.location.empty()) res.set(http::field::location, resp.location);
  if (resp.type != Response::Type::kNone) {
    res.set(http::field::content_type, ContentTypeOf(resp.type));
  }
  if (resp.type == Response::Type::kText && resp.status == 404) {
    res.set("X-Content-Type-Options", "nosniff");
  }
  res.set(http::field::date, HttpDate());
  res.content_length(resp.body.size());
  res.keep_alive(keep_alive);
  const bool head = req.method() == http::verb::head;
  if (!head) res.body() = std::move(resp.body);

  beast::error_code ec;
  co_await http::async_write(stream_, res, asio::redirect_error(asio::use_awaitable, ec));
  if (resp.sensitive) crypto::Zeroize(res.body().data(), res.body().size());
  co_return !ec && keep_alive;
}

asio::awaitable<void> HttpServer::Connection::StreamLog(LogStream which,
                                                        const http::request_header<>& req) {
  auto ex = co_await asio::this_coro::executor;
  auto& lowest = beast::get_lowest_layer(stream_);
  lowest.expires_never();
  beast::error_code ec;

  auto timer = std::make_shared<asio::steady_timer>(ex);
  timer->expires_at(asio::steady_timer::time_point::max());
  // The subscriber may outlive this coroutine and the io_context (the log
  // hub keeps it until unsubscribed), so it holds only a weak reference to
  // the executor it wakes.
  struct Waker {
    asio::any_io_executor ex;
    std::weak_ptr<asio::steady_timer> timer;
  };
  auto waker = std::make_shared<Waker>(Waker{ex, timer});
  Logs& logs = server_.services_.logs;
  auto sub = logs.Subscribe(which, [weak = std::weak_ptr<Waker>(waker)] {
    if (auto w = weak.lock()) {
      asio::post(w->ex, [t = w->timer] {
        if (auto p = t.lock()) p->cancel();
      });
    }
  });
  // Unsubscribes however the coroutine ends, including its destruction
  // when the server stops with the stream still open.
  struct Unsubscriber {
    Logs& logs;
    LogStream which;
    std::shared_ptr<LogSubscriber> sub;
    ~Unsubscriber() { logs.Unsubscribe(which, sub); }
  } unsubscriber{logs, which, sub};

  http::response<http::empty_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/x-ndjson");
  res.set(http::field::date, HttpDate());
  res.chunked(true);
  http::response_serializer<http::empty_body> sr{res};
  co_await http::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));

  // A reader on the same (single-threaded) io_context notices the client
  // going away; the two coroutines never run at the same time.
  bool closed = !!ec;
  bool reader_done = false;
  if (!closed) {
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          beast::error_code rec;
          char byte[64];
          for (;;) {
            co_await stream_.async_read_some(asio::buffer(byte),
                                             asio::redirect_error(asio::use_awaitable, rec));
            if (rec) break;
          }
          closed = true;
          reader_done = true;
          timer->cancel();
        },
        asio::detached);
  } else {
    reader_done = true;
  }

  std::vector<std::string> lines;
  std::string chunk;
  while (!closed && !server_.stopping_.load()) {
    sub->Drain(&lines);
    if (lines.empty()) {
      timer->expires_at(asio::steady_timer::time_point::max());
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    for (const auto& l : lines) {
      chunk.assign(l);
      chunk += '\n';
      co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk)),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        closed = true;
        break;
      }
    }
  }
  if (!reader_done) {
    lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest.socket().cancel(ec);
    while (!reader_done) {
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

HttpServer::HttpServer(Services& services, StateHolder& state)
    : services_(services),
      state_(state),
      // Concurrency hint 1: each io_context is run by exactly one thread.
      // It keeps its locks, so the worker pool and the log hub may still
      // post to it from other threads.
      ios_([] {
        std::vector<std::unique_ptr<asio::io_context>> v;
        v.push_back(std::make_unique<asio::io_context>(1));
        return v;
      }()),
      acceptor_(*ios_[0]) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    // Leave room for the keystore's own files and sockets.
    max_connections_ = std::max<int64_t>(64, static_cast<int64_t>(rl.rlim_cur) - 64);
  }
}

HttpServer::~HttpServer() { Shutdown(0ms); }

Status HttpServer::Listen(const std::string& ip, uint16_t port) {
  beast::error_code ec;
  const std::string shown =
      (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
  auto addr = asio::ip::make_address(ip.empty() ? "0.0.0.0" : ip, ec);
  if (ec) return Status::Invalid("'" + ip + "' is not a valid IP address");
  tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (ec) return Status::Invalid("listen tcp " + shown + ": bind: " + GoErrorText(ec));
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Invalid("listen tcp " + shown + ": " + GoErrorText(ec));
  return Status::Ok();
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void HttpServer::Accept() {
  // Round-robin: the socket is created on the io_context that will run the
  // connection; this handler runs on the acceptor's (ios_[0]) thread.
  asio::io_context& io = *ios_[next_io_];
  next_io_ = (next_io_ + 1) % ios_.size();
  auto sock = std::make_shared<Socket>(io.get_executor());
  acceptor_.async_accept(*sock, [this, sock](beast::error_code ec) {
    if (ec) {
      if (stopping_.load() || !acceptor_.is_open()) return;
      Accept();
      return;
    }
    if (connections_.load() >= max_connections_) {
      sock->close(ec);
      Accept();
      return;
    }
    sock->set_option(tcp::no_delay(true), ec);
    auto conn =
        std::make_shared<Connection>(*this, std::move(*sock), state_.Load(), state_.generation());
    connections_.fetch_add(1);
    auto ex = conn->executor();
    asio::co_spawn(
        ex,
        [conn, this]() -> asio::awaitable<void> {
          try {
            co_await conn->Run();
          } catch (const std::exception&) {
            // a broken connection; nothing to report
          }
          connections_.fetch_sub(1);
        },
        asio::detached);
    Accept();
  });
}

void HttpServer::Start(int threads) {
  const int n = std::max(1, threads);
  while (static_cast<int>(ios_.size()) < n) ios_.push_back(std::make_unique<asio::io_context>(1));
  // An io_context with no connection yet must not return from run().
  for (auto& io : ios_) guards_.push_back(asio::make_work_guard(*io));
  Accept();
  for (auto& io : ios_) {
    threads_.emplace_back([io = io.get()] { io->run(); });
  }
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    return;
  }
  asio::post(*ios_[0], [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  const auto until = std::chrono::steady_clock::now() + grace;
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  for (auto& io : ios_) io->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace kes::server
