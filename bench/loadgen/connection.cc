#include "loadgen/connection.h"

#include <openssl/err.h>
#include <strings.h>

#include <boost/asio/connect.hpp>
#include <charconv>
#include <cstring>
#include <string_view>

namespace kes::bench {
namespace asio = boost::asio;

namespace {

constexpr size_t kBufferSize = 64 * 1024;

// Value of header `name` in the raw header block, or empty.
std::string_view HeaderValue(std::string_view headers, std::string_view name) {
  size_t pos = 0;
  while ((pos = headers.find("\r\n", pos)) != std::string_view::npos) {
    pos += 2;
    std::string_view line = headers.substr(pos, headers.find("\r\n", pos) - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        strncasecmp(line.data(), name.data(), name.size()) == 0) {
      std::string_view v = line.substr(name.size() + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return v;
    }
  }
  return {};
}

}  // namespace

Connection::Connection(asio::io_context& io, Worker& worker, int index, int total)
    : io_(io), worker_(worker), socket_(io), timer_(io), buf_(kBufferSize) {
  if (worker.config->rate > 0) {
    auto per_conn = std::chrono::duration<double>(total / worker.config->rate);
    interval_ = std::chrono::duration_cast<Clock::duration>(per_conn);
    intended_ =
        Clock::time_point{} + std::chrono::duration_cast<Clock::duration>(per_conn * index / total);
  }
}

Connection::~Connection() {
  if (ssl_) SSL_free(ssl_);
  if (session_) SSL_SESSION_free(session_);
}

void Connection::Start(Clock::time_point first_send) {
  // intended_ holds this connection's stagger offset until now.
  intended_ = first_send + (intended_ - Clock::time_point{});
  Connect();
}

void Connection::Connect() {
  if (worker_.stopping) return;
  boost::system::error_code ec;
  socket_.close(ec);
  socket_.async_connect(worker_.endpoint, [this](const boost::system::error_code& ec) {
    if (ec) return Fail("connect");
    ssl_ = NewClientTls(socket_, worker_.ssl_ctx);
    if (session_) SSL_set_session(ssl_, session_);
    Handshake();
  });
}

template <typename F>
bool Connection::WaitFor(int ret, F then) {
  return AsyncWaitForTls(ssl_, socket_, ret, [this, then](const boost::system::error_code& ec) {
    if (ec) return Fail("wait");
    (this->*then)();
  });
}

void Connection::Handshake() {
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    worker_.stats.handshakes++;
    if (SSL_session_reused(ssl_)) worker_.stats.resumed++;
    return NextRequest();
  }
  if (!WaitFor(r, &Connection::Handshake)) Fail("TLS handshake");
}

void Connection::NextRequest() {
  if (worker_.stopping) return;
  written_ = 0;
  filled_ = header_end_ = message_end_ = 0;
  if (worker_.config->rate <= 0) {
    // Closed loop; with a new connection per request the clock started
    // before connect, so the handshake is part of the latency.
    if (!worker_.config->new_connection) intended_ = Clock::now();
    return Write();
  }
  if (intended_ > Clock::now()) {
    timer_.expires_at(intended_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Write();
    });
    return;
  }
  Write();
}

void Connection::Write() {
  if (worker_.config->names > 0 && written_ == 0) {
    request_.assign(worker_.request_head);
    request_ += std::to_string(worker_.next_name++ % worker_.config->names);
    request_ += worker_.request_tail;
  }
  const std::string& req = worker_.config->names > 0 ? request_ : worker_.request;
  while (written_ < req.size()) {
    size_t n = 0;
    int r = SSL_write_ex(ssl_, req.data() + written_, req.size() - written_, &n);
    if (r != 1) {
      if (!WaitFor(r, &Connection::Write)) Fail("write");
      return;
    }
    written_ += n;
  }
  // The answer cannot be there yet: wait for the socket instead of paying
  // for a read that would only say EAGAIN.
  socket_.async_wait(asio::socket_base::wait_read, [this](const boost::system::error_code& ec) {
    if (ec) return Fail("wait");
    Read();
  });
}

void Connection::Read() {
  for (;;) {
    if (filled_ == buf_.size()) buf_.resize(buf_.size() * 2);
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf_.data() + filled_, buf_.size() - filled_, &n);
    if (r != 1) {
      if (!WaitFor(r, &Connection::Read)) Fail("read");
      return;
    }
    filled_ += n;
    worker_.stats.bytes_in += n;
    std::string_view data(buf_.data(), filled_);
    if (header_end_ == 0) {
      size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) continue;
      header_end_ = end + 4;
      std::string_view head = data.substr(0, end);
      if (head.size() < 12 || !head.starts_with("HTTP/1.")) return Fail("bad status line");
      std::from_chars(head.data() + 9, head.data() + 12, status_);
      std::string_view cl = HeaderValue(head, "content-length");
      size_t length = 0;
      if (std::from_chars(cl.data(), cl.data() + cl.size(), length).ec != std::errc()) {
        return Fail("response without Content-Length");
      }
      message_end_ = header_end_ + length;
      std::string_view conn = HeaderValue(head, "connection");
      server_closes_ = conn.size() == 5 && strncasecmp(conn.data(), "close", 5) == 0;
    }
    if (filled_ >= message_end_) return OnResponse(status_);
  }
}

void Connection::OnResponse(int status) {
  auto now = Clock::now();
  WorkerStats& s = worker_.stats;
  if (now >= worker_.window_begin && now < worker_.window_end) {
    s.latency.Record(std::chrono::duration_cast<std::chrono::nanoseconds>(now - intended_).count());
    s.responses++;
    s.status_counts[status]++;
    if (status < 200 || status > 299) s.non_2xx++;
    if (worker_.budget && --worker_.budget == 0) {
      worker_.stopping = true;
      io_.stop();
      return;
    }
  }
  if (worker_.config->rate > 0) intended_ += interval_;
  if (worker_.config->new_connection || server_closes_) {
    if (worker_.config->rate <= 0) intended_ = Clock::now();
    CloseTls();
    return Connect();
  }
  NextRequest();
}

void Connection::CloseTls() {
  if (!ssl_) return;
  if (worker_.config->resume) {
    if (session_) SSL_SESSION_free(session_);
    session_ = SSL_get1_session(ssl_);
  }
  SSL_shutdown(ssl_);  // sends close_notify; no need to wait for the peer's
  SSL_free(ssl_);
  ssl_ = nullptr;
  boost::system::error_code ec;
  socket_.close(ec);
}

SSL* NewClientTls(asio::ip::tcp::socket& socket, SSL_CTX* ctx) {
  socket.set_option(asio::ip::tcp::no_delay(true));
  socket.non_blocking(true);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, socket.native_handle());
  SSL_set_connect_state(ssl);
  return ssl;
}

void RecordError(WorkerStats& s, const char* what) {
  s.errors++;
  if (s.first_error.empty()) {
    s.first_error = what;
    unsigned long e = ERR_peek_error();
    if (e) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      s.first_error += std::string(": ") + buf;
    }
  }
  ERR_clear_error();
}

void Connection::Fail(const char* what) {
  RecordError(worker_.stats, what);
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  boost::system::error_code ec;
  socket_.close(ec);
  if (worker_.stopping) return;
  // Back off a little so a dead server does not turn into a busy loop.
  timer_.expires_after(std::chrono::milliseconds(20));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    if (worker_.config->rate <= 0) intended_ = Clock::now();
    Connect();
  });
}

}  // namespace kes::bench
