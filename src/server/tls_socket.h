// TlsSocket: the server side of one TLS connection, with OpenSSL reading and
// writing the non-blocking TCP socket itself (SSL_set_fd) and the
// io_context's reactor used only to wait until the socket is ready.
//
// Why not asio::ssl::stream: it moves every byte through a BIO pair and runs
// each read or write as a chain of composed operations (handler allocation,
// posted completions, a timer per operation with beast::basic_stream). Here a
// request already in the socket costs one read() and its answer one write(),
// and nothing is allocated per request (docs/performance.md).
//
// Contract: every method is called from the socket's io_context thread, and at
// most one read and one write may be outstanding at a time (a log stream
// writes while a reader watches for the client going away). Errors:
// asio::error::eof after the peer's close_notify or a clean TCP close,
// asio::ssl::error::stream_truncated for a close without close_notify,
// beast::error::timeout once Expire() was called, ssl-category codes for TLS
// failures (their messages read like asio's).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <span>
#include <string_view>

namespace kes::server {

class TlsSocket {
 public:
  using Executor = boost::asio::io_context::executor_type;
  using Socket = boost::asio::ip::tcp::socket::rebind_executor<Executor>::other;
  using error_code = boost::system::error_code;

  // Takes the accepted socket; `ctx` is the server's TLS context (the SSL
  // keeps its own reference to it).
  TlsSocket(Socket socket, SSL_CTX* ctx);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  boost::asio::awaitable<error_code> Handshake();
  // Reads at least one byte of application data into `out`; `n` is the count.
  boost::asio::awaitable<error_code> ReadSome(std::span<char> out, size_t& n);
  // Writes all of `data`.
  boost::asio::awaitable<error_code> Write(std::string_view data);
  // Sends close_notify without waiting for the peer's, then closes the socket.
  void Close();

  // Makes pending and future operations fail with beast::error::timeout.
  void Expire();
  bool expired() const { return expired_; }
  // Wakes a pending wait (it completes with operation_aborted) and shuts the
  // TCP connection down in both directions.
  void Abort();

  SSL* native_handle() const { return ssl_; }
  Socket& socket() { return socket_; }

 private:
  // Waits for what SSL_get_error asked for after a call returned `ret`; an
  // empty code means "call again".
  boost::asio::awaitable<error_code> Await(int ret);
  error_code Failure(int ssl_error);

  Socket socket_;
  SSL* ssl_ = nullptr;
  bool expired_ = false;
};

}  // namespace kes::server
