// HttpServer: the TLS listener and its connections (api.md §1). One
// single-threaded io_context per I/O thread; the acceptor (on the first) hands
// accepted sockets round-robin to them, and a connection then lives entirely
// on its io_context, so it needs no strand. Per connection: TLS handshake
// (TlsSocket), identity computed once, then HTTP/1.1 keep-alive requests
// parsed with Beast's parser, with upstream's timeouts (header 5 s, idle
// 90 s, per-route deadline). Deadlines are plain fields that a sweep on each
// I/O thread checks a few times a second, so a request arms no timer.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "server/connection_slots.h"
#include "server/handlers.h"
#include "server/state.h"

namespace kes::server {

class HttpServer {
 public:
  HttpServer(Services& services, StateHolder& state);
  ~HttpServer();

  // Binds and listens on ip:port (an empty ip means all interfaces). Errors
  // read like Go's ("listen tcp 0.0.0.0:7373: bind: address already in use").
  Status Listen(const std::string& ip, uint16_t port);
  uint16_t port() const;

  // Starts accepting on `threads` I/O threads.
  void Start(int threads);
  // Stops accepting, lets in-flight requests finish for up to `grace`, then
  // closes every connection and joins the I/O threads.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  class Connection;
  struct IoThread;
  void Accept();
  void Sweep(IoThread& t);

  Services& services_;
  StateHolder& state_;
  // Declared before io_: connections release their slot when destroyed.
  ConnectionSlots slots_;
  // io_[0] exists from construction (it owns the acceptor); Start adds the
  // rest. Declared before acceptor_ so that it is destroyed after it.
  std::vector<std::unique_ptr<IoThread>> io_;
  size_t next_io_ = 0;  // round-robin cursor; only the acceptor's thread uses it
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
};

}  // namespace kes::server
