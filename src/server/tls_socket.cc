#include "server/tls_socket.h"

#include <openssl/err.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <cerrno>

namespace kes::server {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// SSL_get_error reads the thread's error queue, which must be empty before
// the call it explains; other code on this thread (a failed decryption) may
// have left entries behind.
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

TlsSocket::TlsSocket(Socket socket, SSL_CTX* ctx) : socket_(std::move(socket)) {
  error_code ec;
  socket_.non_blocking(true, ec);
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) return;
  // Idle keep-alive connections hold no 16 KiB record buffers (nginx does the
  // same); read-ahead lets one read() take a whole request instead of a
  // record header and then its body.
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_read_ahead(ssl_, 1);
  SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
  SSL_set_accept_state(ssl_);
}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

TlsSocket::error_code TlsSocket::Failure(int ssl_error) {
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      unsigned long e = ERR_get_error();
      if (e != 0) {
        ERR_clear_error();
        return {static_cast<int>(e), asio::error::get_ssl_category()};
      }
      // A TCP close (or reset) without close_notify.
      if (errno == 0 || errno == ECONNRESET || errno == EPIPE) {
        return asio::ssl::error::stream_truncated;
      }
      return {errno, asio::error::get_system_category()};
    }
    default: {
      unsigned long e = ERR_get_error();
      ERR_clear_error();
      if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        return asio::ssl::error::stream_truncated;
      }
      if (e == 0) return asio::ssl::error::unspecified_system_error;
      return {static_cast<int>(e), asio::error::get_ssl_category()};
    }
  }
}

asio::awaitable<TlsSocket::error_code> TlsSocket::Await(int ret) {
  const int err = SSL_get_error(ssl_, ret);
  tcp::socket::wait_type what;
  if (err == SSL_ERROR_WANT_READ) {
    what = tcp::socket::wait_read;
  } else if (err == SSL_ERROR_WANT_WRITE) {
    what = tcp::socket::wait_write;
  } else {
    co_return Failure(err);
  }
  // OpenSSL saw EAGAIN, so the socket is drained: the next byte (or free
  // space) raises a fresh edge for the reactor. Nothing else runs on this
  // thread in between, so no edge can be missed.
  // (Asio re-arms the epoll registration for each wait, one epoll_ctl; a
  // MSG_PEEK receive would avoid that but measured no faster.)
  error_code ec;
  co_await socket_.async_wait(what, asio::redirect_error(asio::use_awaitable, ec));
  if (expired_) co_return boost::beast::error::timeout;
  co_return ec;
}

asio::awaitable<TlsSocket::error_code> TlsSocket::Handshake() {
  if (ssl_ == nullptr) co_return asio::error::no_memory;
  for (;;) {
    if (expired_) co_return boost::beast::error::timeout;
    ClearStaleErrors();
    const int ret = SSL_do_handshake(ssl_);
    if (ret == 1) co_return error_code{};
    if (error_code ec = co_await Await(ret)) co_return ec;
  }
}

asio::awaitable<TlsSocket::error_code> TlsSocket::ReadSome(std::span<char> out, size_t& n) {
  n = 0;
  for (;;) {
    if (expired_) co_return boost::beast::error::timeout;
    ClearStaleErrors();
    const int ret = SSL_read_ex(ssl_, out.data(), out.size(), &n);
    if (ret == 1) co_return error_code{};
    if (error_code ec = co_await Await(ret)) co_return ec;
  }
}

asio::awaitable<TlsSocket::error_code> TlsSocket::Write(std::string_view data) {
  while (!data.empty()) {
    if (expired_) co_return boost::beast::error::timeout;
    ClearStaleErrors();
    size_t n = 0;
    const int ret = SSL_write_ex(ssl_, data.data(), data.size(), &n);
    if (ret == 1) {
      data.remove_prefix(n);
      continue;
    }
    if (error_code ec = co_await Await(ret)) co_return ec;
  }
  co_return error_code{};
}

void TlsSocket::Close() {
  error_code ec;
  if (ssl_ != nullptr && !expired_ && SSL_is_init_finished(ssl_)) {
    // Best effort, never waits: a full socket buffer just loses the alert.
    ClearStaleErrors();
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

void TlsSocket::Expire() {
  expired_ = true;
  error_code ec;
  socket_.cancel(ec);
}

void TlsSocket::Abort() {
  error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.cancel(ec);
}

}  // namespace kes::server
