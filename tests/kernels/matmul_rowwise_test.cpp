// matmul_rowwise: each token's output must be bit-identical to matmul of that token alone, for
// every batch size, weight type, SIMD target and thread count (continuous batching relies on it).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "test_util.h"

namespace ug::kernels {
namespace {

TEST(MatmulRowwise, EveryRowEqualsTheSingleTokenProduct) {
  std::mt19937 rng(99);
  ThreadPool one(1), two(2);
  test::for_each_target([&](const std::string&) {
    for (TensorType type : test::all_weight_types()) {
      SCOPED_TRACE(tensor_type_name(type));
      const int64_t cols = 512;
      const int64_t rows = 70;  // not a multiple of 4: tail rows too
      const int64_t row_bytes = type_row_bytes(type, cols);
      std::vector<uint8_t> data(size_t(rows * row_bytes));
      for (int64_t r = 0; r < rows; ++r) {
        const std::vector<uint8_t> row = test::random_row(type, cols, rng);
        std::memcpy(data.data() + r * row_bytes, row.data(), row.size());
      }
      const Matrix w{type, data.data(), rows, cols, row_bytes};
      for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 13}) {
        const std::vector<float> x = test::random_floats(n * cols, rng);
        for (ThreadPool* pool : {&one, &two}) {
          std::vector<float> batched(size_t(n * rows), -1.0f);
          matmul_rowwise(w, x.data(), cols, n, batched.data(), rows, *pool);
          for (int64_t t = 0; t < n; ++t) {
            std::vector<float> alone(size_t(rows), -2.0f);
            matmul(w, x.data() + t * cols, cols, 1, alone.data(), rows, *pool);
            ASSERT_EQ(0, std::memcmp(alone.data(), batched.data() + t * rows,
                                     size_t(rows) * sizeof(float)))
                << "n=" << n << " t=" << t << " threads=" << pool->size();
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace ug::kernels
