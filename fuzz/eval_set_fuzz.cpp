// Eval sets (`unigemma eval`): any examples.jsonl either loads, and its answers check, or throws
// ug::Error; nothing else may escape, crash or trip a sanitizer.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/eval.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("eval_set_fuzz-" + std::to_string(::getpid()));
  static const bool made = [] {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "a.png") << "x";  // a media file some inputs may name
    return true;
  }();
  (void)made;
  {
    std::ofstream out(dir / "examples.jsonl", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    for (const ug::EvalExample& ex : ug::load_eval_set(dir.string())) {
      const ug::EvalOutput ref = ug::eval_output_of(ug::parse_model_output(ex.reference));
      (void)ug::answer_is_correct(ex, ref);
      (void)ug::same_output(ref, ref);
    }
  } catch (const ug::Error&) {
  }
  return 0;
}
