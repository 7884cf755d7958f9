// libFuzzer target: SigV4 canonicalisation and signing (aws/sigv4.h,
// aws-protocol.md §3). Input lines: method, path, query, then header lines
// ("Name: value") up to an empty line; the rest is the body.
// Checks: canonical URI and query use only unreserved characters, '%XX',
// and their separators; the canonical query is a fixed point (canonicalising
// it again changes nothing); signing is deterministic.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "aws/sigv4.h"

namespace {

std::string_view NextLine(std::string_view* in) {
  const size_t eol = in->find('\n');
  const std::string_view line = in->substr(0, eol);
  *in = eol == std::string_view::npos ? std::string_view{} : in->substr(eol + 1);
  return line;
}

bool IsCanonical(std::string_view s, std::string_view separators) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') continue;
    if (separators.find(static_cast<char>(c)) != std::string_view::npos) continue;
    if (c == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      i += 2;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  kes::aws::RequestToSign req;
  req.method = std::string(NextLine(&in));
  req.path = std::string(NextLine(&in));
  req.query = std::string(NextLine(&in));
  req.headers.emplace_back("Host", "secretsmanager.us-east-1.amazonaws.com");
  for (std::string_view line = NextLine(&in); !line.empty(); line = NextLine(&in)) {
    const size_t colon = line.find(':');
    req.headers.emplace_back(
        std::string(line.substr(0, colon)),
        colon == std::string_view::npos ? "" : std::string(line.substr(colon + 1)));
  }
  req.body = in;

  for (bool normalize : {true, false}) {
    if (!IsCanonical(kes::aws::CanonicalUri(req.path, normalize), "/")) std::abort();
  }
  const std::string query = kes::aws::CanonicalQuery(req.query);
  if (!IsCanonical(query, "=&")) std::abort();
  if (kes::aws::CanonicalQuery(query) != query) std::abort();

  kes::aws::Credentials creds;
  creds.access_key_id = "AKIDEXAMPLE";
  creds.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  creds.session_token = "token";
  const auto now = kes::aws::Clock::from_time_t(1767225600);  // 2026-01-01
  for (bool sign_body : {false, true}) {
    kes::aws::SigV4Signer signer({"us-east-1", "secretsmanager", true, sign_body, sign_body});
    const auto a = signer.Sign(req, creds, now);
    const auto b = signer.Sign(req, creds, now);
    if (a.signature != b.signature || a.signature.size() != 64) std::abort();
  }
  return 0;
}
