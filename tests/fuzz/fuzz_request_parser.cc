// libFuzzer target: the HTTP/1.1 request reader (server/request_parser.h) as
// HttpServer::Connection drives it — headers first (1 MiB limit), then the
// body with a bounded limit, eager — followed by route resolution of the
// target. Byte 0 picks the size of the pieces the input arrives in; the
// same bytes fed in one piece must parse to the same request (a reader that
// depends on how TCP split the stream is a bug).
#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "server/request_parser.h"
#include "server/router.h"

namespace {

namespace http = boost::beast::http;

struct Parsed {
  bool ok = false;
  std::string method, target, body;
  int version = 0;
  bool keep_alive = false, expect_continue = false;
  bool operator==(const Parsed&) const = default;
};

// Feeds `in` in pieces of `step` bytes; returns what the server would see.
Parsed Parse(std::string_view in, size_t step) {
  std::string target;
  kes::server::RequestParser parser(target);
  parser.header_limit(1 << 20);
  parser.body_limit(boost::none);
  std::string buffer;  // unconsumed bytes, as the connection's flat buffer
  size_t fed = 0;
  bool header_phase = true;
  boost::beast::error_code ec;
  while (!parser.is_done()) {
    if (header_phase && parser.is_header_done()) {
      header_phase = false;
      parser.body_limit(64 << 10);
      parser.eager(true);
    }
    if (buffer.empty() || ec == http::error::need_more) {
      if (fed == in.size()) {
        if (!parser.got_some()) return {};
        parser.put_eof(ec);
        if (ec) return {};
        continue;
      }
      const size_t n = std::min(step, in.size() - fed);
      buffer.append(in.substr(fed, n));
      fed += n;
    }
    ec = {};
    const size_t used = parser.put(boost::asio::buffer(buffer.data(), buffer.size()), ec);
    buffer.erase(0, used);
    if (ec && ec != http::error::need_more) return {};
  }
  Parsed p;
  p.ok = true;
  p.method = std::string(parser.method_string());
  p.target = std::string(parser.target());
  p.body = parser.body();
  p.version = parser.version();
  p.keep_alive = parser.keep_alive();
  p.expect_continue = parser.expect_continue();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = 1 + data[0] % 16;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Parsed pieces = Parse(in, step);
  const Parsed whole = Parse(in, in.size() + 1);
  if (pieces.ok && whole.ok && !(pieces == whole)) std::abort();
  if (pieces.ok) (void)kes::server::ResolveTarget(pieces.target);
  return 0;
}
