#include <gtest/gtest.h>

#include "common/status.h"
#include "common/strings.h"

namespace kes {
namespace {

TEST(Strings, EqualFoldAsciiMatchesLikeGoJsonFieldNames) {
  EXPECT_TRUE(EqualFoldAscii("Plaintext", "plaintext"));
  EXPECT_TRUE(EqualFoldAscii("CREATED_AT", "created_at"));
  EXPECT_FALSE(EqualFoldAscii("plaintext", "plaintex"));
  EXPECT_FALSE(EqualFoldAscii("a-b", "a_b"));
  EXPECT_TRUE(EqualFoldAscii("", ""));
}

TEST(Strings, GoQuoteEscapesLikeStrconvQuote) {
  EXPECT_EQ(GoQuote("my-key"), "\"my-key\"");
  EXPECT_EQ(GoQuote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(GoQuote("\n\r\t"), "\"\\n\\r\\t\"");
  EXPECT_EQ(GoQuote(std::string_view("\x01\x7f", 2)), "\"\\x01\\x7f\"");
  EXPECT_EQ(GoQuote(""), "\"\"");
}

TEST(Status, SentinelsCarryUpstreamStatusAndText) {
  EXPECT_EQ(Status::KeyExists().http_status(), 400);
  EXPECT_EQ(Status::KeyExists().message(), "key already exists");
  EXPECT_EQ(Status::KeyNotFound().http_status(), 404);
  EXPECT_EQ(Status::NotAllowed().message(), "not authorized: insufficient permissions");
  EXPECT_EQ(Status::NotAuthentic().message(), "decryption failed: ciphertext is not authentic");
  EXPECT_TRUE(Status().ok());
  EXPECT_EQ(Status().http_status(), 200);
  const Status ctx = Status::Unavailable("disk full").WithContext("fs");
  EXPECT_EQ(ctx.message(), "fs: disk full");
  EXPECT_EQ(ctx.http_status(), 502);
  Result<int> r = Status::KeyNotFound();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), Status::KeyNotFound());
}

}  // namespace
}  // namespace kes
