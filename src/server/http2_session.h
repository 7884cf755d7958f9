// Http2Session: HTTP/2 (RFC 9113) on one TLS connection that negotiated ALPN
// "h2". nghttp2 does the framing, HPACK and flow control; every request goes
// through the same Dispatch as an HTTP/1.1 one (server/dispatch.h), so
// routes, policies, logs and metrics are shared. The session is still one
// connection of its HttpServer, so any per-connection limit counts it once.
//
// Coroutines, all on the connection's single-threaded io_context: Run writes
// (it owns the socket's write side), a reader feeds nghttp2, and each request
// runs its handler in a coroutine of its own, so a slow keystore call holds
// back no other stream. The session waits for its handlers before it ends.
//
// Limits (tests/integration/test_http2_defences.py attacks each, except the
// 90 s ones, the 5 s header-block deadline and the SETTINGS size):
//   * 100 concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS); streams whose
//     handler still runs after a client reset count too, and a new stream over
//     that is refused (REFUSED_STREAM): resetting requests buys no extra work;
//   * nghttp2's RST_STREAM rate limit (CVE-2023-44487), CONTINUATION count
//     (CVE-2024-27316), queued SETTINGS/PING acknowledgements and SETTINGS
//     size; the header list (decoded, RFC 9113 §6.5.2 sizes) is bounded here,
//     so an HPACK bomb is counted, never stored;
//   * per-stream deadlines as over HTTP/1.1: 5 s for the header block, the
//     route's timeout (else 15 s) for the body, the route's timeout counted
//     from the request for the answer (else 90 s), which also ends a stream
//     whose client never opens its flow-control window;
//   * the connection: 5 s for the first stream after the handshake, 90 s
//     without any stream, a write still unfinished after 90 s (1 s once a
//     flood or protocol error ended the session).
#pragma once

#include <nghttp2/nghttp2.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "server/dispatch.h"
#include "server/tls_socket.h"

namespace kes::server {

class Http2Session : public std::enable_shared_from_this<Http2Session> {
 public:
  // What the connection lends the session; all of it outlives Run().
  struct Context {
    TlsSocket& tls;
    Services& services;
    const PeerIdentity& peer;
    std::string_view remote_ip;
    std::atomic<int64_t>& in_flight;                      // the I/O thread's requests being served
    std::function<std::shared_ptr<const State>()> state;  // the current snapshot
    // Called with true when the first open stream starts and false when the
    // last one closes (a connection with no open stream is idle).
    std::function<void(bool busy)> activity;
  };
  using Clock = std::chrono::steady_clock;

  explicit Http2Session(Context ctx);
  ~Http2Session();
  Http2Session(const Http2Session&) = delete;
  Http2Session& operator=(const Http2Session&) = delete;

  // Serves the connection until the client leaves, a limit ends it, or a
  // drain (Tick) has let every stream finish.
  boost::asio::awaitable<void> Run();

  // Called by the I/O thread's sweep a few times a second: expires streams
  // and the connection past their deadlines; `drain` (server stopping or
  // configuration reloaded) sends GOAWAY once and lets open streams finish.
  void Tick(Clock::time_point now, bool drain);

 private:
  struct Stream;
  struct Waker;

  bool Init();
  boost::asio::awaitable<void> ReadLoop();
  boost::asio::awaitable<void> Serve(int32_t id);
  void Respond(Stream& s, Dispatched& d);
  void SubmitResponse(Stream& s, const Response& r);
  void StartHandler(Stream& s);
  Stream* Find(int32_t id);
  void Kick();

  // nghttp2 callbacks (user_data is the session).
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags, void* self);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* self);
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* self);
  static ssize_t OnSend(nghttp2_session*, const uint8_t* data, size_t len, int flags, void* self);
  static int OnSendData(nghttp2_session*, nghttp2_frame* f, const uint8_t* framehd, size_t len,
                        nghttp2_data_source* src, void* self);
  static ssize_t ReadBody(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                          nghttp2_data_source* src, void* self);

  Context ctx_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  std::shared_ptr<Waker> waker_;    // log subscribers reach the session through it
  boost::asio::steady_timer wake_;  // Run waits on it; Kick cancels it
  std::string out_;                 // frames to write; its capacity is reused
  bool out_sensitive_ = false;      // out_ holds key material: wipe after writing
  char in_[16 << 10];
  int running_ = 0;   // handlers running, including those of reset streams
  int orphaned_ = 0;  // handlers still running for a stream already closed
  bool reader_done_ = false;
  bool failed_ = false;
  bool draining_ = false;
  bool writing_ = false;
  Clock::time_point idle_deadline_;
  Clock::time_point write_deadline_ = Clock::time_point::max();
  Clock::time_point write_limit_ = Clock::time_point::max();  // set once the session failed
};

// True when `ssl` negotiated ALPN "h2".
bool NegotiatedHttp2(SSL* ssl);

}  // namespace kes::server
