// Unit tests of src/cli: pflag-compatible flag parsing, environment lookup
// order, output formats and completion (no network, no server).
#include <gtest/gtest.h>

#include <cstdlib>

#include "cli/commands.h"
#include "cli/connect.h"
#include "cli/format.h"
#include "cli/term.h"
#include "common/flags.h"

namespace kes::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(FlagSet, LongShortEqualsAndInterleavedPositionals) {
  FlagSet f("usage");
  bool* k = f.Bool("insecure", 'k');
  bool* json = f.Bool("json");
  std::string* color = f.String("color");
  ASSERT_TRUE(f.Parse({"a", "-k", "--color=always", "b", "--json", "--", "--not-a-flag"}).ok());
  EXPECT_TRUE(*k);
  EXPECT_TRUE(*json);
  EXPECT_EQ(*color, "always");
  EXPECT_EQ(f.args(), (std::vector<std::string>{"a", "b", "--not-a-flag"}));
  EXPECT_TRUE(f.Changed("color"));
}

TEST(FlagSet, ValueFlagConsumesNextWordEvenIfDash) {
  FlagSet f("usage");
  std::string* key = f.String("key");
  ASSERT_TRUE(f.Parse({"--key", "-x"}).ok());
  EXPECT_EQ(*key, "-x");
}

TEST(FlagSet, BoolValueSyntax) {
  FlagSet f("usage");
  bool* audit = f.Bool("audit", 0, true);
  ASSERT_TRUE(f.Parse({"--audit=false"}).ok());
  EXPECT_FALSE(*audit);
  FlagSet g("usage");
  g.Bool("json");
  Status s = g.Parse({"--json=maybe"});
  EXPECT_EQ(s.message(),
            "invalid argument \"maybe\" for \"--json\" flag: strconv.ParseBool: parsing "
            "\"maybe\": invalid syntax");
}

TEST(FlagSet, PflagErrorTexts) {
  FlagSet f("usage");
  f.String("config");
  f.Bool("insecure", 'k');
  EXPECT_EQ(f.Parse({"--x"}).message(), "unknown flag: --x");
  FlagSet g("usage");
  g.Bool("insecure", 'k');
  EXPECT_EQ(g.Parse({"-x"}).message(), "unknown shorthand flag: 'x' in -x");
  FlagSet h("usage");
  h.String("config");
  EXPECT_EQ(h.Parse({"--config"}).message(), "flag needs an argument: --config");
  FlagSet i("usage");
  EXPECT_EQ(i.Parse({"---x"}).message(), "bad flag syntax: ---x");
}

TEST(FlagSet, HelpAndSlices) {
  FlagSet f("usage");
  std::vector<std::string>* ips = f.StringSlice("ip");
  ASSERT_TRUE(f.Parse({"--ip", "1.2.3.4,::1", "--ip=10.0.0.1"}).ok());
  EXPECT_EQ(*ips, (std::vector<std::string>{"1.2.3.4", "::1", "10.0.0.1"}));
  FlagSet g("usage");
  ASSERT_TRUE(g.Parse({"x", "-h"}).ok());
  EXPECT_TRUE(g.help());
}

TEST(FlagSet, BundledShorthands) {
  FlagSet f("usage");
  bool* k = f.Bool("insecure", 'k');
  bool* force = f.Bool("force", 'f');
  std::string* server = f.String("server", 's');
  ASSERT_TRUE(f.Parse({"-kf", "-shost:7373"}).ok());
  EXPECT_TRUE(*k);
  EXPECT_TRUE(*force);
  EXPECT_EQ(*server, "host:7373");
}

// Environment variables are process-wide; each test restores what it sets.
class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* n : kNames) unsetenv(n);
  }
  void TearDown() override {
    for (const char* n : kNames) unsetenv(n);
  }
  static constexpr const char* kNames[] = {
      "MINIO_KES_SERVER",    "KES_SERVER",      "MINIO_KMS_KES_ENDPOINT",
      "MINIO_KES_API_KEY",   "KES_API_KEY",     "MINIO_KMS_KES_API_KEY",
      "MINIO_KES_KEY_FILE",  "KES_CLIENT_KEY",  "MINIO_KES_CLIENT_KEY",
      "MINIO_KES_CERT_FILE", "KES_CLIENT_CERT", "MINIO_KES_CLIENT_CERT"};
};

TEST_F(EnvTest, EndpointPrecedenceAndPresence) {
  EXPECT_EQ(EndpointEnv(), "127.0.0.1:7373");
  setenv("MINIO_KMS_KES_ENDPOINT", "c:1", 1);
  EXPECT_EQ(EndpointEnv(), "c:1");
  setenv("KES_SERVER", "b:1", 1);
  EXPECT_EQ(EndpointEnv(), "b:1");
  setenv("MINIO_KES_SERVER", "", 1);  // presence counts, even empty
  EXPECT_EQ(EndpointEnv(), "");
}

TEST_F(EnvTest, APIKeyPrecedence) {
  setenv("MINIO_KMS_KES_API_KEY", "c", 1);
  setenv("KES_API_KEY", "b", 1);
  EXPECT_EQ(APIKeyEnv(), "b");
  setenv("MINIO_KES_API_KEY", "a", 1);
  EXPECT_EQ(APIKeyEnv(), "a");
}

TEST_F(EnvTest, CredentialValidationOrder) {
  EXPECT_EQ(Connect({}).status().message(),
            "no API key specified. Consider setting MINIO_KES_API_KEY");
  setenv("KES_API_KEY", "kes:v1:AD9E7FSYWrMD+VjhI6q545cYT9YOyFxZb7UnjEepYDRc", 1);
  setenv("KES_CLIENT_KEY", "k", 1);
  setenv("KES_CLIENT_CERT", "c", 1);
  EXPECT_EQ(Connect({}).status().message(),
            "API key and private key file cannot be used at the same time");
  unsetenv("KES_CLIENT_KEY");
  EXPECT_EQ(Connect({}).status().message(),
            "API key and certificate file cannot be used at the same time");
  unsetenv("KES_API_KEY");
  EXPECT_EQ(Connect({}).status().message(),
            "no private key file specified. Consider setting MINIO_KES_KEY_FILE");
  unsetenv("KES_CLIENT_CERT");
  setenv("MINIO_KES_CLIENT_KEY", "k", 1);
  EXPECT_EQ(Connect({}).status().message(),
            "no certificate file specified. Consider setting MINIO_KES_CERT_FILE");
}

TEST_F(EnvTest, MalformedAPIKey) {
  setenv("KES_API_KEY", "kes:v1:AAAA", 1);
  EXPECT_EQ(Connect({}).status().message(), "parsing API key: invalid API key: invalid length");
}

TEST(Format, GoDuration) {
  EXPECT_EQ(FormatDuration(nanoseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(2)), "2ms");
  EXPECT_EQ(FormatDuration(milliseconds(1235)), "1.235s");
  EXPECT_EQ(FormatDuration(seconds(15)), "15s");
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(seconds(3600)), "1h0m0s");
  EXPECT_EQ(FormatDuration(nanoseconds(1)), "1ns");
  EXPECT_EQ(FormatDuration(nanoseconds(1500)), "1.5µs");
}

TEST(Format, RoundAndParseDuration) {
  EXPECT_EQ(RoundDuration(nanoseconds(2'499'999), milliseconds(1)), milliseconds(2));
  EXPECT_EQ(RoundDuration(nanoseconds(2'500'000), milliseconds(1)), milliseconds(3));
  EXPECT_EQ(*ParseDuration("5s"), nanoseconds(seconds(5)));
  EXPECT_EQ(*ParseDuration("1m30s"), nanoseconds(seconds(90)));
  EXPECT_EQ(*ParseDuration("250ms"), nanoseconds(milliseconds(250)));
  EXPECT_EQ(*ParseDuration("720h"), nanoseconds(seconds(720 * 3600)));
  EXPECT_FALSE(ParseDuration("abc").ok());
  EXPECT_FALSE(ParseDuration("5").ok());
  EXPECT_FALSE(ParseDuration("").ok());
}

TEST(Format, Sizes) {
  EXPECT_EQ(FormatSize(0), "0B");
  EXPECT_EQ(FormatSize(512), "512.0B");
  EXPECT_EQ(FormatSize(2'400'000), "2.4MB");
  EXPECT_EQ(FormatSize(557'056), "557.1KB");
}

TEST(Format, Uptime) {
  EXPECT_EQ(FormatUptime(7), "7 seconds");
  EXPECT_EQ(FormatUptime(300), "5 minutes");
  EXPECT_EQ(FormatUptime(3 * 3600), "3 hours");
  EXPECT_EQ(FormatUptime(50 * 3600), "2 days 2 hours");
}

TEST(Format, Dates) {
  EXPECT_EQ(FormatDate("2024-05-01T10:00:00.123456789Z", false), "2024-05-01 10:00:00");
  EXPECT_EQ(FormatDate("2024-05-01T10:00:00+02:00", false), "2024-05-01 10:00:00");
  EXPECT_EQ(FormatDate("garbage", false), "");
  EXPECT_TRUE(IsZeroTime("0001-01-01T00:00:00Z"));
  EXPECT_FALSE(IsZeroTime("2024-05-01T10:00:00Z"));
}

TEST(Term, GoQuoteAndColorMode) {
  EXPECT_EQ(GoQuote("my-key"), "\"my-key\"");
  EXPECT_EQ(GoQuote("a\"b\n"), "\"a\\\"b\\n\"");
  EXPECT_EQ(SetColorMode("pink").message(),
            "invalid argument \"pink\" for \"--color\" flag: invalid color option");
  EXPECT_TRUE(SetColorMode("NEVER").ok());
  EXPECT_FALSE(ColorEnabled());
  EXPECT_EQ(Bold("x"), "x");
}

TEST(Term, StylingWhenColorForced) {
  OverrideTerminal(true, true);
  EXPECT_EQ(Bold("x"), "\x1b[1mx\x1b[0m");
  EXPECT_EQ(Color(0xac0000, "E"), "\x1b[38;2;172;0;0mE\x1b[0m");
  OverrideTerminal(false, false);
  EXPECT_EQ(Bold("x"), "x");
}

TEST(Term, FramePadsLinesToEqualWidth) { EXPECT_EQ(Frame("ab\nc"), "    \n ab \n c  \n    \n"); }

TEST(Completion, Candidates) {
  EXPECT_EQ(CompletionCandidates("kes ke"), std::vector<std::string>{"key"});
  EXPECT_EQ(CompletionCandidates("kes policy "),
            (std::vector<std::string>{"info", "ls", "rm", "show"}));
  EXPECT_EQ(CompletionCandidates("kes status --j"), std::vector<std::string>{"--json"});
  EXPECT_TRUE(CompletionCandidates("kes nothing ").empty());
  EXPECT_EQ(CompletionCandidates("kes ").size(), 8u);
}

}  // namespace
}  // namespace kes::cli
