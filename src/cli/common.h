// Option handling shared by the commands that load a model and talk to it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cli/args.h"
#include "model/gemma4/model.h"
#include "runtime/chat_session.h"
#include "tokenizer/tokenizer.h"

namespace ug::cli {

struct LoadedModel {
  std::unique_ptr<gemma4::Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};
// Loads the model and its tokenizer (GGUF metadata or the HF folder's tokenizer.json).
LoadedModel load_model_and_tokenizer(const std::string& path);

// Options understood by every generating command (run, chat): threads, context, cache, sampling.
extern const std::vector<std::string> kGenerationOptions;
extern const char* kGenerationHelp;
// Fills chat options from the command line, starting from the model's recommended sampling.
ChatOptions chat_options_from_args(const Args& args, const LoadedModel& m);
int threads_from_args(const Args& args);

}  // namespace ug::cli
