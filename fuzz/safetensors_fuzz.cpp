// libFuzzer target: the safetensors reader on arbitrary bytes. Any outcome other than success or
// ug::Error (a crash, a sanitizer report, another exception, a huge allocation) is a bug.
#include <cstddef>
#include <cstdint>

#include "format/safetensors.h"
#include "util/error.h"

// The fuzz build leaves UBSan recoverable; a report must still fail the run.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = ug::SafetensorsFile::from_memory(data, size, "fuzz.safetensors");
    uint64_t sink = f->data_offset() + f->metadata().size();
    for (const ug::StTensor& t : f->tensors()) {
      sink += uint64_t(t.n_elements()) + t.shape.size();
      // First and last byte of every view: ASan flags a view outside the input.
      if (t.n_bytes > 0) sink += t.data[0] + t.data[t.n_bytes - 1];
      sink += f->find(t.name) == &t;
      try {
        sink += uint32_t(t.tensor_type());
      } catch (const ug::Error&) {
      }
    }
    volatile uint64_t keep = sink;
    (void)keep;
  } catch (const ug::Error&) {
  }
  return 0;
}
