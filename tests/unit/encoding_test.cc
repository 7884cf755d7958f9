// Base64Append: the allocation-free form of Base64Encode used by the JSON
// writer; it must append exactly what Base64Encode returns.
#include "crypto/encoding.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace kes::crypto
