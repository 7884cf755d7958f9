// RequestParser: Beast's HTTP/1.1 request parser (basic_parser) keeping only
// what the server reads from a request — method, target, version,
// keep-alive, "Expect: 100-continue" — and the body. beast::http::parser
// would also build a field list (one heap node per header field) that
// nothing here uses. The target is copied into a string the caller owns and
// reuses, so a request allocates for its body only.
#pragma once

#include <boost/beast/http/basic_parser.hpp>
#include <string>
#include <string_view>

namespace kes::server {

class RequestParser : public boost::beast::http::basic_parser<true> {
 public:
  // `target` receives the request-target; its capacity is reused.
  explicit RequestParser(std::string& target) : target_(target) {}
  // A body that was not handed on (refused, drained) may hold a plaintext.
  ~RequestParser() override;

  boost::beast::http::verb method() const { return method_; }
  // The method as sent (for verb::unknown too).
  std::string_view method_string() const { return method_string_; }
  std::string_view target() const { return target_; }
  int version() const { return version_; }
  bool expect_continue() const { return expect_continue_; }
  // Go's net/http answers "400 Bad Request: <this>" to a request without
  // exactly one Host field (HTTP/1.0 may omit it); empty when it has one.
  std::string_view HostError() const;
  std::string& body() { return body_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target,
                       int version, error_code& ec) override;
  void on_response_impl(int, string_view, int, error_code& ec) override;
  void on_field_impl(boost::beast::http::field name, string_view name_string, string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code& ec) override;
  std::size_t on_body_impl(string_view body, error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override;
  void on_finish_impl(error_code&) override {}

  std::string& target_;
  std::string method_string_;
  std::string body_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  int version_ = 11;
  bool expect_continue_ = false;
  int host_fields_ = 0;
};

}  // namespace kes::server
