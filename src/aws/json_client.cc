#include "aws/json_client.h"

#include <openssl/crypto.h>

#include <ctime>
#include <thread>

namespace kes::aws {

std::optional<Clock::time_point> ParseHttpDate(std::string_view text) {
  std::tm tm{};
  std::string s(text);
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  // Clock counts nanoseconds in 64 bits: a server clock outside 1970-2200 is
  // no clock to learn an offset from, and would overflow the conversion.
  if (tm.tm_year < 70 || tm.tm_year > 300) return std::nullopt;
  return Clock::from_time_t(timegm(&tm));
}

CallResult DecodeResponse(const net::HttpResponse& response) {
  CallResult result;
  if (response.status < 200 || response.status >= 300) {
    result.error = ParseErrorResponse(response);
    return result;
  }
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  if (response.body.empty()) parsed = nlohmann::json::object();
  if (!parsed.is_object()) {
    AwsError error;
    error.http_status = response.status;
    error.code = "SerializationError";
    error.message = "response is not a JSON object";
    result.error = std::move(error);
    return result;
  }
  result.body = std::move(parsed);
  return result;
}

JsonClient::JsonClient(JsonClientOptions options, std::shared_ptr<net::HttpClient> http,
                       std::shared_ptr<CredentialProvider> credentials)
    : options_(std::move(options)),
      http_(std::move(http)),
      credentials_(std::move(credentials)),
      signer_(SigningParams{options_.region, options_.service}),
      retry_(options_.retry),
      sleeper_([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }) {}

void JsonClient::LearnClockOffset(const net::HttpResponse& response) {
  if (!response.Header("age").empty()) return;  // from a cache: not the server's clock now
  auto server = ParseHttpDate(response.Header("date"));
  if (!server) return;
  auto offset = std::chrono::duration_cast<std::chrono::milliseconds>(*server - Clock::now());
  // The Date header has one-second resolution: ignore offsets that small.
  if (std::chrono::abs(offset) < std::chrono::seconds(2)) offset = std::chrono::milliseconds(0);
  clock_offset_ms_.store(offset.count());
}

CallResult JsonClient::Call(std::string_view operation, const nlohmann::json& input,
                            Deadline deadline) {
  // Bodies may carry key material (SecretString): wipe every copy we own.
  std::string body;
  struct Wipe {
    std::string& s;
    ~Wipe() { OPENSSL_cleanse(s.data(), s.size()); }
  } wipe_body{body};
  CallResult result;
  try {
    body = input.is_null() ? "{}" : input.dump();
  } catch (const nlohmann::json::exception&) {
    // A string that is not UTF-8 (a key name read from a directory by
    // `kes migrate`) has no JSON form. Go would send U+FFFD instead, which
    // names a different secret: refuse the call.
    AwsError e;
    e.code = "InvalidParameterException";
    e.message = "kes: request contains a string that is not valid UTF-8";
    result.error = e;
    return result;
  }
  const std::string target = options_.target_prefix + "." + std::string(operation);
  bool refreshed_credentials = false;
  bool corrected_clock = false;

  for (int attempt = 1;; ++attempt) {
    result.attempts = attempt;
    if (Expired(deadline)) {
      AwsError e;
      e.code = "RequestCanceled";
      e.message = DeadlineExceeded().message();
      result.error = e;
      return result;
    }
    auto creds = credentials_->Retrieve();
    if (!creds.ok()) {
      AwsError e;
      e.code = "NoCredentials";
      e.message = creds.status().message();
      result.error = e;
      return result;
    }
    RequestToSign req;
    req.method = "POST";
    req.path = options_.endpoint.path;
    req.headers = {{"Host", options_.endpoint.HostHeader()},
                   {"Content-Type", "application/x-amz-json-1.1"},
                   {"X-Amz-Target", target}};
    req.body = body;
    const int64_t offset_used = clock_offset_ms_.load();
    SignedRequest signed_req =
        signer_.Sign(req, **creds, Clock::now() + std::chrono::milliseconds(offset_used));

    net::HttpRequest http_req;
    http_req.method = "POST";
    http_req.url = options_.endpoint;
    http_req.headers = std::move(signed_req.headers);
    http_req.headers.emplace_back("User-Agent", "kes-cpp");
    http_req.body = body;
    http_req.deadline = deadline;
    Wipe wipe_request{http_req.body};

    AwsError error;
    auto resp = http_->Do(http_req);
    std::string empty;
    Wipe wipe_response{resp.ok() ? resp->body : empty};
    if (!resp.ok()) {
      if (resp.status().code() != Code::kUnreachable) {  // policy violation etc.: not retryable
        error.code = "ClientError";
        error.message = resp.status().message();
        result.error = error;
        return result;
      }
      error.transport = true;
      error.code = "NetworkError";
      error.message = resp.status().message();
      error.timeout = error.message.find("imeout") != std::string::npos ||
                      error.message.find("timed out") != std::string::npos;
    } else {
      LearnClockOffset(*resp);
      CallResult decoded = DecodeResponse(*resp);
      if (decoded.ok()) {
        retry_.OnSuccess(attempt);
        result.body = std::move(decoded.body);
        result.error.reset();
        return result;
      }
      error = std::move(*decoded.error);
      if (resp->status >= 200 && resp->status < 300) {  // an unreadable success: not retried
        result.error = error;
        return result;
      }
    }
    result.error = error;

    // One immediate re-sign when the server says our clock is off and the
    // Date header gave us a different offset.
    if (!corrected_clock && IsClockSkewError(error) &&
        std::abs(clock_offset_ms_.load() - offset_used) > 60'000) {
      corrected_clock = true;
      continue;
    }
    // One credential refresh when temporary credentials were rejected.
    if (!refreshed_credentials && IsExpiredCredentialsError(error) &&
        !(*creds)->session_token.empty()) {
      refreshed_credentials = true;
      credentials_->Invalidate();
      continue;
    }
    auto delay = retry_.OnFailure(attempt, error);
    if (!delay || TimeLeft(deadline, *delay) < *delay) return result;
    sleeper_(*delay);
  }
}

}  // namespace kes::aws
