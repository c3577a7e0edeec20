// The C API of include/unigemma/unigemma.h over the C++ runtime.
#include "unigemma/unigemma.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "format/gguf.h"
#include "model/gemma4/decoder.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

struct ug_model {
  std::unique_ptr<ug::gemma4::Model> model;
  std::unique_ptr<ug::Tokenizer> tokenizer;
};

struct ug_context {
  const ug_model* model = nullptr;
  std::unique_ptr<ug::ThreadPool> pool;
  std::unique_ptr<ug::gemma4::Decoder> decoder;
  ug::gemma4::Output output;
};

namespace {

thread_local std::string g_last_error;

template <typename F, typename R>
R guarded(R on_error, F&& f) {
  try {
    g_last_error.clear();
    return f();
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error";
  }
  return on_error;
}

}  // namespace

extern "C" {

const char* ug_last_error(void) {
  return g_last_error.c_str();
}

ug_model* ug_model_load(const char* path) {
  return guarded<>(static_cast<ug_model*>(nullptr), [&]() -> ug_model* {
    if (!path) throw ug::Error("ug_model_load: path is NULL");
    auto m = std::make_unique<ug_model>();
    m->model = ug::gemma4::load_model(path);
    m->tokenizer = std::make_unique<ug::Tokenizer>(std::filesystem::is_directory(path)
                                                       ? ug::Tokenizer::from_hf_dir(path)
                                                       : ug::Tokenizer::from_gguf(*m->model->gguf));
    return m.release();
  });
}

void ug_model_free(ug_model* model) {
  delete model;
}

int32_t ug_model_n_vocab(const ug_model* model) {
  return model ? model->model->config.n_vocab : -1;
}
int32_t ug_model_n_embd(const ug_model* model) {
  return model ? model->model->config.n_embd : -1;
}

int32_t ug_tokenize(const ug_model* model, const char* text, size_t text_len, int add_bos,
                    int parse_special, int32_t* ids, int32_t capacity) {
  return guarded<>(int32_t(-1), [&]() -> int32_t {
    if (!model || (!text && text_len)) throw ug::Error("ug_tokenize: NULL argument");
    ug::EncodeOptions o;
    o.add_bos = add_bos != 0;
    o.parse_special = parse_special != 0;
    const auto out = model->tokenizer->encode(std::string_view(text ? text : "", text_len), o);
    if (ids && capacity > 0) {
      std::copy_n(out.begin(), std::min<size_t>(out.size(), size_t(capacity)), ids);
    }
    return int32_t(out.size());
  });
}

int32_t ug_detokenize(const ug_model* model, const int32_t* ids, int32_t n_ids, char* buf,
                      int32_t capacity) {
  return guarded<>(int32_t(-1), [&]() -> int32_t {
    if (!model || (!ids && n_ids) || n_ids < 0) throw ug::Error("ug_detokenize: bad argument");
    const std::string s = model->tokenizer->decode(std::span<const int32_t>(ids, size_t(n_ids)));
    if (buf && capacity > 0) {
      const size_t n = std::min(s.size(), size_t(capacity - 1));
      std::memcpy(buf, s.data(), n);
      buf[n] = '\0';
    }
    return int32_t(s.size());
  });
}

ug_context_params ug_context_default_params(void) {
  ug_context_params p;
  p.n_ctx = 4096;
  p.n_threads = 0;
  p.n_ubatch = 512;
  p.cache_type = "f16";
  return p;
}

ug_context* ug_context_new(const ug_model* model, ug_context_params params) {
  return guarded<>(static_cast<ug_context*>(nullptr), [&]() -> ug_context* {
    if (!model) throw ug::Error("ug_context_new: model is NULL");
    ug::gemma4::DecoderOptions o;
    o.n_ctx = params.n_ctx;
    o.n_ubatch = params.n_ubatch;
    if (!ug::parse_tensor_type(params.cache_type ? params.cache_type : "f16", &o.cache_type)) {
      throw ug::Error(std::string("ug_context_new: unknown cache type '") + params.cache_type +
                      "'");
    }
    const int threads = params.n_threads > 0
                            ? params.n_threads
                            : int(std::max(1u, std::thread::hardware_concurrency()));
    auto c = std::make_unique<ug_context>();
    c->model = model;
    c->pool = std::make_unique<ug::ThreadPool>(threads);
    c->decoder = std::make_unique<ug::gemma4::Decoder>(*model->model, o, *c->pool);
    return c.release();
  });
}

void ug_context_free(ug_context* ctx) {
  delete ctx;
}

int ug_eval(ug_context* ctx, const int32_t* ids, int32_t n_ids) {
  return guarded<>(-1, [&]() -> int {
    if (!ctx || !ids || n_ids <= 0) throw ug::Error("ug_eval: bad argument");
    ctx->decoder->eval_tokens(std::vector<int32_t>(ids, ids + n_ids), ug::gemma4::Outputs::kLast,
                              &ctx->output);
    return 0;
  });
}

const float* ug_logits(const ug_context* ctx) {
  return ctx && ctx->output.n_rows > 0 ? ctx->output.logits.data() : nullptr;
}

int32_t ug_n_past(const ug_context* ctx) {
  return ctx ? ctx->decoder->n_past() : -1;
}

int ug_truncate(ug_context* ctx, int32_t n) {
  return guarded<>(-1, [&]() -> int {
    if (!ctx) throw ug::Error("ug_truncate: context is NULL");
    ctx->decoder->cache().truncate(n);
    ctx->output = {};
    return 0;
  });
}

int32_t ug_generate_greedy(ug_context* ctx, int32_t* out_ids, int32_t max_tokens) {
  return guarded<>(int32_t(-1), [&]() -> int32_t {
    if (!ctx || !out_ids || max_tokens < 0) throw ug::Error("ug_generate_greedy: bad argument");
    if (ctx->output.n_rows == 0) throw ug::Error("ug_generate_greedy: call ug_eval first");
    ug::GreedyOptions g;
    g.max_tokens = max_tokens;
    g.suppress = ctx->model->model->suppress_tokens;
    g.stop = ctx->model->model->eog_tokens;
    const auto ids = ug::greedy_continue(*ctx->decoder, ctx->output.logits.data(), g);
    std::copy(ids.begin(), ids.end(), out_ids);
    ctx->output = {};
    return int32_t(ids.size());
  });
}

}  // extern "C"
