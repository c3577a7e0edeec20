#include "runtime/memory_plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string_view>

#include "model/gemma4/decoder.h"
#include "model/gemma4/kv_cache.h"
#include "util/error.h"

namespace ug {

namespace {

constexpr uint64_t kMiB = 1024ull * 1024;
// Code, shared libraries, allocator arenas and thread stacks: measured as the peak RSS of
// `unigemma run` on the 4,198-token tiny oracle model minus its planned parts, rounded up.
constexpr uint64_t kRuntimeBase = 8 * kMiB;

// The tokenizer: the vocabulary and merges read from the file's metadata plus their in-memory
// tables, measured at about 360 bytes a token (`unigemma tokenize` peaks at 99 MiB with the
// 262,144-token Gemma 4 vocabulary, 6 MiB without a model).
uint64_t tokenizer_bytes(int n_vocab) {
  return uint64_t(n_vocab) * 360;
}

// Reads "Key:   123 kB" from /proc/meminfo.
uint64_t meminfo_bytes(std::string_view key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() &&
        line[key.size()] == ':') {
      return std::strtoull(line.c_str() + key.size() + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

// First line of a cgroup file as a number; 0 for "max" or when unreadable.
uint64_t cgroup_value(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return 0;
  return std::strtoull(s.c_str(), nullptr, 10);
}

}  // namespace

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

MemoryPlan plan_memory(const MemoryPlanRequest& r) {
  if (!r.config) throw Error("memory plan: no model configuration");
  if (r.n_ctx <= 0 || r.n_ubatch <= 0) throw Error("memory plan: context and batch must be > 0");
  const gemma4::Config& c = *r.config;
  const int n_ubatch = std::min(r.n_ubatch, r.n_ctx);
  MemoryPlan p;
  p.n_ctx = r.n_ctx;
  p.weights = r.weight_bytes;
  p.kv_cache = gemma4::KvCache::bytes_for(c, r.n_ctx, n_ubatch, r.cache_type,
                                          r.global_cache_type.value_or(r.cache_type));
  // Decoder scratch, the GEMM's packed copy of the widest input, and the last row's logits (plus
  // the sampler's sorted copy).
  p.activations = gemma4::Decoder::scratch_bytes(c, n_ubatch) +
                  4ull * uint64_t(n_ubatch) * uint64_t(std::max(c.n_embd, c.max_ff())) +
                  2 * 4ull * uint64_t(c.n_vocab) + 8ull * uint64_t(c.n_vocab);
  if (r.drafter_bytes > 0) {
    // Weights plus the drafted rows' logits over the full vocabulary.
    p.drafter = r.drafter_bytes + 16 * 4ull * uint64_t(c.n_vocab);
  }
  if (r.projector_bytes > 0) {
    const uint64_t tokens = uint64_t(std::max(r.max_image_tokens, 0));
    // Decoded RGB (up to 4 bytes a pixel of a ~12 MP photo is bounded by the pixel limit; the
    // resized float image and patches: 48*48*3 floats per token), and the embeddings.
    p.multimodal = r.projector_bytes + tokens * (2ull * 48 * 48 * 3 * 4 + 2ull * 4 * c.n_embd);
  }
  p.runtime = kRuntimeBase + tokenizer_bytes(c.n_vocab);
  return p;
}

std::string MemoryPlan::summary() const {
  std::string s = human_bytes(double(weights)) + " weights + " + human_bytes(double(kv_cache)) +
                  " KV (ctx " + std::to_string(n_ctx) + ") + " + human_bytes(double(activations)) +
                  " activations";
  if (drafter) s += " + " + human_bytes(double(drafter)) + " drafter";
  if (multimodal) s += " + " + human_bytes(double(multimodal)) + " multimodal";
  s += " + " + human_bytes(double(runtime)) + " runtime = " + human_bytes(double(total()));
  return s;
}

uint64_t available_memory() {
  uint64_t avail = meminfo_bytes("MemAvailable");
  // cgroup v2: this process's group limit minus what the group already uses.
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const uint64_t limit = cgroup_value(dir + "/memory.max");
    const uint64_t used = cgroup_value(dir + "/memory.current");
    if (limit > 0) {
      const uint64_t room = limit > used ? limit - used : 0;
      avail = avail == 0 ? room : std::min(avail, room);
    }
  }
  return avail;
}

void check_memory_plan(const MemoryPlan& plan, uint64_t budget, const std::string& budget_source) {
  if (budget == 0 || plan.total() <= budget) return;
  throw Error("not enough memory: " + plan.summary() + ", but " + budget_source + " is " +
              human_bytes(double(budget)) +
              " (use --ctx auto, a smaller --ctx, --cache-type q8_0, or --mem-limit)");
}

int auto_context(MemoryPlanRequest request, uint64_t budget) {
  constexpr int kStep = 256;
  const gemma4::Config& c = *request.config;
  const int hi_limit = std::max(kStep, c.n_ctx_train > 0 ? c.n_ctx_train : 4096);
  auto fits = [&](int n_ctx) {
    request.n_ctx = n_ctx;
    return plan_memory(request).total() <= budget;
  };
  if (!fits(kStep)) {
    request.n_ctx = kStep;
    throw Error("not enough memory for any context: " + plan_memory(request).summary() + ", but " +
                human_bytes(double(budget)) + " is available");
  }
  if (fits(hi_limit)) return hi_limit;
  // Binary search over multiples of kStep: fits(lo * kStep) holds, fits(hi * kStep) does not.
  int lo = 1, hi = hi_limit / kStep;
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (fits(mid * kStep) ? lo : hi) = mid;
  }
  return lo * kStep;
}

uint64_t parse_memory_size(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  std::string unit = text.substr(i);
  for (char& ch : unit) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  if (unit.size() > 1 && unit.back() == 'b') unit.pop_back();  // "GB", "GiB" -> "g", "gi"
  if (unit.size() == 2 && unit[1] == 'i') unit.pop_back();
  double scale = 0;
  if (unit.empty()) scale = 1;
  if (unit == "k") scale = 1024.0;
  if (unit == "m") scale = 1024.0 * 1024;
  if (unit == "g") scale = 1024.0 * 1024 * 1024;
  if (unit == "t") scale = 1024.0 * 1024 * 1024 * 1024;
  char* end = nullptr;
  const std::string number = text.substr(0, i);
  const double v = number.empty() ? -1 : std::strtod(number.c_str(), &end);
  if (scale == 0 || !(v > 0) || end != number.c_str() + number.size() || v * scale > 1e18) {
    throw Error("memory size '" + text + "': expected a number with an optional K/M/G/T suffix");
  }
  return uint64_t(v * scale);
}

}  // namespace ug
