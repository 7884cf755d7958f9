// The keystore contract (keystores.md §1) every backend's tests run:
// create-if-absent, get of the unchanged bytes, delete, sorted listing with
// prefix and page size. A backend's test calls ExerciseContract on a fresh,
// empty store.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "keystore/keystore.h"

namespace kes::testing {

// A current-format stored value (keystores.md §2.1 worked example).
inline constexpr const char* kStoredKey =
    "CiQKIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fEAESJAogICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Oz"
    "w9Pj8QARoGCICByKwGIghkaXNhYmxlZA==";

// Polls `cond` until it holds or a generous deadline passes (never a timing
// assertion: a slow machine only makes the loop run longer).
template <typename Cond>
bool Eventually(Cond cond) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

// `delete_missing` is what Delete of a missing name answers: KeyNotFound for
// the memory and file backends, OK for Vault (keystores.md §6).
inline void ExerciseContract(keystore::KeyStore& ks,
                             const Status& delete_missing = Status::KeyNotFound()) {
  const Deadline none = kNoDeadline;
  ASSERT_TRUE(ks.Status(none).ok());
  auto empty = ks.List("", 0, none);
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->names.empty());
  EXPECT_EQ(ks.Get("missing", none).status(), Status::KeyNotFound());
  EXPECT_EQ(ks.Delete("missing", none), delete_missing);
  ASSERT_TRUE(ks.Create("my-key", kStoredKey, none).ok());
  EXPECT_EQ(ks.Create("my-key", "other", none), Status::KeyExists());
  auto got = ks.Get("my-key", none);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, kStoredKey);  // unchanged bytes
  ASSERT_TRUE(ks.Create("my-key2", "v2", none).ok());
  ASSERT_TRUE(ks.Create("0-key", "v0", none).ok());
  auto list = ks.List("", 0, none);
  ASSERT_TRUE(list.ok()) << list.status().message();
  EXPECT_EQ(list->names, (std::vector<std::string>{"0-key", "my-key", "my-key2"}));
  EXPECT_EQ(list->continue_at, "");
  list = ks.List("my", 0, none);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->names, (std::vector<std::string>{"my-key", "my-key2"}));
  list = ks.List("my", 1, none);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->names, (std::vector<std::string>{"my-key"}));
  EXPECT_EQ(list->continue_at, "my-key2");
  ASSERT_TRUE(ks.Delete("my-key", none).ok());
  EXPECT_EQ(ks.Get("my-key", none).status(), Status::KeyNotFound());
  EXPECT_EQ(ks.Delete("my-key", none), delete_missing);
  ASSERT_TRUE(ks.Create("my-key", "again", none).ok());  // a deleted name can be created again
  EXPECT_EQ(*ks.Get("my-key", none), "again");
}

}  // namespace kes::testing
