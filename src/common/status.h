// Status and Result<T>: the one error type that crosses module edges.
//
// A Status is either OK or carries an error Code, the HTTP status the KES API
// answers with, and the message a client sees. Backends translate their own
// failures into a Status at their edge; messages never contain key material,
// secret access keys or tokens.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace kes {

enum class Code {
  kOk = 0,
  kInvalidArgument,   // bad input from a client, a file or the environment
  kNotFound,          // key/policy/identity does not exist
  kAlreadyExists,     // key already exists
  kPermissionDenied,  // not authorized
  kNotAuthentic,      // decryption failed: ciphertext is not authentic
  kUnsupported,       // e.g. algorithm not supported, key without HMAC
  kUnreachable,       // backend cannot be reached (network, offline)
  kUnavailable,       // backend answered, but with an error
  kInternal,          // anything else
};

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(Code code, int http_status, std::string message)
      : code_(code), http_status_(http_status), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status Invalid(std::string msg) { return {Code::kInvalidArgument, 400, std::move(msg)}; }
  static Status Internal(std::string msg) { return {Code::kInternal, 500, std::move(msg)}; }
  static Status Unreachable(std::string msg) { return {Code::kUnreachable, 504, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {Code::kUnavailable, 502, std::move(msg)}; }

  // The KES API's sentinel errors; status and text must match upstream exactly.
  static Status KeyExists() { return {Code::kAlreadyExists, 400, "key already exists"}; }
  static Status KeyNotFound() { return {Code::kNotFound, 404, "key does not exist"}; }
  static Status NotAllowed() {
    return {Code::kPermissionDenied, 403, "not authorized: insufficient permissions"};
  }
  static Status NotAuthentic() {
    return {Code::kNotAuthentic, 400, "decryption failed: ciphertext is not authentic"};
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  int http_status() const { return ok() ? 200 : http_status_; }
  const std::string& message() const { return message_; }
  const Status& status() const { return *this; }  // lets KES_TRY take a Status or a Result

  // Same code, status and message: what KES clients compare.
  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.http_status() == b.http_status() && a.message_ == b.message_;
  }

  // Prefixes the message with context ("fs: <message>"); code and status kept.
  Status WithContext(std::string_view context) const {
    if (ok()) return *this;
    return {code_, http_status_, std::string(context) + ": " + message_};
  }

 private:
  Code code_ = Code::kOk;
  int http_status_ = 200;
  std::string message_;
};

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace kes

// Early-return helpers. KES_TRY(expr) returns the Status of a failed
// Status/Result; KES_ASSIGN_OR_RETURN(lhs, expr) unwraps a Result.
#define KES_CONCAT_INNER(a, b) a##b
#define KES_CONCAT(a, b) KES_CONCAT_INNER(a, b)
#define KES_TRY(expr)                                         \
  do {                                                        \
    auto&& kes_try_tmp = (expr);                              \
    if (!kes_try_tmp.ok()) return ::kes::Status(kes_try_tmp.status()); \
  } while (0)
#define KES_ASSIGN_OR_RETURN(lhs, expr)                       \
  auto KES_CONCAT(kes_res_, __LINE__) = (expr);               \
  if (!KES_CONCAT(kes_res_, __LINE__).ok())                   \
    return ::kes::Status(KES_CONCAT(kes_res_, __LINE__).status()); \
  lhs = std::move(KES_CONCAT(kes_res_, __LINE__)).value()  // NOLINT(bugprone-macro-parentheses): lhs may be a declaration
