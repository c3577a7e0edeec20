/* unigemma C API: load a Gemma 4 model, tokenize, evaluate, greedy-generate.
 * Every function that can fail returns NULL or a negative value and leaves a one-line message
 * retrievable with ug_last_error() (thread-local). Objects are not thread-safe; use one context per
 * thread. */
#ifndef UNIGEMMA_UNIGEMMA_H
#define UNIGEMMA_UNIGEMMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ug_model ug_model;
typedef struct ug_context ug_context;

typedef struct ug_context_params {
  int32_t n_ctx;          /* context length in tokens (default 4096) */
  int32_t n_threads;      /* 0 = all cores */
  int32_t n_ubatch;       /* prompt-processing chunk (default 512) */
  const char* cache_type; /* "f32", "f16" (default), "bf16", "q8_0" */
} ug_context_params;

/* The last error message of this thread ("" if none). */
const char* ug_last_error(void);

/* A .gguf file or a Hugging Face folder. NULL on error. */
ug_model* ug_model_load(const char* path);
void ug_model_free(ug_model* model);
int32_t ug_model_n_vocab(const ug_model* model);
int32_t ug_model_n_embd(const ug_model* model);

/* Tokenizes UTF-8 text. Writes at most `capacity` ids and returns the number of ids the text needs
 * (call again with a larger buffer if it exceeds capacity), or -1 on error. */
int32_t ug_tokenize(const ug_model* model, const char* text, size_t text_len, int add_bos,
                    int parse_special, int32_t* ids, int32_t capacity);
/* Writes the UTF-8 text of the ids (special tokens rendered) and returns its length in bytes (the
 * buffer needs one more for the terminating NUL), or -1 on error. */
int32_t ug_detokenize(const ug_model* model, const int32_t* ids, int32_t n_ids, char* buf,
                      int32_t capacity);

ug_context_params ug_context_default_params(void);
ug_context* ug_context_new(const ug_model* model, ug_context_params params);
void ug_context_free(ug_context* ctx);
/* Appends tokens at the current position and computes the logits of the last one. 0 on success. */
int ug_eval(ug_context* ctx, const int32_t* ids, int32_t n_ids);
/* Logits (n_vocab floats) after the last ug_eval; valid until the next call. */
const float* ug_logits(const ug_context* ctx);
/* Number of positions held in the KV cache; ug_truncate forgets positions >= n. */
int32_t ug_n_past(const ug_context* ctx);
int ug_truncate(ug_context* ctx, int32_t n);
/* Greedy continuation of what was evaluated: writes up to max_tokens ids (stops after an
 * end-of-generation token), returns how many, or -1 on error. */
int32_t ug_generate_greedy(ug_context* ctx, int32_t* out_ids, int32_t max_tokens);

#ifdef __cplusplus
}
#endif

#endif /* UNIGEMMA_UNIGEMMA_H */
