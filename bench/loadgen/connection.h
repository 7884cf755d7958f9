// Connection: one client connection of the load generator, driven by an
// Asio reactor on a raw non-blocking socket with OpenSSL reading and
// writing the file descriptor directly (no extra buffer copies, no per-
// request allocation). It sends the same prepared HTTP/1.1 request over and
// over on a keep-alive connection, or on a fresh connection each time.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "loadgen/histogram.h"
#include "loadgen/load_config.h"

namespace kes::bench {

using Clock = std::chrono::steady_clock;

// Counters of one worker thread; merged at the end.
struct WorkerStats {
  LatencyHistogram latency;
  uint64_t responses = 0;  // inside the measurement window
  uint64_t non_2xx = 0;
  uint64_t errors = 0;  // connect/TLS/protocol failures
  uint64_t handshakes = 0;
  uint64_t resumed = 0;
  uint64_t bytes_in = 0;
  std::map<int, uint64_t> status_counts;
  std::string first_error;
};

// State shared by the connections of one worker thread (single-threaded).
struct Worker {
  const LoadConfig* config;
  SSL_CTX* ssl_ctx;
  boost::asio::ip::tcp::endpoint endpoint;
  std::string request;  // the serialized HTTP request
  // With LoadConfig::names: the request split around "{n}".
  std::string request_head, request_tail;
  uint64_t next_name = 0;
  Clock::time_point window_begin, window_end;
  uint64_t budget = 0;  // remaining responses to record; 0 = unlimited
  bool stopping = false;
  WorkerStats stats;
};

// One load-generating client connection, HTTP/1.1 (Connection) or HTTP/2
// (H2Connection).
class LoadConnection {
 public:
  virtual ~LoadConnection() = default;
  // Connects and keeps sending until the worker stops.
  virtual void Start(Clock::time_point first_send) = 0;
};

// Counts a failure in `stats`, keeping the first one's text and OpenSSL's
// reason; clears OpenSSL's error queue.
void RecordError(WorkerStats& stats, const char* what);

// Prepares a freshly connected `socket` for OpenSSL-driven I/O (no Nagle,
// non-blocking) and returns a client SSL on its descriptor.
SSL* NewClientTls(boost::asio::ip::tcp::socket& socket, SSL_CTX* ctx);

// After an SSL_* call returned `ret` on the non-blocking `socket`: if
// OpenSSL wants the socket readable or writable, waits for that and calls
// `handler(error_code)`, and returns true; false if `ret` was a real error.
template <typename Handler>
bool AsyncWaitForTls(SSL* ssl, boost::asio::ip::tcp::socket& socket, int ret, Handler&& handler) {
  int err = SSL_get_error(ssl, ret);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) return false;
  socket.async_wait(err == SSL_ERROR_WANT_READ ? boost::asio::socket_base::wait_read
                                               : boost::asio::socket_base::wait_write,
                    std::forward<Handler>(handler));
  return true;
}

class Connection : public LoadConnection {
 public:
  // `index` of `total` connections: staggers the open-loop schedule.
  Connection(boost::asio::io_context& io, Worker& worker, int index, int total);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void Start(Clock::time_point first_send) override;

 private:
  void Connect();
  void Handshake();
  void NextRequest();
  void Write();
  void Read();
  void OnResponse(int status);
  void Fail(const char* what);
  void CloseTls();
  // Waits for the socket to become readable/writable as OpenSSL asks, then
  // calls `then`; false if `ret` was a real error.
  template <typename F>
  bool WaitFor(int ret, F then);

  boost::asio::io_context& io_;
  Worker& worker_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  SSL* ssl_ = nullptr;
  SSL_SESSION* session_ = nullptr;  // for resumption

  Clock::duration interval_{};  // open loop: time between sends on this connection
  Clock::time_point intended_;  // when the current request should have started
  size_t written_ = 0;
  std::string request_;  // this request when it differs per request

  std::vector<char> buf_;
  size_t filled_ = 0;
  size_t header_end_ = 0;  // 0 until the header is complete
  size_t message_end_ = 0;
  int status_ = 0;
  bool server_closes_ = false;
};

}  // namespace kes::bench
