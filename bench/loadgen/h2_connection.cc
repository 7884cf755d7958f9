#include "loadgen/h2_connection.h"

#include <openssl/err.h>

#include <boost/asio/error.hpp>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string_view>

namespace kes::bench {
namespace asio = boost::asio;

namespace {

constexpr size_t kReadSize = 64 * 1024;
// Framed output is gathered up to this size before one SSL_write.
constexpr size_t kWriteBatch = 64 * 1024;

nghttp2_nv Header(std::string_view name, std::string_view value) {
  return {const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
          const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())), name.size(),
          value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

H2Connection::H2Connection(asio::io_context& io, Worker& worker)
    : io_(io),
      worker_(worker),
      socket_(io),
      timer_(io),
      authority_(worker.config->host + ":" + std::to_string(worker.config->port)),
      buf_(kReadSize) {
  const LoadConfig& c = *worker.config;
  slots_.resize(std::max(1, c.streams), Slot{.conn = this});
  ready_.reserve(slots_.size());
  has_body_ = !c.body.empty() || c.method == "POST" || c.method == "PUT";
  content_length_ = std::to_string(c.body.size());
  // HTTP/2 field names are lowercase; --header lines usually are not.
  for (const std::string& h : c.headers) {
    size_t colon = h.find(':');
    if (colon == std::string::npos) continue;
    std::string name = h.substr(0, colon);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t v = h.find_first_not_of(' ', colon + 1);
    headers_.emplace_back(std::move(name), v == std::string::npos ? "" : h.substr(v));
  }
  nva_ = {Header(":method", c.method), Header(":scheme", "https"), Header(":authority", authority_),
          Header(":path", c.path), Header("user-agent", "kes-loadgen")};
  if (has_body_) {
    nva_.push_back(Header("content-type", "application/json"));
    nva_.push_back(Header("content-length", content_length_));
  }
  for (const auto& [name, value] : headers_) nva_.push_back(Header(name, value));
}

H2Connection::~H2Connection() { Close(); }

void H2Connection::Start(Clock::time_point) { Connect(); }

void H2Connection::Connect() {
  if (worker_.stopping) return;
  socket_.async_connect(worker_.endpoint, [this](const boost::system::error_code& ec) {
    if (ec) return Fail("connect");
    ssl_ = NewClientTls(socket_, worker_.ssl_ctx);
    Handshake();
  });
}

void H2Connection::Handshake() {
  int r = SSL_do_handshake(ssl_);
  if (r != 1) {
    if (!AsyncWaitForTls(ssl_, socket_, r, [this](const boost::system::error_code& ec) {
          if (ec) return Fail("wait");
          Handshake();
        })) {
      Fail("TLS handshake");
    }
    return;
  }
  worker_.stats.handshakes++;
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &proto, &len);
  if (std::string_view(reinterpret_cast<const char*>(proto), len) != "h2") {
    return Fail("the server did not select h2 by ALPN");
  }
  if (!StartSession()) return Fail("nghttp2 session");
  for (Slot& s : slots_) Submit(s);
  Pump();
}

bool H2Connection::StartSession() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_header_callback(cb, &H2Connection::OnHeader);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &H2Connection::OnStreamCloseCallback);
  int rv = nghttp2_session_client_new(&session_, cb, this);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return false;
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  return nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 1) == 0;
}

void H2Connection::Submit(Slot& slot) {
  const LoadConfig& c = *worker_.config;
  if (c.names > 0) {
    path_.assign(c.path);
    size_t at = path_.find("{n}");
    if (at != std::string::npos) {
      path_.replace(at, 3, std::to_string(worker_.next_name++ % c.names));
    }
    nva_[kPathField] = Header(":path", path_);
  }
  slot.status = 0;
  slot.body_sent = 0;
  slot.sent = Clock::now();
  nghttp2_data_provider body{};
  body.source.ptr = &slot;
  body.read_callback = &H2Connection::ReadBody;
  // nghttp2 copies the header fields (NGHTTP2_NV_FLAG_NONE).
  if (nghttp2_submit_request(session_, nullptr, nva_.data(), nva_.size(),
                             has_body_ ? &body : nullptr, &slot) < 0) {
    RecordError(worker_.stats, "nghttp2_submit_request");
  }
}

ssize_t H2Connection::ReadBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                               uint32_t* data_flags, nghttp2_data_source* source, void*) {
  auto* slot = static_cast<Slot*>(source->ptr);
  const std::string& body = slot->conn->worker_.config->body;
  size_t n = std::min(length, body.size() - slot->body_sent);
  std::memcpy(buf, body.data() + slot->body_sent, n);
  slot->body_sent += n;
  if (slot->body_sent == body.size()) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

int H2Connection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* user_data) {
  auto* self = static_cast<H2Connection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || std::memcmp(name, ":status", 7) != 0) {
    return 0;
  }
  auto* slot =
      static_cast<Slot*>(nghttp2_session_get_stream_user_data(self->session_, frame->hd.stream_id));
  if (slot)
    std::from_chars(reinterpret_cast<const char*>(value),
                    reinterpret_cast<const char*>(value) + valuelen, slot->status);
  return 0;
}

int H2Connection::OnStreamCloseCallback(nghttp2_session* session, int32_t stream_id,
                                        uint32_t error_code, void* user_data) {
  auto* slot = static_cast<Slot*>(nghttp2_session_get_stream_user_data(session, stream_id));
  if (slot) static_cast<H2Connection*>(user_data)->OnStreamClose(*slot, error_code);
  return 0;
}

void H2Connection::OnStreamClose(Slot& slot, uint32_t error_code) {
  WorkerStats& s = worker_.stats;
  if (error_code != NGHTTP2_NO_ERROR || slot.status == 0) {
    RecordError(s, "HTTP/2 stream reset");
  } else {
    auto now = Clock::now();
    if (now >= worker_.window_begin && now < worker_.window_end) {
      s.latency.Record(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - slot.sent).count());
      s.responses++;
      s.status_counts[slot.status]++;
      if (slot.status < 200 || slot.status > 299) s.non_2xx++;
      if (worker_.budget && --worker_.budget == 0) {
        worker_.stopping = true;
        io_.stop();
        return;
      }
    }
  }
  // Submitted after nghttp2_session_mem_recv returns, not from its callback.
  ready_.push_back(&slot);
}

void H2Connection::Pump() {
  if (writing_ || worker_.stopping || !session_) return;
  for (;;) {
    if (out_pos_ == out_.size()) {
      out_.clear();
      out_pos_ = 0;
      for (Slot* s : ready_) Submit(*s);
      ready_.clear();
      const uint8_t* data = nullptr;
      ssize_t n = 0;
      while (out_.size() < kWriteBatch && (n = nghttp2_session_mem_send(session_, &data)) > 0) {
        out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      if (n < 0) return Fail("nghttp2_session_mem_send");
      if (out_.empty()) break;
    }
    size_t written = 0;
    int r = SSL_write_ex(ssl_, out_.data() + out_pos_, out_.size() - out_pos_, &written);
    if (r != 1) {
      // OpenSSL wants the same buffer again: out_ is left alone until then.
      writing_ = AsyncWaitForTls(ssl_, socket_, r, [this](const boost::system::error_code& ec) {
        writing_ = false;
        if (ec == asio::error::operation_aborted) return;
        if (ec) return Fail("wait");
        Pump();
      });
      if (!writing_) Fail("write");
      return;
    }
    out_pos_ += written;
  }
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) {
    return Fail("the server ended the HTTP/2 session");
  }
  if (!reading_) {
    reading_ = true;
    socket_.async_wait(asio::socket_base::wait_read, [this](const boost::system::error_code& ec) {
      reading_ = false;
      if (ec == asio::error::operation_aborted) return;
      if (ec) return Fail("wait");
      OnReadable();
    });
  }
}

void H2Connection::OnReadable() {
  if (!session_ || worker_.stopping) return;
  for (;;) {
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf_.data(), buf_.size(), &n);
    if (r != 1) {
      int err = SSL_get_error(ssl_, r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
      return Fail(err == SSL_ERROR_ZERO_RETURN ? "the server closed the connection" : "read");
    }
    worker_.stats.bytes_in += n;
    if (nghttp2_session_mem_recv(session_, buf_.data(), n) < 0) return Fail("HTTP/2 framing");
    if (worker_.stopping) return;
  }
  Pump();
}

void H2Connection::Close() {
  if (session_) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
  if (ssl_) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  boost::system::error_code ec;
  socket_.close(ec);
  ready_.clear();
  out_.clear();
  out_pos_ = 0;
  writing_ = reading_ = false;
}

void H2Connection::Fail(const char* what) {
  RecordError(worker_.stats, what);
  Close();
  if (worker_.stopping) return;
  // Back off a little so a dead server does not turn into a busy loop.
  timer_.expires_after(std::chrono::milliseconds(20));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Connect();
  });
}

}  // namespace kes::bench
