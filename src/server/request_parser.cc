#include "server/request_parser.h"

#include <algorithm>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

#include "crypto/secret_bytes.h"

namespace kes::server {
namespace http = boost::beast::http;

RequestParser::~RequestParser() { crypto::Zeroize(body_.data(), body_.size()); }

void RequestParser::on_request_impl(http::verb method, string_view method_str, string_view target,
                                    int version, error_code&) {
  method_ = method;
  method_string_.assign(method_str.data(), method_str.size());
  target_.assign(target.data(), target.size());
  version_ = version;
}

void RequestParser::on_response_impl(int, string_view, int, error_code& ec) {
  ec = http::error::bad_version;  // never called for a request parser
}

void RequestParser::on_field_impl(http::field name, string_view, string_view value, error_code&) {
  if (name == http::field::expect && boost::beast::iequals(value, "100-continue")) {
    expect_continue_ = true;
  } else if (name == http::field::host) {
    ++host_fields_;
  }
}

std::string_view RequestParser::HostError() const {
  if (host_fields_ > 1) return "too many Host headers";
  if (host_fields_ == 0 && version_ >= 11 && method_ != http::verb::connect) {
    return "missing required Host header";
  }
  return {};
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                                      error_code&) {
  // basic_parser has already checked the length against body_limit().
  // Reserved up to 1 MiB only: the caller may not have bounded the length
  // yet (found by fuzz_request_parser: a 3e16-byte Content-Length).
  if (content_length)
    body_.reserve(static_cast<size_t>(std::min<std::uint64_t>(*content_length, 1 << 20)));
}

std::size_t RequestParser::on_body_impl(string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, string_view body, error_code&) {
  body_.append(body.data(), body.size());
  return body.size();
}

}  // namespace kes::server
