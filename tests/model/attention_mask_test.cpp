// The attention mask of spec §1.6, checked against a brute-force definition over a prompt with
// text, an image block longer than the window, and audio.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "model/gemma4/attention.h"

namespace ug::gemma4 {
namespace {

enum Kind { kText, kImage, kAudio };

// Spec §1.6 written literally: allowed = (causal OR same image block) AND (window on sliding
// layers, symmetric inside a block); full layers causal only; audio never bidirectional.
bool brute_allowed(bool sliding, int window, const std::vector<Kind>& kind,
                   const std::vector<int>& block, int q, int k) {
  const bool causal = k <= q;
  if (!sliding) return causal;
  const bool same_block = kind[size_t(q)] == kImage && kind[size_t(k)] == kImage &&
                          block[size_t(q)] == block[size_t(k)];
  return (causal || same_block) && std::abs(q - k) < window;
}

TEST(AttentionMask, MatchesBruteForceForTextImageAudio) {
  const int window = 16;
  // 10 text, 40 image (longer than the window), 5 text, 12 audio, 8 image, 3 text.
  std::vector<Kind> kind;
  std::vector<int> block;
  auto add = [&](Kind k, int n, int b) {
    for (int i = 0; i < n; ++i) {
      kind.push_back(k);
      block.push_back(b);
    }
  };
  add(kText, 10, -1);
  add(kImage, 40, 0);
  add(kText, 5, -1);
  add(kAudio, 12, -1);
  add(kImage, 8, 1);
  add(kText, 3, -1);
  const int n = int(kind.size());
  std::vector<int> block_end(size_t(n), -1);
  for (int t = n - 1; t >= 0; --t) {
    if (kind[size_t(t)] != kImage) continue;
    const bool continues =
        t + 1 < n && kind[size_t(t + 1)] == kImage && block[size_t(t + 1)] == block[size_t(t)];
    block_end[size_t(t)] = continues ? block_end[size_t(t + 1)] : t;
  }
  int bidirectional_pairs = 0;
  for (bool sliding : {true, false}) {
    for (int q = 0; q < n; ++q) {
      const KeyRange r = allowed_keys(sliding, window, q, block_end[size_t(q)]);
      for (int k = 0; k < n; ++k) {
        const bool mine = k >= r.first && k <= r.last;
        ASSERT_EQ(mine, brute_allowed(sliding, window, kind, block, q, k))
            << (sliding ? "sliding" : "full") << " q=" << q << " k=" << k;
        bidirectional_pairs += mine && k > q;
      }
    }
  }
  // The overlay must actually be exercised (future keys inside image blocks on sliding layers).
  EXPECT_GT(bidirectional_pairs, 0);
}

TEST(AttentionMask, SlidingWindowAdmitsExactlyWindowKeys) {
  const KeyRange r = allowed_keys(true, 16, 100, -1);
  EXPECT_EQ(r.first, 85);
  EXPECT_EQ(r.last, 100);
  const KeyRange full = allowed_keys(false, 16, 100, 120);
  EXPECT_EQ(full.first, 0);
  EXPECT_EQ(full.last, 100);
}

}  // namespace
}  // namespace ug::gemma4
