#include <cstdio>
#include <map>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "format/gguf.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"
#include "runtime/memory_plan.h"
#include "util/error.h"

namespace ug::cli {

int cmd_info(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h") || args.positional().size() != 1) {
    std::puts(
        "usage: unigemma info MODEL [--ctx N|auto] [--cache-type f16] [--ubatch N]\n"
        "                           [--cache-type-global T]\n"
        "                           [--mem-limit SIZE] [--draft FILE] [--mmproj FILE]\n"
        "                           [--image-tokens N]");
    return args.positional().size() == 1 ? 0 : 2;
  }
  args.reject_unknown({"--ctx", "-c", "--cache-type", "--ubatch", "--mem-limit", "--draft",
                       "--mmproj", "--image-tokens", "--cache-type-global"});
  const std::string path = args.positional()[0];
  auto model = gemma4::load_model(path);
  const gemma4::Config& c = model->config;
  const bool auto_ctx = args.get({"--ctx", "-c"}) == "auto";
  const int n_ctx = auto_ctx ? 4096 : args.get_int({"--ctx", "-c"}, 4096);
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

  // Memory plan: the same computation run/chat/serve check before loading.
  MemoryPlanRequest req;
  req.config = &c;
  req.weight_bytes = model->weight_bytes;
  req.n_ctx = n_ctx;
  req.n_ubatch = n_ubatch;
  req.cache_type = cache_type;
  req.global_cache_type = global_cache_type_from_args(args);
  req.drafter_bytes = path_bytes(args.get({"--draft"}));
  req.projector_bytes = path_bytes(args.get({"--mmproj"}));
  if (req.projector_bytes > 0) req.max_image_tokens = args.get_int({"--image-tokens"}, 280);
  const std::string limit = args.get({"--mem-limit"});
  const uint64_t budget = limit.empty() ? available_memory() : parse_memory_size(limit);
  if (auto_ctx) {
    if (budget == 0) throw Error("--ctx auto: cannot read the available memory; give --mem-limit");
    req.n_ctx = auto_context(req, budget);
  }
  const MemoryPlan plan = plan_memory(req);
  std::printf("memory plan (ctx %d%s, cache %s, ubatch %d):\n", plan.n_ctx,
              auto_ctx ? " = auto" : "", tensor_type_name(cache_type).c_str(),
              std::min(n_ubatch, plan.n_ctx));
  auto line = [](const char* what, uint64_t bytes) {
    if (bytes) std::printf("  %-16s %s\n", what, human_bytes(double(bytes)).c_str());
  };
  line("weights (mmap)", plan.weights);
  line("KV cache", plan.kv_cache);
  line("activations", plan.activations);
  line("drafter", plan.drafter);
  line("multimodal", plan.multimodal);
  line("runtime", plan.runtime);
  line("total", plan.total());
  std::printf("  budget           %s (%s)%s\n", human_bytes(double(budget)).c_str(),
              limit.empty() ? "available memory" : "--mem-limit",
              budget && plan.total() > budget ? "  -- DOES NOT FIT" : "");
  return 0;
}

}  // namespace ug::cli
