// H2Connection: one HTTP/2 client connection of the load generator. TLS as
// in Connection (OpenSSL on the raw non-blocking socket, Asio only to wait),
// ALPN "h2", and libnghttp2 for the framing: it keeps LoadConfig::streams
// requests in flight on the one connection and starts a new stream as soon
// as one closes (closed loop), the way a Go HTTP/2 client multiplexes.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "loadgen/connection.h"

namespace kes::bench {

class H2Connection : public LoadConnection {
 public:
  H2Connection(boost::asio::io_context& io, Worker& worker);
  ~H2Connection() override;
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  void Start(Clock::time_point first_send) override;

 private:
  // One of the `streams` request slots; reused for the slot's next request.
  struct Slot {
    H2Connection* conn = nullptr;
    Clock::time_point sent{};
    int status = 0;
    size_t body_sent = 0;
  };

  void Connect();
  void Handshake();
  bool StartSession();
  void Submit(Slot& slot);
  // Sends what nghttp2 has queued and makes sure a read is pending.
  void Pump();
  void OnReadable();
  void OnStreamClose(Slot& slot, uint32_t error_code);
  void Fail(const char* what);
  void Close();

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int OnStreamCloseCallback(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                   void* user_data);
  static ssize_t ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void*);

  boost::asio::io_context& io_;
  Worker& worker_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;

  // Request header fields, built once; only :path changes with --names.
  static constexpr size_t kPathField = 3;
  const std::string authority_;
  std::string content_length_;
  std::string path_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::vector<nghttp2_nv> nva_;
  bool has_body_ = false;
  std::vector<Slot> slots_;
  std::vector<Slot*> ready_;  // closed streams whose slot sends again
  std::string out_;           // framed bytes not yet written
  size_t out_pos_ = 0;
  bool writing_ = false;  // waiting for the socket to become writable
  bool reading_ = false;  // waiting for it to become readable
  std::vector<uint8_t> buf_;
};

}  // namespace kes::bench
