#include "server/http_server.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>

#include "crypto/secret_bytes.h"
#include "server/dispatch.h"
#include "server/http2_session.h"
#include "server/request_parser.h"
#include "server/tls_socket.h"

namespace kes::server {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

// A connection runs on one single-threaded io_context, so its socket names
// that executor directly instead of the type-erased any_io_executor.
using Socket = TlsSocket::Socket;

constexpr auto kHeaderTimeout = 5s;
constexpr auto kIdleTimeout = 90s;
constexpr size_t kHeaderLimit = 1 << 20;       // Go: DefaultMaxHeaderBytes
constexpr size_t kDiscardBodyLimit = 1 << 20;  // bodies of routes that read none
constexpr size_t kDrainLimit = 8 << 20;        // larger bodies close the connection

// Go prints syscall errors in lower case ("address already in use").
std::string GoErrorText(const beast::error_code& ec) {
  std::string m = ec.message();
  if (!m.empty() && m[0] >= 'A' && m[0] <= 'Z') m[0] = static_cast<char>(m[0] - 'A' + 'a');
  return m;
}

// The admin or an identity with a policy (ConnectionSlots sheds the others first).
bool IsKnownIdentity(const State& st, const PeerIdentity& peer) {
  if (peer.error != PeerIdentity::Error::kNone || peer.identity.empty()) return false;
  return peer.identity == st.admin || st.policy_of.count(peer.identity) != 0;
}

}  // namespace

// The connections of one I/O thread, and what runs them.
struct HttpServer::IoThread {
  // Connections of this thread for the deadline sweep (an intrusive list:
  // linking costs no allocation). Declared before `io` so that connections
  // destroyed with io's pending handlers can still unlink themselves.
  Connection* connections = nullptr;
  // Requests being served on this thread (read by Shutdown from another).
  alignas(64) std::atomic<int64_t> in_flight{0};
  asio::io_context io{1};  // run by exactly one thread
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  asio::steady_timer sweep{io};
};

// One TLS connection: handshake, identity, request loop.
class HttpServer::Connection {
 public:
  Connection(HttpServer& server, IoThread& home, Socket socket, std::shared_ptr<const State> state,
             uint64_t generation)
      : server_(server),
        home_(home),
        state_(std::move(state)),
        generation_(generation),
        tls_(std::move(socket), state_->tls->native_handle()),
        h2_generation_(generation) {
    beast::error_code ec;
    auto ep = tls_.socket().remote_endpoint(ec);
    if (!ec) {
      remote_ip_ = ep.address().to_string();
      remote_port_ = ep.port();
    }
  }
  ~Connection() { Unlink(); }

  asio::awaitable<void> Run();

  // Called by the sweep: ends whatever the connection is waiting for once
  // its deadline has passed.
  void ExpireIfDue(std::chrono::steady_clock::time_point now) {
    if (h2_ != nullptr) {
      // A reload (new TLS settings, policies) or a shutdown drains an
      // HTTP/2 connection: GOAWAY, open streams finish, the client
      // reconnects.
      h2_->Tick(now, server_.stopping_.load() || server_.state_.generation() != h2_generation_);
      return;
    }
    if (now >= deadline_ && !tls_.expired()) tls_.Expire();
  }
  Connection* next() const { return next_; }
  void set_slot(ConnectionSlots::SlotPtr slot) { slot_ = std::move(slot); }
  bool has_slot() const { return slot_ != nullptr; }
  // Closes the connection to make room for another (ConnectionSlots).
  void Shed() {
    if (!tls_.expired()) tls_.Expire();
  }

 private:
  using Clock = std::chrono::steady_clock;

  void Link() {
    next_ = home_.connections;
    if (next_ != nullptr) next_->prev_ = this;
    home_.connections = this;
    linked_ = true;
  }
  void Unlink() {
    if (!linked_) return;
    if (prev_ != nullptr)
      prev_->next_ = next_;
    else
      home_.connections = next_;
    if (next_ != nullptr) next_->prev_ = prev_;
    linked_ = false;
  }
  void ExpiresAfter(Clock::duration d) { deadline_ = Clock::now() + d; }

  const State& CurrentState() {
    uint64_t g = server_.state_.generation();
    if (g != generation_) {
      state_ = server_.state_.Load();
      generation_ = g;
    }
    return *state_;
  }

  // Reads more bytes into buffer_; eof when the peer closed.
  asio::awaitable<beast::error_code> Fill();
  // Feeds buffer_ to the parser until `done` holds, reading as needed, the
  // way beast::http::read does.
  template <class Done>
  asio::awaitable<beast::error_code> Parse(RequestParser& parser, Done done);
  asio::awaitable<bool> ServeOne(bool first);
  asio::awaitable<bool> Write(Response& resp, unsigned version, bool head,
                              Clock::time_point deadline, bool keep_alive);
  asio::awaitable<void> StreamLog(LogStream which);

  HttpServer& server_;
  IoThread& home_;
  Connection* prev_ = nullptr;
  Connection* next_ = nullptr;
  bool linked_ = false;
  Clock::time_point deadline_ = Clock::time_point::max();
  std::shared_ptr<const State> state_;
  uint64_t generation_;
  TlsSocket tls_;
  beast::flat_buffer buffer_;
  std::string target_;  // the request-target; its capacity is reused
  std::string out_;     // the response being written; its capacity is reused
  PeerIdentity peer_;
  Http2Session* h2_ = nullptr;  // while the connection speaks HTTP/2
  // The state generation the connection was accepted on: its TLS context
  // is that state's, so a reload after accepting drains it with GOAWAY even
  // when it happened before the HTTP/2 session started.
  uint64_t h2_generation_;
  ConnectionSlots::SlotPtr slot_{nullptr, nullptr};
  std::string remote_ip_;
  uint16_t remote_port_ = 0;
};

asio::awaitable<void> HttpServer::Connection::Run() {
  Link();
  ExpiresAfter(kHeaderTimeout);
  beast::error_code ec = co_await tls_.Handshake();
  if (ec) {
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
      server_.services_.logs.Error(config::kLevelInfo,
                                   "http: TLS handshake error from " + remote_ip_ + ":" +
                                       std::to_string(remote_port_) + ": " + ec.message());
    }
    tls_.Close();
    co_return;
  }
  peer_ = PeerIdentityOf(tls_.native_handle());
  ConnectionSlots::Identified(*slot_, IsKnownIdentity(CurrentState(), peer_));
  if (NegotiatedHttp2(tls_.native_handle())) {
    deadline_ = Clock::time_point::max();  // the session keeps its own deadlines
    Logs& logs = server_.services_.logs;
    if (logs.ErrorEnabled(config::kLevelDebug)) {
      logs.Error(config::kLevelDebug,
                 "http: HTTP/2 connection from " + remote_ip_ + ":" + std::to_string(remote_port_));
    }
    auto h2 = std::make_shared<Http2Session>(Http2Session::Context{
        tls_, server_.services_, peer_, remote_ip_, home_.in_flight,
        [this] {
          CurrentState();
          return state_;
        },
        [this](bool busy) {
          busy ? ConnectionSlots::Busy(*slot_) : ConnectionSlots::Idle(*slot_);
        }});
    h2_ = h2.get();
    co_await h2->Run();
    h2_ = nullptr;
    tls_.Close();
    co_return;
  }
  bool first = true;
  while (co_await ServeOne(first)) first = false;
  tls_.Close();
}

asio::awaitable<beast::error_code> HttpServer::Connection::Fill() {
  size_t n = 0;
  auto space = buffer_.prepare(std::max<size_t>(4096, buffer_.capacity() - buffer_.size()));
  beast::error_code ec =
      co_await tls_.ReadSome(std::span<char>(static_cast<char*>(space.data()), space.size()), n);
  buffer_.commit(n);
  co_return ec;
}

template <class Done>
asio::awaitable<beast::error_code> HttpServer::Connection::Parse(RequestParser& parser, Done done) {
  beast::error_code ec;
  bool need_more = buffer_.size() == 0;
  while (!done()) {
    if (need_more) {
      ec = co_await Fill();
      if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
        if (!parser.got_some()) co_return http::error::end_of_stream;
        parser.put_eof(ec);
        if (ec) co_return ec;
        continue;
      }
      if (ec) co_return ec;
    }
    const size_t used = parser.put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) {
      need_more = true;
      continue;
    }
    if (ec) co_return ec;
    need_more = buffer_.size() == 0;
  }
  co_return beast::error_code{};
}

// Serves one request; false when the connection must close.
asio::awaitable<bool> HttpServer::Connection::ServeOne(bool first) {
  beast::error_code ec;
  // An idle keep-alive connection does not keep the buffers a large request
  // or answer (a 1 MB body, a long key list) once needed.
  constexpr size_t kKeepCapacity = 64 << 10;
  if (buffer_.size() == 0 && buffer_.capacity() > kKeepCapacity) buffer_.shrink_to_fit();
  if (out_.capacity() > kKeepCapacity) std::string().swap(out_);
  if (buffer_.size() == 0) {
    // Idle keep-alive wait for the first byte of the next request.
    ExpiresAfter(first ? Clock::duration(kHeaderTimeout) : Clock::duration(kIdleTimeout));
    ConnectionSlots::Idle(*slot_);
    ec = co_await Fill();
    if (ec) co_return false;
  }
  ConnectionSlots::Busy(*slot_);
  if (server_.stopping_.load()) co_return false;

  ExpiresAfter(kHeaderTimeout);
  RequestParser parser(target_);
  parser.header_limit(kHeaderLimit);
  parser.body_limit(boost::none);
  ec = co_await Parse(parser, [&] { return parser.is_header_done(); });
  if (ec) {
    if (ec != asio::error::eof && ec != beast::error::timeout &&
        ec != asio::error::operation_aborted && ec != asio::ssl::error::stream_truncated &&
        ec != http::error::end_of_stream) {
      Response bad = Response::BadRequestPage();
      co_await Write(bad, 11, false, {}, false);
    }
    co_return false;
  }
  if (const std::string_view why = parser.HostError(); !why.empty()) {
    Response bad = Response::BadRequestPage(why);
    co_await Write(bad, 11, false, {}, false);
    co_return false;
  }

  // Counted per I/O thread: a server-wide counter would be a cache line
  // that every thread writes twice per request.
  home_.in_flight.fetch_add(1, std::memory_order_relaxed);
  struct InFlight {
    std::atomic<int64_t>& n;
    ~InFlight() { n.fetch_sub(1, std::memory_order_release); }
  } in_flight{home_.in_flight};

  const auto received = Clock::now();
  // state_ changes only here, so the snapshot outlives a reload mid-request.
  const State& st = CurrentState();
  const std::string_view method = parser.method_string();
  const unsigned version = parser.version() == 10 ? 10 : 11;
  const bool head = parser.method() == http::verb::head;
  bool keep_alive = parser.keep_alive() && !server_.stopping_.load();

  Resolution res = ResolveTarget(parser.target());
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
      if (parser.expect_continue()) {
        ExpiresAfter(kHeaderTimeout);
        ec = co_await tls_.Write("HTTP/1.1 100 Continue\r\n\r\n");
        if (ec) co_return false;
      }
      // An over-long body with a known length is read and dropped, so the
      // client can finish sending and read the answer on a live connection.
      parser.body_limit(drain ? *parser.content_length() : limit);
      parser.eager(true);
      ExpiresAfter(route != nullptr && st.settings(*route).timeout.count() > 0
                       ? std::chrono::duration_cast<Clock::duration>(st.settings(*route).timeout)
                       : Clock::duration(15s));
      ec = co_await Parse(parser, [&] { return parser.is_done(); });
      if (ec == http::error::body_limit) {
        too_large = true;
        keep_alive = false;
      } else if (ec) {
        co_return false;
      }
      if (drain) {
        too_large = true;
        crypto::Zeroize(parser.body().data(), parser.body().size());
        parser.body().clear();
      }
    }
  }

  // The request is read. The handler may wait for the keystore for as long
  // as it takes (the route's deadline is enforced on the write, as upstream
  // does), so no read deadline may cut the connection meanwhile.
  deadline_ = Clock::time_point::max();

  RequestHead request{method, std::move(res), too_large, body_present, received};
  Dispatched d =
      co_await Dispatch(request, parser.body(), peer_, remote_ip_, st, server_.services_);
  if (d.log_stream) {
    co_await StreamLog(*d.log_stream);
    co_return false;
  }
  if (d.bad_target || (route == nullptr && too_large)) keep_alive = false;
  co_return co_await Write(d.response, version, head, d.deadline, keep_alive);
}

namespace {

// The status line and header fields, in the order and spelling Beast's
// serializer produced them before (integration tests compare them).
void AppendHead(std::string& out, const Response& resp, unsigned version, bool keep_alive,
                size_t content_length) {
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char num[24];
  auto [end, _] = std::to_chars(num, num + sizeof num, resp.status);
  out.append(num, end);
  out += ' ';
  const auto reason = http::obsolete_reason(static_cast<http::status>(resp.status));
  out.append(reason.data(), reason.size());
  out += "\r\n";
  auto field = [&](std::string_view name, std::string_view value) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  };
  if (!resp.accept.empty()) field("Accept", resp.accept);
  if (!resp.location.empty()) field("Location", resp.location);
  if (resp.type != Response::Type::kNone) field("Content-Type", ContentTypeOf(resp.type));
  if (resp.type == Response::Type::kText && resp.status == 404) {
    field("X-Content-Type-Options", "nosniff");
  }
  field("Date", HttpDate());
  end = std::to_chars(num, num + sizeof num, content_length).ptr;
  field("Content-Length", std::string_view(num, static_cast<size_t>(end - num)));
  // HTTP/1.0 clients (ab) get "Connection: keep-alive" when they asked for
  // it, as from Go; HTTP/1.1 ones "Connection: close" when it ends.
  if (version == 10 && keep_alive) field("Connection", "keep-alive");
  if (version == 11 && !keep_alive) field("Connection", "close");
  out += "\r\n";
}

}  // namespace

asio::awaitable<bool> HttpServer::Connection::Write(Response& resp, unsigned version, bool head,
                                                    Clock::time_point deadline, bool keep_alive) {
  if (deadline != Clock::time_point{}) {
    // The route's deadline has passed: upstream's write fails and the
    // client sees a broken connection.
    if (Clock::now() >= deadline) co_return false;
    deadline_ = deadline;
  } else {
    ExpiresAfter(kIdleTimeout);
  }
  out_.clear();
  AppendHead(out_, resp, version, keep_alive, resp.body.size());
  if (!head) out_ += resp.body;
  const beast::error_code ec = co_await tls_.Write(out_);
  if (resp.sensitive) {
    crypto::Zeroize(out_.data(), out_.size());
    crypto::Zeroize(resp.body.data(), resp.body.size());
  }
  co_return !ec && keep_alive;
}

asio::awaitable<void> HttpServer::Connection::StreamLog(LogStream which) {
  auto ex = co_await asio::this_coro::executor;
  deadline_ = Clock::time_point::max();
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

  out_.clear();
  out_ += "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nDate: ";
  out_ += HttpDate();
  out_ += "\r\nTransfer-Encoding: chunked\r\n\r\n";
  ec = co_await tls_.Write(out_);

  // A reader on the same (single-threaded) io_context notices the client
  // going away; the two coroutines never run at the same time.
  bool closed = !!ec;
  bool reader_done = false;
  if (!closed) {
    asio::co_spawn(
        ex,
        [&]() -> asio::awaitable<void> {
          char byte[64];
          for (;;) {
            size_t n = 0;
            if (co_await tls_.ReadSome(std::span<char>(byte), n)) break;
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
      // One HTTP/1.1 chunk per line: hex size, CRLF, the line and its '\n', CRLF.
      char size[20];
      auto end = std::to_chars(size, size + sizeof size, l.size() + 1, 16).ptr;
      chunk.assign(size, end);
      chunk += "\r\n";
      chunk += l;
      chunk += "\n\r\n";
      ec = co_await tls_.Write(chunk);
      if (ec) {
        closed = true;
        break;
      }
    }
  }
  if (!reader_done) {
    tls_.Abort();
    while (!reader_done) {
      timer->expires_after(100ms);
      co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

HttpServer::HttpServer(Services& services, StateHolder& state)
    : services_(services),
      state_(state),
      slots_(ConnectionSlots::CapacityFromFileLimit()),
      io_([] {
        std::vector<std::unique_ptr<IoThread>> v;
        v.push_back(std::make_unique<IoThread>());
        return v;
      }()),
      acceptor_(io_[0]->io) {}

HttpServer::~HttpServer() {
  try {
    Shutdown(0ms);
  } catch (const std::exception&) {
    // joining the I/O threads failed: nothing left to stop them with
  }
}

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
  // connection; this handler runs on the acceptor's (io_[0]) thread.
  IoThread& home = *io_[next_io_];
  next_io_ = (next_io_ + 1) % io_.size();
  auto sock = std::make_shared<Socket>(home.io.get_executor());
  acceptor_.async_accept(*sock, [this, sock, &home](beast::error_code ec) {
    if (ec) {
      if (stopping_.load() || !acceptor_.is_open()) return;
      Accept();
      return;
    }
    sock->set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(*this, home, std::move(*sock), state_.Load(),
                                             state_.generation());
    conn->set_slot(slots_.Acquire([weak = std::weak_ptr<Connection>(conn), &home] {
      asio::post(home.io, [weak] {
        if (auto c = weak.lock()) c->Shed();
      });
    }));
    if (!conn->has_slot()) {  // full of trusted connections mid-request: refuse
      Accept();
      return;
    }
    asio::co_spawn(
        home.io,
        [conn, this]() -> asio::awaitable<void> {
          try {
            co_await conn->Run();
          } catch (const std::exception&) {
            // a broken connection; nothing to report
          }
        },
        asio::detached);
    Accept();
  });
}

// Expires the connections of `t` whose deadline has passed, four times a
// second: a timeout fires at most 250 ms late, and a request arms no timer.
void HttpServer::Sweep(IoThread& t) {
  t.sweep.expires_after(250ms);
  t.sweep.async_wait([this, &t](beast::error_code ec) {
    // Runs on while stopping: HTTP/2 sessions learn of it here.
    if (ec) return;
    const auto now = std::chrono::steady_clock::now();
    for (Connection* c = t.connections; c != nullptr;) {
      Connection* next = c->next();  // expiring never unlinks synchronously
      c->ExpireIfDue(now);
      c = next;
    }
    Sweep(t);
  });
}

void HttpServer::Start(int threads) {
  const int n = std::max(1, threads);
  while (static_cast<int>(io_.size()) < n) io_.push_back(std::make_unique<IoThread>());
  Accept();
  for (auto& t : io_) {
    Sweep(*t);
    threads_.emplace_back([io = &t->io] { io->run(); });
  }
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  if (stopping_.exchange(true)) {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    return;
  }
  asio::post(io_[0]->io, [this] {
    beast::error_code ec;
    acceptor_.close(ec);
  });
  const auto until = std::chrono::steady_clock::now() + grace;
  const auto in_flight = [this] {
    int64_t n = 0;
    for (const auto& t : io_) n += t->in_flight.load(std::memory_order_acquire);
    return n;
  };
  while (in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  for (auto& t : io_) t->io.stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace kes::server
