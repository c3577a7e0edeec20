// libFuzzer target: the GGUF reader on arbitrary bytes. Any outcome other than success or
// ug::Error (a crash, a sanitizer report, another exception, a huge allocation) is a bug.
#include <cstddef>
#include <cstdint>

#include "format/gguf.h"
#include "util/error.h"

namespace {

// Calls every getter on every key: each must either return or throw ug::Error.
uint64_t exercise_getters(const ug::gguf::File& f, const std::string& key) {
  uint64_t sink = 0;
  try {
    sink += uint64_t(f.get_int(key));
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_float(key) != 0;
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_bool(key);
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_string(key).size();
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_int_array(key).size();
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_float_array(key).size();
  } catch (const ug::Error&) {
  }
  try {
    sink += f.get_string_array(key).size();
  } catch (const ug::Error&) {
  }
  return sink;
}

}  // namespace

// The fuzz build leaves UBSan recoverable; a report must still fail the run.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = ug::gguf::File::from_memory(data, size, "fuzz.gguf");
    uint64_t sink = f->alignment() + f->data_offset();
    for (const ug::gguf::KeyValue& kv : f->metadata()) {
      sink += kv.value.array_size();
      sink += exercise_getters(*f, kv.key);
    }
    for (const ug::gguf::TensorInfo& t : f->tensors()) {
      sink += uint64_t(t.n_elements());
      // First and last byte of every view: ASan flags a view outside the input.
      if (t.n_bytes > 0) sink += t.data[0] + t.data[t.n_bytes - 1];
      sink += f->find_tensor(t.name) == &t;
    }
    volatile uint64_t keep = sink;
    (void)keep;
  } catch (const ug::Error&) {
  }
  return 0;
}
