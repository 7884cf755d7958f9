// Base64Append: the allocation-free form of Base64Encode used by the JSON
// writer; it must append exactly what Base64Encode returns.
#include "crypto/encoding.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace kes::crypto {
namespace {

TEST(Base64Append, AppendsTheEncodingAfterExistingText) {
  std::vector<uint8_t> bytes;
  for (int n = 0; n < 70; ++n) {
    std::string out = "prefix:";
    Base64Append(out, bytes);
    EXPECT_EQ(out, "prefix:" + Base64Encode(bytes)) << n;
    EXPECT_EQ(out.size(), 7 + (bytes.size() + 2) / 3 * 4);
    bytes.push_back(static_cast<uint8_t>(n * 37 + 11));
  }
  std::string out = "x";
  Base64Append(out, std::vector<uint8_t>{0xfb, 0xff});
  EXPECT_EQ(out, "x+/8=");
}

// Base64DecodeWithError decodes canonical input in one pass and hands
// everything else to the general decoder; both must agree on every input,
// error messages (Go's byte offsets) included.
TEST(Base64Decode, FastPathAgreesWithTheGeneralDecoder) {
  const auto agree = [](const std::string& text) {
    auto fast = Base64DecodeWithError(text);
    auto general = detail::Base64DecodeGeneral(text);
    ASSERT_EQ(fast.ok(), general.ok()) << text;
    if (fast.ok()) {
      EXPECT_EQ(*fast, *general) << text;
    } else {
      EXPECT_EQ(fast.status().message(), general.status().message()) << text;
    }
  };
  for (const char* text :
       {"", "Zg==", "Zm8=", "Zm9v", "Zh==", "Zm9=", "====", "A===", "AB=C", "AB==AB==", "Zm9v\n",
        "Zm9vYmFy", "Zm9vYmE=", "-_-_", "Zm9v Yg==", "Z"}) {
    agree(text);
  }
  std::mt19937 rng(1129);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const std::string odd = "=\r\n-_ .\x80";
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    const size_t len = rng() % 24;
    for (size_t k = 0; k < len; ++k) {
      text += rng() % 12 == 0 ? odd[rng() % odd.size()] : alphabet[rng() % alphabet.size()];
    }
    if (rng() % 3 == 0) {  // canonical encodings of random bytes, sometimes padded
      std::vector<uint8_t> bytes(rng() % 20);
      for (auto& b : bytes) b = static_cast<uint8_t>(rng());
      text = Base64Encode(bytes);
      auto back = Base64DecodeWithError(text);
      ASSERT_TRUE(back.ok()) << text;
      EXPECT_EQ(*back, bytes);
    }
    agree(text);
  }
}

}  // namespace
}  // namespace kes::crypto
