#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "format/gguf.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"
#include "util/error.h"

namespace ug::cli {

namespace {
std::string human_bytes(double b) {
  char buf[64];
  if (b >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / (1024.0 * 1024 * 1024));
  } else if (b >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", b / (1024.0 * 1024));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f KiB", b / 1024.0);
  }
  return buf;
}
}  // namespace

int cmd_info(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h") || args.positional().size() != 1) {
    std::puts("usage: unigemma info MODEL [--ctx N] [--cache-type f16] [--ubatch N]");
    return args.positional().size() == 1 ? 0 : 2;
  }
  args.reject_unknown({"--ctx", "-c", "--cache-type", "--ubatch"});
  const std::string path = args.positional()[0];
  auto model = gemma4::load_model(path);
  const gemma4::Config& c = model->config;
  const int n_ctx = args.get_int({"--ctx", "-c"}, 4096);
  const int n_ubatch = args.get_int({"--ubatch"}, 512);
  const std::string ct = args.get({"--cache-type"}, "f16");
  TensorType cache_type;
  if (!parse_tensor_type(ct, &cache_type)) throw Error("unknown --cache-type '" + ct + "'");
  if (n_ctx <= 0 || n_ubatch <= 0) throw Error("--ctx and --ubatch must be > 0");

  std::printf("model:        %s (%s)\n", path.c_str(), model->format.c_str());
  if (!c.name.empty()) std::printf("name:         %s\n", c.name.c_str());
  int n_sliding = 0;
  for (const auto& l : c.layers) n_sliding += l.sliding;
  std::printf("architecture: gemma4 text decoder, %d layers (%d sliding, %d full), hidden %d\n",
              c.n_layer, n_sliding, c.n_layer - n_sliding, c.n_embd);
  const auto& l0 = c.layers.front();
  std::printf("attention:    %d q heads; sliding %d kv x %d, window %d", l0.n_head, l0.n_kv_head,
              l0.head_dim, c.sliding_window);
  if (c.last_full_layer() >= 0) {
    const auto& lf = c.layers[size_t(c.last_full_layer())];
    std::printf("; full %d kv x %d%s", lf.n_kv_head, lf.head_dim, lf.has_v ? "" : " (K=V)");
  }
  std::printf("\nffn:          %d (GeGLU tanh); vocab %d; softcap %.1f; trained context %d\n",
              l0.n_ff, c.n_vocab, c.final_softcap, c.n_ctx_train);

  // Tensor types and parameter count.
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t n_params = 0;
  auto count = [&](const kernels::Matrix& m) {
    if (!m.data) return;
    auto& e = by_type[tensor_type_name(m.type)];
    e.first++;
    e.second += uint64_t(m.row_bytes) * uint64_t(m.rows);
    n_params += uint64_t(m.rows) * uint64_t(m.cols);
  };
  count(model->token_embd);
  for (const auto& lw : model->layers) {
    for (const auto* m : {&lw.attn_q, &lw.attn_k, &lw.attn_v, &lw.attn_output, &lw.ffn_gate,
                          &lw.ffn_up, &lw.ffn_down}) {
      count(*m);
    }
  }
  std::printf("parameters:   %.3f B in matrices\n", double(n_params) / 1e9);
  std::printf("tensor types:");
  for (const auto& [name, e] : by_type) {
    std::printf(" %s x%d (%s)", name.c_str(), e.first, human_bytes(double(e.second)).c_str());
  }
  std::printf("\n");

  // Memory plan.
  const uint64_t weights = model->weight_bytes;
  const uint64_t kv = gemma4::KvCache::bytes_for(c, n_ctx, std::min(n_ubatch, n_ctx), cache_type);
  const uint64_t n = uint64_t(std::min(n_ubatch, n_ctx));
  const uint64_t act = 4 * n *
                       (4 * uint64_t(c.n_embd) + 2 * uint64_t(c.max_q_dim()) +
                        2 * uint64_t(c.max_kv_dim()) + 2 * uint64_t(c.max_ff()) +
                        uint64_t(c.max_head_dim())) +
                       8 * uint64_t(c.n_vocab) + 4 * uint64_t(c.n_embd);
  std::printf("memory plan (ctx %d, cache %s, ubatch %d):\n", n_ctx, tensor_type_name(cache_type).c_str(),
              int(n));
  std::printf("  weights (mmap)   %s\n", human_bytes(double(weights)).c_str());
  std::printf("  KV cache         %s\n", human_bytes(double(kv)).c_str());
  std::printf("  activations      %s\n", human_bytes(double(act)).c_str());
  std::printf("  total            %s\n", human_bytes(double(weights + kv + act)).c_str());
  return 0;
}

}  // namespace ug::cli
