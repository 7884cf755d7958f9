#include "aws/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <map>

namespace kes::aws {
namespace {

using Digest = std::array<unsigned char, 32>;

Digest HmacSha256(std::string_view key, std::string_view data) {
  Digest out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

std::string_view View(const Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

std::string Hex(const unsigned char* p, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 0xf];
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 && HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Trims and collapses runs of whitespace (space, tab, folded line breaks)
// to one space, as SigV4 canonical header values require.
std::string CanonicalHeaderValue(std::string_view v) {
  std::string out;
  bool in_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
  return out;
}

void SetHeader(HeaderList& headers, std::string_view name, std::string value) {
  std::string lower = Lower(name);
  headers.erase(std::remove_if(headers.begin(), headers.end(),
                               [&](const auto& kv) { return Lower(kv.first) == lower; }),
                headers.end());
  headers.emplace_back(std::string(name), std::move(value));
}

}  // namespace

Credentials::~Credentials() {
  OPENSSL_cleanse(secret_access_key.data(), secret_access_key.size());
  OPENSSL_cleanse(session_token.data(), session_token.size());
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::string UriEncode(std::string_view bytes, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (unsigned char c : bytes) {
    if (IsUnreserved(c) || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

std::string CanonicalUri(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  if (!normalize) return UriEncode(path, true);
  // Remove "." and ".." segments and empty segments (repeated slashes); keep
  // a trailing slash.
  std::vector<std::string_view> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(start, end - start);
    if (seg == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!seg.empty() && seg != ".") {
      segments.push_back(seg);
    }
    start = end + 1;
  }
  std::string out = "/";
  for (size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out.push_back('/');
    out.append(segments[i]);
  }
  if (!segments.empty() && path.back() == '/') out.push_back('/');
  return UriEncode(out, true);
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t start = 0;
  while (start <= query.size() && !query.empty()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string_view name = pair.substr(0, eq);
      std::string_view value =
          eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      params.emplace_back(UriEncode(PercentDecode(name), false),
                          UriEncode(PercentDecode(value), false));
    }
    start = end + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (size_t i = 0; i < params.size(); ++i) {
    if (i > 0) out.push_back('&');
    out += params[i].first + "=" + params[i].second;
  }
  return out;
}

std::string FormatAmzDate(Clock::time_point t) {
  std::time_t secs = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

bool IsUnsignableHeader(std::string_view n) {
  return n == "authorization" || n == "user-agent" || n == "expect" || n == "connection" ||
         n == "keep-alive" || n == "proxy-authorization" || n == "te" || n == "trailer" ||
         n == "transfer-encoding" || n == "upgrade" || n == "x-amzn-trace-id";
}

SignedRequest SigV4Signer::Sign(const RequestToSign& request, const Credentials& credentials,
                                Clock::time_point now) const {
  SignedRequest out;
  const std::string amz_date = FormatAmzDate(now);
  const std::string date_stamp = amz_date.substr(0, 8);
  const std::string payload_hash = Sha256Hex(request.body);

  out.headers = request.headers;
  SetHeader(out.headers, "X-Amz-Date", amz_date);
  const bool with_token = !credentials.session_token.empty();
  if (with_token && !params_.omit_session_token) {
    SetHeader(out.headers, "X-Amz-Security-Token", credentials.session_token);
  }
  if (params_.sign_body) SetHeader(out.headers, "X-Amz-Content-SHA256", payload_hash);

  // Lower-case name -> values in order of appearance; std::map sorts by byte.
  std::map<std::string, std::vector<std::string>> canon;
  for (const auto& [name, value] : out.headers) {
    std::string lower = Lower(name);
    if (IsUnsignableHeader(lower)) continue;
    canon[lower].push_back(CanonicalHeaderValue(value));
  }
  std::string canonical_headers;
  for (const auto& [name, values] : canon) {
    canonical_headers += name + ":";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) canonical_headers.push_back(',');
      canonical_headers += values[i];
    }
    canonical_headers.push_back('\n');
    if (!out.signed_headers.empty()) out.signed_headers.push_back(';');
    out.signed_headers += name;
  }

  out.canonical_request = request.method + "\n" +
                          CanonicalUri(request.path, params_.normalize_path) + "\n" +
                          CanonicalQuery(request.query) + "\n" + canonical_headers + "\n" +
                          out.signed_headers + "\n" + payload_hash;
  const std::string scope =
      date_stamp + "/" + params_.region + "/" + params_.service + "/aws4_request";
  out.string_to_sign =
      "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope + "\n" + Sha256Hex(out.canonical_request);

  std::string secret = "AWS4" + credentials.secret_access_key;
  Digest k_date = HmacSha256(secret, date_stamp);
  OPENSSL_cleanse(secret.data(), secret.size());
  Digest k_region = HmacSha256(View(k_date), params_.region);
  Digest k_service = HmacSha256(View(k_region), params_.service);
  Digest k_signing = HmacSha256(View(k_service), "aws4_request");
  Digest sig = HmacSha256(View(k_signing), out.string_to_sign);
  for (Digest* d : {&k_date, &k_region, &k_service, &k_signing})
    OPENSSL_cleanse(d->data(), d->size());
  out.signature = Hex(sig.data(), sig.size());

  out.authorization = "AWS4-HMAC-SHA256 Credential=" + credentials.access_key_id + "/" + scope +
                      ", SignedHeaders=" + out.signed_headers + ", Signature=" + out.signature;
  if (with_token && params_.omit_session_token) {
    SetHeader(out.headers, "X-Amz-Security-Token", credentials.session_token);
  }
  SetHeader(out.headers, "Authorization", out.authorization);
  return out;
}

}  // namespace kes::aws
