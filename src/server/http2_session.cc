#include "server/http2_session.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cstring>
#include <vector>

#include "crypto/secret_bytes.h"

namespace kes::server {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kMaxStreams = 100;
constexpr size_t kHeaderListLimit = 1 << 20;   // as HTTP/1.1's header limit (Go's default)
constexpr size_t kDiscardBodyLimit = 1 << 20;  // bodies of routes that read none
constexpr size_t kOutLimit = 64 << 10;         // bytes gathered for one write
constexpr auto kHeaderTimeout = 5s;
constexpr auto kBodyTimeout = 15s;
constexpr auto kIdleTimeout = 90s;
constexpr auto kWriteTimeout = 90s;

std::string_view View(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

nghttp2_nv Field(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

bool NegotiatedHttp2(SSL* ssl) {
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl, &p, &len);
  return len == 2 && p[0] == 'h' && p[1] == '2';
}

// One request/response exchange.
struct Http2Session::Stream {
  enum class Phase { kHeaders, kBody, kHandling, kResponding, kLog };

  Stream(Http2Session& session, int32_t id) : session(session), id(id) {}
  ~Stream() {
    crypto::Zeroize(body.data(), body.size());
    if (response.sensitive) crypto::Zeroize(response.body.data(), response.body.size());
    if (log) session.ctx_.services.logs.Unsubscribe(*log, subscriber);
    if (counted) session.ctx_.in_flight.fetch_sub(1, std::memory_order_release);
  }

  Http2Session& session;
  const int32_t id;
  Phase phase = Phase::kHeaders;
  Clock::time_point deadline = Clock::now() + kHeaderTimeout;
  Clock::time_point received;
  std::string method;
  std::string path;
  size_t header_bytes = 0;
  bool header_too_large = false;
  Resolution target;
  size_t body_limit = kDiscardBodyLimit;
  std::string body;
  uint64_t body_bytes = 0;
  bool body_too_large = false;
  bool counted = false;  // in ctx_.in_flight
  Response response;
  size_t sent = 0;  // bytes of response.body (or log_out) handed to nghttp2
  // A log stream: lines from the subscriber are taken only when flow control
  // lets them out, so a client that does not read fills the subscriber's
  // bounded queue, never this session.
  std::optional<LogStream> log;
  std::shared_ptr<LogSubscriber> subscriber;
  std::vector<std::string> lines;
  std::string log_out;
  bool log_ending = false;
};

// Log subscribers wake the session from publishing threads through this: it
// names the executor and the session without keeping either alive.
struct Http2Session::Waker {
  asio::any_io_executor ex;
  std::weak_ptr<Http2Session> session;
};

Http2Session::Http2Session(Context ctx)
    : ctx_(std::move(ctx)), wake_(ctx_.tls.socket().get_executor()) {}

Http2Session::~Http2Session() {
  streams_.clear();  // before the nghttp2 session they may point into
  if (session_ != nullptr) nghttp2_session_del(session_);
  crypto::Zeroize(out_.data(), out_.size());
}

bool Http2Session::Init() {
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, OnStreamClose);
  nghttp2_session_callbacks_set_send_callback(cb, OnSend);
  nghttp2_session_callbacks_set_send_data_callback(cb, OnSendData);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return false;
  }
  // The library's defaults, spelled out because the defences rely on them.
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  const int rv = nghttp2_session_server_new2(&session_, cb, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return false;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kHeaderListLimit)},
  };
  if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) {
    return false;
  }
  waker_ = std::make_shared<Waker>(Waker{ctx_.tls.socket().get_executor(), weak_from_this()});
  return true;
}

void Http2Session::Kick() { wake_.cancel(); }

Http2Session::Stream* Http2Session::Find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

asio::awaitable<void> Http2Session::Run() {
  if (!Init()) co_return;
  idle_deadline_ = Clock::now() + kHeaderTimeout;
  asio::co_spawn(
      wake_.get_executor(),
      [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->ReadLoop(); },
      asio::detached);

  boost::system::error_code ec;
  while (!failed_) {
    out_.clear();
    if (nghttp2_session_send(session_) != 0) break;
    if (!out_.empty()) {
      write_deadline_ = std::min(Clock::now() + kWriteTimeout, write_limit_);
      writing_ = true;
      ec = co_await ctx_.tls.Write(out_);
      writing_ = false;
      write_deadline_ = Clock::time_point::max();
      if (out_sensitive_) {
        crypto::Zeroize(out_.data(), out_.size());
        out_sensitive_ = false;
      }
      if (ec) break;
      continue;
    }
    if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) break;
    if (reader_done_) break;
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  failed_ = true;

  // Stop the reader, then wait for the handlers: they use the connection's
  // peer identity and I/O thread, which must outlive them.
  if (!reader_done_) ctx_.tls.Abort();
  while (!reader_done_ || running_ > 0) {
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  streams_.clear();
}

asio::awaitable<void> Http2Session::ReadLoop() {
  while (!failed_) {
    size_t n = 0;
    if (co_await ctx_.tls.ReadSome(std::span<char>(in_), n)) break;
    const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(in_), n);
    Kick();
    if (rv < 0) {
      // A fatal error (a flood, a protocol violation): nghttp2 has queued a
      // GOAWAY; a client that does not read gets a second to take it.
      write_limit_ = Clock::now() + 1s;
      if (writing_) write_deadline_ = std::min(write_deadline_, write_limit_);
      break;
    }
    if (!nghttp2_session_want_read(session_)) break;
  }
  reader_done_ = true;
  Kick();
}

void Http2Session::Tick(Clock::time_point now, bool drain) {
  if (session_ == nullptr || failed_) return;
  if (drain && !draining_) {
    draining_ = true;
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                          nullptr, 0);
    for (auto& [id, s] : streams_) {
      if (s->log) {
        s->log_ending = true;
        nghttp2_session_resume_data(session_, id);
      }
    }
    Kick();
  }
  for (auto& [id, s] : streams_) {
    if (now >= s->deadline) {
      s->deadline = Clock::time_point::max();
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      Kick();
    }
  }
  if (streams_.empty() && running_ == 0 && now >= idle_deadline_) {
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    idle_deadline_ = Clock::time_point::max();
    Kick();
  }
  // A client that stops reading altogether (TCP window closed).
  if (writing_ && now >= write_deadline_) ctx_.tls.Expire();
}

void Http2Session::StartHandler(Stream& s) {
  if (s.phase != Stream::Phase::kBody) return;
  s.phase = Stream::Phase::kHandling;
  // The handler may wait for the keystore for as long as it takes; the
  // answer's deadline is set when it is submitted.
  s.deadline = Clock::time_point::max();
  if (s.header_too_large) {
    Dispatched d;
    d.response.status = 431;
    d.response.type = Response::Type::kText;
    d.response.body = "431 Request Header Fields Too Large";
    Respond(s, d);
    return;
  }
  ++running_;
  asio::co_spawn(
      wake_.get_executor(),
      [self = shared_from_this(), id = s.id]() -> asio::awaitable<void> {
        co_await self->Serve(id);
      },
      asio::detached);
}

asio::awaitable<void> Http2Session::Serve(int32_t id) {
  // Everything the handler uses is moved out of the stream: a client may
  // reset the stream (and so destroy it) while the handler runs.
  Stream* s = Find(id);
  struct Running {
    Http2Session& session;
    int32_t id;
    ~Running() {
      --session.running_;
      if (session.Find(id) == nullptr) --session.orphaned_;
      session.Kick();
    }
  } running{*this, id};
  if (s == nullptr) co_return;
  const std::string method = s->method;
  std::string body = std::move(s->body);
  RequestHead head{method, std::move(s->target), s->body_too_large, s->body_bytes > 0, s->received};
  const std::shared_ptr<const State> state = ctx_.state();
  Dispatched d;
  try {
    d = co_await Dispatch(head, body, ctx_.peer, ctx_.remote_ip, *state, ctx_.services);
  } catch (const std::exception&) {
    d.response = Response::Error(500, "internal server error");
  }
  crypto::Zeroize(body.data(), body.size());
  s = Find(id);
  if (s == nullptr || failed_) {
    if (d.response.sensitive) crypto::Zeroize(d.response.body.data(), d.response.body.size());
    co_return;
  }
  Respond(*s, d);
}

void Http2Session::Respond(Stream& s, Dispatched& d) {
  s.phase = Stream::Phase::kResponding;
  if (d.log_stream) {
    s.phase = Stream::Phase::kLog;
    s.log = d.log_stream;
    s.subscriber =
        ctx_.services.logs.Subscribe(*s.log, [weak = std::weak_ptr<Waker>(waker_), id = s.id] {
          auto w = weak.lock();
          if (!w) return;
          asio::post(w->ex, [session = w->session, id] {
            auto self = session.lock();
            if (!self || self->failed_ || self->Find(id) == nullptr) return;
            nghttp2_session_resume_data(self->session_, id);
            self->Kick();
          });
        });
    const nghttp2_nv nv[] = {Field(":status", "200"), Field("content-type", "application/x-ndjson"),
                             Field("date", HttpDate())};
    nghttp2_data_provider body{};
    body.source.ptr = &s;
    body.read_callback = ReadBody;
    nghttp2_submit_response(session_, s.id, nv, std::size(nv), &body);
    if (draining_) s.log_ending = true;
    Kick();
    return;
  }
  const auto now = Clock::now();
  if (d.deadline != Clock::time_point{}) {
    // The route's deadline has passed: as over HTTP/1.1 the client sees the
    // exchange broken, here the stream rather than the connection.
    if (now >= d.deadline) {
      if (d.response.sensitive) crypto::Zeroize(d.response.body.data(), d.response.body.size());
      nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_INTERNAL_ERROR);
      Kick();
      return;
    }
    s.deadline = d.deadline;
  } else {
    s.deadline = now + kIdleTimeout;
  }
  s.response = std::move(d.response);
  SubmitResponse(s, s.response);
  Kick();
}

void Http2Session::SubmitResponse(Stream& s, const Response& r) {
  char status[4];
  std::to_chars(status, status + sizeof status, r.status);
  char length[24];
  const auto end = std::to_chars(length, length + sizeof length, r.body.size()).ptr;
  nghttp2_nv nv[7];
  size_t n = 0;
  nv[n++] = Field(":status", std::string_view(status, 3));
  if (!r.accept.empty()) nv[n++] = Field("accept", r.accept);
  if (!r.location.empty()) nv[n++] = Field("location", r.location);
  if (r.type != Response::Type::kNone) nv[n++] = Field("content-type", ContentTypeOf(r.type));
  if (r.type == Response::Type::kText && r.status == 404) {
    nv[n++] = Field("x-content-type-options", "nosniff");
  }
  nv[n++] = Field("date", HttpDate());
  nv[n++] = Field("content-length", std::string_view(length, static_cast<size_t>(end - length)));
  nghttp2_data_provider body{};
  body.source.ptr = &s;
  body.read_callback = ReadBody;
  const bool with_body = !r.body.empty() && s.method != "HEAD";
  nghttp2_submit_response(session_, s.id, nv, n, with_body ? &body : nullptr);
}

int Http2Session::OnBeginHeaders(nghttp2_session* ng, const nghttp2_frame* f, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  // Handlers of streams the client has reset still run; they count against
  // the stream limit until they finish.
  if (self->streams_.size() + static_cast<size_t>(self->orphaned_) >= kMaxStreams) {
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
    return 0;
  }
  auto s = std::make_unique<Stream>(*self, f->hd.stream_id);
  nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, s.get());
  if (self->streams_.empty() && self->ctx_.activity) self->ctx_.activity(true);
  self->streams_.emplace(f->hd.stream_id, std::move(s));
  self->idle_deadline_ = Clock::time_point::max();
  return 0;
}

int Http2Session::OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* p) {
  auto* self = static_cast<Http2Session*>(p);
  Stream* s = self->Find(f->hd.stream_id);
  if (s == nullptr || s->phase != Stream::Phase::kHeaders) return 0;  // refused, or trailers
  // RFC 9113 §6.5.2: name + value + 32 per field. Counted, never stored
  // past the limit, so a small HPACK block that decodes huge costs nothing.
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > kHeaderListLimit) {
    s->header_too_large = true;
    std::string().swap(s->path);
    return 0;
  }
  const std::string_view n = View(name, namelen);
  if (n == ":method") {
    s->method.assign(View(value, valuelen));
  } else if (n == ":path") {
    s->path.assign(View(value, valuelen));
  }
  return 0;
}

int Http2Session::OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) return 0;
  Stream* s = self->Find(f->hd.stream_id);
  if (s == nullptr) return 0;
  if (f->hd.type == NGHTTP2_HEADERS && s->phase == Stream::Phase::kHeaders) {
    // The header block is complete (nghttp2 reports HEADERS once its
    // CONTINUATIONs are in).
    s->phase = Stream::Phase::kBody;
    s->received = Clock::now();
    if (!s->header_too_large) {
      s->target = ResolveTarget(s->path);
      const Route* route = s->target.kind == Resolution::Kind::kMatch ? s->target.route : nullptr;
      if (route != nullptr && route->max_body > 0) s->body_limit = route->max_body;
      const std::shared_ptr<const State> st = self->ctx_.state();
      const auto timeout = route != nullptr ? st->settings(*route).timeout : 0ns;
      s->deadline =
          s->received + (timeout.count() > 0 ? std::chrono::duration_cast<Clock::duration>(timeout)
                                             : Clock::duration(kBodyTimeout));
    }
    s->counted = true;
    self->ctx_.in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) self->StartHandler(*s);
  return 0;
}

int Http2Session::OnDataChunk(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data,
                              size_t len, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  Stream* s = self->Find(id);
  if (s == nullptr || s->phase != Stream::Phase::kBody) return 0;
  s->body_bytes += len;
  if (s->body_too_large) return 0;
  if (s->body.size() + len > s->body_limit) {
    // Read and dropped, so the client can finish and read the answer.
    s->body_too_large = true;
    crypto::Zeroize(s->body.data(), s->body.size());
    std::string().swap(s->body);
    return 0;
  }
  s->body.append(View(data, len));
  return 0;
}

int Http2Session::OnStreamClose(nghttp2_session*, int32_t id, uint32_t, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  if (it->second->phase == Stream::Phase::kHandling) ++self->orphaned_;  // reset mid-handler
  self->streams_.erase(it);
  if (self->streams_.empty()) {
    self->idle_deadline_ = Clock::now() + kIdleTimeout;
    if (self->ctx_.activity) self->ctx_.activity(false);
  }
  return 0;
}

ssize_t Http2Session::OnSend(nghttp2_session*, const uint8_t* data, size_t len, int, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  if (self->out_.size() >= kOutLimit) return NGHTTP2_ERR_WOULDBLOCK;
  self->out_.append(View(data, len));
  return static_cast<ssize_t>(len);
}

ssize_t Http2Session::ReadBody(nghttp2_session*, int32_t, uint8_t*, size_t len, uint32_t* flags,
                               nghttp2_data_source* src, void*) {
  auto* s = static_cast<Stream*>(src->ptr);
  // The bytes are copied once, straight into the write buffer (OnSendData).
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (!s->log) {
    const size_t n = std::min(len, s->response.body.size() - s->sent);
    if (s->sent + n == s->response.body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (s->sent == s->log_out.size()) {
    s->sent = 0;
    s->log_out.clear();
    s->subscriber->Drain(&s->lines);
    for (const auto& l : s->lines) {
      s->log_out += l;
      s->log_out += '\n';
    }
  }
  if (s->log_out.empty()) {
    if (s->log_ending) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      return 0;
    }
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(std::min(len, s->log_out.size() - s->sent));
}

int Http2Session::OnSendData(nghttp2_session*, nghttp2_frame* f, const uint8_t* framehd, size_t len,
                             nghttp2_data_source* src, void* p) {
  auto* self = static_cast<Http2Session*>(p);
  auto* s = static_cast<Stream*>(src->ptr);
  if (self->out_.size() >= kOutLimit) return NGHTTP2_ERR_WOULDBLOCK;
  self->out_.append(View(framehd, 9));
  const std::string& from = s->log ? s->log_out : s->response.body;
  self->out_.append(from, s->sent, len);
  s->sent += len;
  if (s->response.sensitive) self->out_sensitive_ = true;
  return 0;
}

}  // namespace kes::server
