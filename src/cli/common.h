// Option handling shared by the commands that load a model and talk to it.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/args.h"
#include "model/gemma4/drafter.h"
#include "model/gemma4/model.h"
#include "model/gemma4/projector.h"
#include "runtime/chat_session.h"
#include "tokenizer/tokenizer.h"

namespace ug::cli {

struct LoadedModel {
  std::unique_ptr<gemma4::Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};
// Loads the model and its tokenizer (GGUF metadata or the HF folder's tokenizer.json).
LoadedModel load_model_and_tokenizer(const std::string& path);

// The bundled default model (unigemma-nano: text + projector + MTP drafter in one GGUF), first
// found of: $UNIGEMMA_MODEL, <executable>/../share/unigemma/unigemma-nano.gguf (installed), the
// source tree's models/unigemma-nano.gguf (build tree). Empty when none exists.
std::string default_model_path();
// Token ids of `text` as one user turn rendered with the tokenizer's chat template (the official
// one when it has none), ending with the generation prompt.
std::vector<int32_t> chat_turn_ids(const Tokenizer& tokenizer, const std::string& text);
// -m/--model, else the default model (announced on stderr); throws naming `command` when neither.
std::string model_path_from_args(const Args& args, const char* command);

// Options understood by every generating command (run, chat): threads, context, cache, sampling.
extern const std::vector<std::string> kGenerationOptions;
extern const char* kGenerationHelp;
// Fills chat options from the command line, starting from the model's recommended sampling.
ChatOptions chat_options_from_args(const Args& args, const LoadedModel& m);
int threads_from_args(const Args& args);
// The context length to use: `n_ctx`, checked against the memory plan (weights, KV, activations,
// --draft, --mmproj) and the budget (--mem-limit or the available memory), or with `auto_ctx` the
// largest that fits (the plan is printed to stderr). Throws ug::Error when it cannot fit.
int plan_context(const Args& args, const LoadedModel& m, int n_ctx, bool auto_ctx, int n_ubatch,
                 TensorType cache_type, std::optional<TensorType> global_cache_type);
// --cache-type-global, or unset.
std::optional<TensorType> global_cache_type_from_args(const Args& args);
// Bytes of a file, or of the *.safetensors files of a folder; 0 when absent.
uint64_t path_bytes(const std::string& path);

// Multimodal options of run/chat: --mmproj, --image, --audio, --video (repeatable),
// --image-tokens, --audio-clip, --audio-max, --video-audio, --video-frames.
extern const std::vector<std::string> kMediaOptions;
extern const char* kMediaHelp;
// The projector from --mmproj, or from the model file itself when it bundles the projector
// tensors; null when neither (media requests then fail with a hint).
std::unique_ptr<gemma4::Projector> projector_from_args(const Args& args, const LoadedModel& m);
// `projector` (may be null) supplies the model's default image budget when --image-tokens is
// absent.
MediaOptions media_options_from_args(const Args& args, const gemma4::Projector* projector);
// Connects the projector to the session and attaches every --image, then every --audio, then
// every --video file, printing their notices on stderr.
void attach_media_from_args(const Args& args, const gemma4::Projector* projector,
                            ChatSession& session);
// "note: ..." lines on stderr (audio split into clips, audio track ignored...).
void print_media_notices(const MediaEmbedding& m);

// MTP drafter of run/chat (--draft FILE|auto|none; --draft-max/--draft-min/--draft-adaptive are
// parsed by chat_options_from_args). Members are null without a drafter.
struct LoadedDrafter {
  std::unique_ptr<gemma4::DrafterModel> model;
  std::unique_ptr<gemma4::Drafter> drafter;
};
// A drafter for `model` in the model's folder: a gemma4-assistant GGUF (or HF assistant folder)
// whose name says so (assistant, draft, mtp) and whose backbone width and vocabulary match.
// Empty when there is none; unreadable candidates are skipped.
std::string find_drafter_near(const std::string& model_path, const gemma4::Model& model);
// --draft FILE loads FILE; --draft auto loads find_drafter_near() (an error when there is none);
// without --draft, prints a one-line hint to stderr when find_drafter_near() finds one;
// --draft none: no drafter, no hint.
LoadedDrafter drafter_from_args(const Args& args, const LoadedModel& m, ThreadPool& pool);
// drafter_from_args(), then hands the drafter to the session.
LoadedDrafter attach_drafter_from_args(const Args& args, const LoadedModel& m, ThreadPool& pool,
                                       ChatSession& session);

}  // namespace ug::cli
