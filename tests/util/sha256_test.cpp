#include "util/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace ug {
namespace {

TEST(Sha256, KnownVectors) {
  // FIPS 180-4 examples and the NIST "million a" vector.
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(char(i * 7 + 3));
  const std::string whole = sha256_hex(data);
  for (size_t split :
       {size_t(1), size_t(55), size_t(56), size_t(63), size_t(64), size_t(65), size_t(999)}) {
    Sha256 h;
    h.update(data.substr(0, split));
    h.update(data.substr(split));
    EXPECT_EQ(h.hex_digest(), whole) << split;
  }
}

}  // namespace
}  // namespace ug
