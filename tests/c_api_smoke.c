/* Compiled as C to prove the public header is C-compatible; run by ctest on the tiny oracle model.
 */
#include <stdio.h>
#include <stdlib.h>

#include "unigemma/unigemma.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    printf("usage: c_api_smoke MODEL\n");
    return 2;
  }
  if (ug_model_load("/nonexistent/model.gguf") != NULL || ug_last_error()[0] == '\0') {
    fprintf(stderr, "expected an error for a missing model\n");
    return 1;
  }
  ug_model* model = ug_model_load(argv[1]);
  if (!model) {
    fprintf(stderr, "load failed: %s\n", ug_last_error());
    return 1;
  }
  int32_t ids[64];
  const int32_t n = ug_tokenize(model, "The cat sat on the mat.", 23, 1, 0, ids, 64);
  ug_context* ctx = ug_context_new(model, ug_context_default_params());
  if (n <= 1 || n > 64 || !ctx || ug_eval(ctx, ids, n) != 0 || !ug_logits(ctx)) {
    fprintf(stderr, "eval failed: %s\n", ug_last_error());
    return 1;
  }
  int32_t out[8];
  const int32_t got = ug_generate_greedy(ctx, out, 8);
  char text[256];
  if (got <= 0 || ug_detokenize(model, out, got, text, sizeof text) < 0) {
    fprintf(stderr, "generation failed: %s\n", ug_last_error());
    return 1;
  }
  printf("%d prompt tokens, %d generated: %s\n", n, got, text);
  ug_context_free(ctx);
  ug_model_free(model);
  return 0;
}
