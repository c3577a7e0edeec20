#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <unordered_map>
#include <utility>

#include "format/gguf.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace ug {

namespace {

// Per-token attribute bits (llama.cpp's llama_token_attr subset that matters here).
constexpr uint8_t kAttrNormal = 1;
constexpr uint8_t kAttrUnknown = 2;
constexpr uint8_t kAttrControl = 4;
constexpr uint8_t kAttrUserDefined = 8;
constexpr uint8_t kAttrUnused = 16;
constexpr uint8_t kAttrByte = 32;

constexpr size_t kMaxInputBytes = size_t(1) << 30;
constexpr size_t kCacheMinInput = 4096;  // inputs at least this long memoize words
constexpr size_t kCacheMaxWord = 64;     // longer words are rarely repeated
constexpr size_t kNewlineRunTable = 64;  // ids of "\n" x k precomputed for k below this
constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581, SentencePiece's space
// Texts llama.cpp treats as end of generation (and therefore control) for Gemma 4.
constexpr std::string_view kEogTexts[] = {"<eos>", "<turn|>", "<|tool_response>"};

uint8_t attr_of(TokenType t) {
  switch (t) {
    case TokenType::kNormal:
      return kAttrNormal;
    case TokenType::kUnknown:
      return kAttrUnknown;
    case TokenType::kControl:
      return kAttrControl;
    case TokenType::kUserDefined:
      return kAttrUserDefined;
    case TokenType::kUnused:
      return kAttrUnused;
    case TokenType::kByte:
      return kAttrByte;
    case TokenType::kUndefined:
      break;
  }
  return 0;
}

// Value of a "<0xHH>" text, or -1.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int v = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = text[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

std::string byte_token_text(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
  return buf;
}

// Token texts come from files: keep error messages on one printable line.
std::string printable(std::string_view s) {
  constexpr size_t kMaxLen = 64;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxLen; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxLen) out += "...";
  return out;
}

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t hash_text(std::string_view s) {
  return std::hash<std::string_view>{}(s);
}

size_t table_size_for(size_t n) {
  size_t size = 16;
  while (size < n * 2) size <<= 1;
  return size;
}

uint64_t pair_key(int32_t left, int32_t right) {
  return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

}  // namespace

const char* token_type_name(TokenType t) {
  switch (t) {
    case TokenType::kUndefined:
      return "undefined";
    case TokenType::kNormal:
      return "normal";
    case TokenType::kUnknown:
      return "unknown";
    case TokenType::kControl:
      return "control";
    case TokenType::kUserDefined:
      return "user-defined";
    case TokenType::kUnused:
      return "unused";
    case TokenType::kByte:
      return "byte";
  }
  return "invalid";
}

// ---------------------------------------------------------------------------------------------
// Internal structures

struct Tokenizer::Symbol {
  int32_t id;      // symbol id (token, merge-only symbol), or -1 for a character with no id
  uint32_t start;  // byte offset in the run
  uint32_t len;    // 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

// A possible merge of symbol `left` with its right neighbour. `order` = rank << 32 | left: the
// lowest merge rank goes first, the leftmost on ties (llama.cpp's llm_bigram_bpe comparator).
// `size` = combined byte length when queued: symbols only grow, so the candidate is stale exactly
// when the left symbol or its neighbour has changed length since (as llama.cpp's text check).
struct Tokenizer::Candidate {
  uint64_t order;
  uint32_t size;
  int32_t result;
};

struct Tokenizer::Fragment {
  int32_t token;  // >= 0: a special token; -1: plain text [begin, end)
  size_t begin;
  size_t end;
};

// Per-call memo of word -> ids (natural text repeats words a lot): open addressing over slots
// that point into a byte arena and an id arena, so a lookup is one hash plus one compare.
class WordCache {
 public:
  static constexpr size_t kMaxEntries = size_t(1) << 20;  // bounds memory on huge inputs

  // The cached ids of `word`, or nullptr.
  const int32_t* find(std::string_view word, uint64_t hash, uint32_t& count) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.word_len == kEmptyLen) return nullptr;
      if (s.hash == hash && s.word_len == word.size() &&
          std::memcmp(words_.data() + s.word_offset, word.data(), word.size()) == 0) {
        count = s.ids_count;
        return ids_.data() + s.ids_offset;
      }
    }
  }

  void insert(std::string_view word, uint64_t hash, const int32_t* ids, size_t n_ids) {
    if (size_ >= kMaxEntries) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Slot s{hash, uint32_t(words_.size()), uint32_t(word.size()), uint32_t(ids_.size()),
           uint32_t(n_ids)};
    words_.append(word);
    ids_.insert(ids_.end(), ids, ids + n_ids);
    place(s);
    ++size_;
  }

 private:
  static constexpr uint32_t kEmptyLen = ~uint32_t(0);
  struct Slot {
    uint64_t hash;
    uint32_t word_offset;
    uint32_t word_len;
    uint32_t ids_offset;
    uint32_t ids_count;
  };

  void place(const Slot& s) {
    size_t i = s.hash & mask_;
    while (slots_[i].word_len != kEmptyLen) i = (i + 1) & mask_;
    slots_[i] = s;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{0, 0, kEmptyLen, 0, 0});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.word_len != kEmptyLen) place(s);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
  std::string words_;
  std::vector<int32_t> ids_;
};

struct Tokenizer::Scratch {
  // Only for long inputs, where the memo pays for its allocations.
  bool use_cache = false;
  WordCache cache;
  std::string escaped;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::vector<Fragment> fragments;
};

void Tokenizer::FlatMap64::reserve(size_t n) {
  const size_t size = table_size_for(n);
  slots.assign(size, Slot{kEmpty, {0, 0}});
  mask = size - 1;
}

bool Tokenizer::FlatMap64::insert(uint64_t key, std::array<int32_t, 2> value) {
  for (uint64_t i = mix64(key) & mask;; i = (i + 1) & mask) {
    Slot& slot = slots[i];
    if (slot.key == kEmpty) {
      slot = {key, value};
      return true;
    }
    if (slot.key == key) return false;
  }
}

void Tokenizer::FlatMap64::prefetch(uint64_t key) const {
  __builtin_prefetch(&slots[mix64(key) & mask]);
}

const std::array<int32_t, 2>* Tokenizer::FlatMap64::find(uint64_t key) const {
  if (slots.empty()) return nullptr;
  for (uint64_t i = mix64(key) & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots[i];
    if (slot.key == key) return &slot.value;
    if (slot.key == kEmpty) return nullptr;
  }
}

Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

// ---------------------------------------------------------------------------------------------
// Construction

Tokenizer Tokenizer::from_data(TokenizerData data, const std::string& source) {
  Tokenizer t;
  t.data_ = std::move(data);
  t.build(source);
  return t;
}

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  const std::string& path = file.path();
  const auto fail = [&](const std::string& key, const std::string& problem) {
    throw Error(path + ": metadata '" + key + "': " + problem);
  };
  const std::string model = file.get_string("tokenizer.ggml.model");
  if (model != "gemma4") {
    fail("tokenizer.ggml.model",
         "tokenizer model '" + printable(model) + "' is not supported (expected 'gemma4')");
  }

  TokenizerData d;
  d.tokens = file.get_string_array("tokenizer.ggml.tokens");
  const size_t n = d.tokens.size();
  if (file.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = file.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != n) {
      fail("tokenizer.ggml.token_type",
           std::to_string(types.size()) + " entries for " + std::to_string(n) + " tokens");
    }
    d.types.resize(n);
    for (size_t i = 0; i < n; ++i) {
      if (types[i] < 0 || types[i] > int64_t(TokenType::kByte)) {
        fail("tokenizer.ggml.token_type",
             "token " + std::to_string(i) + " has invalid type " + std::to_string(types[i]));
      }
      d.types[i] = static_cast<TokenType>(types[i]);
    }
  }
  if (file.has("tokenizer.ggml.scores")) {
    const std::vector<double> scores = file.get_float_array("tokenizer.ggml.scores");
    if (scores.size() != n) {
      fail("tokenizer.ggml.scores",
           std::to_string(scores.size()) + " entries for " + std::to_string(n) + " tokens");
    }
    d.scores.assign(scores.begin(), scores.end());
  }
  if (!file.has("tokenizer.ggml.merges")) fail("tokenizer.ggml.merges", "missing");
  d.merges = file.get_string_array("tokenizer.ggml.merges");

  const auto read_id = [&](const char* key) -> int32_t {
    const std::optional<int64_t> v = file.opt_int(key);
    if (!v) return -1;
    if (*v < 0 || *v >= int64_t(n)) {
      fail(key, "id " + std::to_string(*v) + " out of range [0, " + std::to_string(n) + ")");
    }
    return static_cast<int32_t>(*v);
  };
  d.bos_id = read_id("tokenizer.ggml.bos_token_id");
  d.eos_id = read_id("tokenizer.ggml.eos_token_id");
  d.unk_id = read_id("tokenizer.ggml.unknown_token_id");
  d.pad_id = read_id("tokenizer.ggml.padding_token_id");
  if (file.has("tokenizer.ggml.add_bos_token")) {
    d.add_bos = file.get_bool("tokenizer.ggml.add_bos_token");
  }
  if (file.has("tokenizer.ggml.add_space_prefix")) {
    d.add_space_prefix = file.get_bool("tokenizer.ggml.add_space_prefix");
  }
  if (auto tmpl = file.opt_string("tokenizer.chat_template")) d.chat_template = std::move(*tmpl);
  if (file.has("tokenizer.ggml.suppress_tokens")) {
    for (int64_t id : file.get_int_array("tokenizer.ggml.suppress_tokens")) {
      // Out-of-range ids are dropped, as llama.cpp does: they cannot be sampled anyway.
      if (id >= 0 && id < int64_t(n)) d.suppress_tokens.push_back(static_cast<int32_t>(id));
    }
  }
  return from_data(std::move(d), path);
}

void Tokenizer::build(const std::string& source) {
  TokenizerData& d = data_;
  const size_t n = d.tokens.size();
  const auto fail = [&](const std::string& problem) { throw Error(source + ": " + problem); };
  if (n == 0) fail("vocabulary is empty");
  // Symbol ids and pair keys are int32; leave room for merge-only symbols.
  if (n > (size_t(1) << 30)) fail("vocabulary of " + std::to_string(n) + " tokens is too large");
  if (!d.types.empty() && d.types.size() != n) {
    fail(std::to_string(d.types.size()) + " token types for " + std::to_string(n) + " tokens");
  }
  if (!d.scores.empty() && d.scores.size() != n) {
    fail(std::to_string(d.scores.size()) + " scores for " + std::to_string(n) + " tokens");
  }
  if (d.types.empty()) {
    d.types.resize(n, TokenType::kNormal);
    for (size_t i = 0; i < n; ++i) {
      if (parse_byte_token(d.tokens[i]) >= 0) d.types[i] = TokenType::kByte;
    }
  }
  const auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= int32_t(n)) {
      fail(std::string(what) + " id " + std::to_string(id) + " out of range [0, " +
           std::to_string(n) + ")");
    }
  };
  check_id(d.bos_id, "bos");
  check_id(d.eos_id, "eos");
  check_id(d.unk_id, "unk");
  check_id(d.pad_id, "pad");
  for (int32_t id : d.suppress_tokens) {
    if (id < 0) fail("suppress token id " + std::to_string(id) + " out of range");
    check_id(id, "suppress token");
  }

  // Text -> id table; with duplicate texts the highest id wins (llama.cpp's token_to_id).
  text_mask_ = table_size_for(n) - 1;
  text_slots_.assign(text_mask_ + 1, -1);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = d.tokens[i];
    for (uint64_t slot = hash_text(text) & text_mask_;; slot = (slot + 1) & text_mask_) {
      const int32_t other = text_slots_[slot];
      if (other < 0 || d.tokens[size_t(other)] == text) {
        text_slots_[slot] = int32_t(i);
        break;
      }
    }
  }

  attrs_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (d.types[i] == TokenType::kByte && parse_byte_token(d.tokens[i]) < 0) {
      fail("byte token " + std::to_string(i) + " has text '" + printable(d.tokens[i]) +
           "' (expected <0xHH>)");
    }
    attrs_[i] = attr_of(d.types[i]);
  }
  eog_ids_.clear();
  const auto add_eog = [&](int32_t id) {
    if (id < 0 || std::find(eog_ids_.begin(), eog_ids_.end(), id) != eog_ids_.end()) return;
    eog_ids_.push_back(id);
    attrs_[size_t(id)] |= kAttrControl;
  };
  add_eog(d.eos_id);
  for (std::string_view text : kEogTexts) add_eog(lookup_text(text));
  std::sort(eog_ids_.begin(), eog_ids_.end());

  for (int b = 0; b < 256; ++b) byte_ids_[size_t(b)] = lookup_text(byte_token_text(uint8_t(b)));

  // Merges. Parts and results that are not tokens become merge-only symbols.
  extra_symbols_.clear();
  std::unordered_map<std::string, int32_t> extra_symbol_ids;
  merges_.reserve(d.merges.size());
  const auto id_or_extra = [&](std::string_view text) -> int32_t {
    const int32_t id = lookup_text(text);
    if (id >= 0) return id;
    auto it = extra_symbol_ids.find(std::string(text));
    if (it != extra_symbol_ids.end()) return it->second;
    const int32_t extra = int32_t(n + extra_symbols_.size());
    extra_symbols_.emplace_back(text);
    extra_symbol_ids.emplace(std::string(text), extra);
    return extra;
  };
  // 514906 merges make three table lookups each, nearly all cache misses; working in blocks
  // with prefetches overlaps them (this loop dominates loading time otherwise).
  constexpr size_t kBlock = 64;
  struct Pending {
    std::string_view part[2];
    std::string joined;
    uint64_t hash[3];
    int32_t id[3];
  };
  std::vector<Pending> block(kBlock);
  for (size_t first = 0; first < d.merges.size(); first += kBlock) {
    const size_t count = std::min(kBlock, d.merges.size() - first);
    for (size_t b = 0; b < count; ++b) {
      const std::string& m = d.merges[first + b];
      const size_t sep = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
      if (sep == std::string::npos || sep + 1 >= m.size()) {
        fail("merge " + std::to_string(first + b) + " '" + printable(m) +
             "' is not two parts separated by a space");
      }
      Pending& p = block[b];
      p.part[0] = std::string_view(m.data(), sep);
      p.part[1] = std::string_view(m.data() + sep + 1, m.size() - sep - 1);
      p.joined.assign(p.part[0]);
      p.joined.append(p.part[1]);
      p.hash[0] = hash_text(p.part[0]);
      p.hash[1] = hash_text(p.part[1]);
      p.hash[2] = hash_text(p.joined);
      for (uint64_t h : p.hash) __builtin_prefetch(&text_slots_[h & text_mask_]);
    }
    for (size_t b = 0; b < count; ++b) {  // the first probed slot's token, likely the match
      for (uint64_t h : block[b].hash) {
        const int32_t id = text_slots_[h & text_mask_];
        if (id >= 0) __builtin_prefetch(&d.tokens[size_t(id)]);
      }
    }
    for (size_t b = 0; b < count; ++b) {
      Pending& p = block[b];
      p.id[0] = lookup_text_hashed(p.part[0], p.hash[0]);
      p.id[1] = lookup_text_hashed(p.part[1], p.hash[1]);
      p.id[2] = lookup_text_hashed(p.joined, p.hash[2]);
      if (p.id[0] >= 0 && p.id[1] >= 0) merges_.prefetch(pair_key(p.id[0], p.id[1]));
    }
    for (size_t b = 0; b < count; ++b) {
      Pending& p = block[b];
      if (p.id[0] < 0) p.id[0] = id_or_extra(p.part[0]);
      if (p.id[1] < 0) p.id[1] = id_or_extra(p.part[1]);
      if (p.id[2] < 0) p.id[2] = id_or_extra(p.joined);
      // The first occurrence of a pair keeps its rank (llama.cpp's bpe_ranks.emplace).
      merges_.insert(pair_key(p.id[0], p.id[1]), {int32_t(first + b), p.id[2]});
    }
  }

  newline_run_ids_.assign(kNewlineRunTable, -1);
  for (size_t k = 1; k < kNewlineRunTable; ++k) {
    newline_run_ids_[k] = lookup_text(std::string(k, '\n'));
  }

  split_words_ = true;
  word_glue_chars_.clear();
  for (const std::string& m : d.merges) {
    const size_t sep = m.find(' ', 1);
    const std::string_view left(m.data(), sep);
    const std::string_view right(m.data() + sep + 1, m.size() - sep - 1);
    if (right.substr(0, kSpaceMark.size()) != kSpaceMark) continue;
    if (left.size() >= kSpaceMark.size() &&
        left.substr(left.size() - kSpaceMark.size()) == kSpaceMark) {
      continue;
    }
    size_t start = left.size() - 1;
    while (start > 0 && (static_cast<uint8_t>(left[start]) & 0xC0) == 0x80) --start;
    const utf8::SeqInfo last = utf8::next_sequence(left.substr(start));
    if (last.status != utf8::SeqStatus::kValid || size_t(last.len) != left.size() - start) {
      split_words_ = false;  // a left part ending in raw bytes: do not reason about it
      break;
    }
    word_glue_chars_.push_back(last.cp);
  }
  std::sort(word_glue_chars_.begin(), word_glue_chars_.end());
  word_glue_chars_.erase(std::unique(word_glue_chars_.begin(), word_glue_chars_.end()),
                         word_glue_chars_.end());

  // Single-character symbols, looked up once per input character.
  ascii_ids_.fill(-1);
  size_t n_chars = 0;
  const auto single_cp = [](std::string_view text, uint32_t& cp) {
    if (text.empty()) return false;
    const utf8::SeqInfo info = utf8::next_sequence(text);
    cp = info.cp;
    return info.status == utf8::SeqStatus::kValid && size_t(info.len) == text.size();
  };
  uint32_t cp = 0;
  for (size_t i = 0; i < n; ++i) n_chars += single_cp(d.tokens[i], cp) && cp >= 0x80;
  for (const std::string& s : extra_symbols_) n_chars += single_cp(s, cp) && cp >= 0x80;
  char_ids_.reserve(n_chars);
  // Highest id first so that it wins, consistent with lookup_text.
  for (size_t i = n; i-- > 0;) {
    if (!single_cp(d.tokens[i], cp)) continue;
    if (cp < 0x80) {
      if (ascii_ids_[cp] < 0) ascii_ids_[cp] = int32_t(i);
    } else {
      char_ids_.insert(cp, {int32_t(i), 0});
    }
  }
  for (size_t k = 0; k < extra_symbols_.size(); ++k) {
    if (!single_cp(extra_symbols_[k], cp)) continue;
    const int32_t id = int32_t(n + k);
    if (cp < 0x80) {
      if (ascii_ids_[cp] < 0) ascii_ids_[cp] = id;
    } else {
      char_ids_.insert(cp, {id, 0});
    }
  }

  // Merges of two ASCII characters, the most frequent lookups, in a dense table.
  ascii_pairs_.assign(128 * 128, {-1, -1});
  for (size_t a = 0; a < 128; ++a) {
    for (size_t b = 0; b < 128; ++b) {
      if (ascii_ids_[a] < 0 || ascii_ids_[b] < 0) continue;
      if (const auto* m = merges_.find(pair_key(ascii_ids_[a], ascii_ids_[b]))) {
        ascii_pairs_[a * 128 + b] = *m;
      }
    }
  }

  // Special-token partition candidates: longest text first, then lower id (deterministic where
  // llama.cpp's unstable sort leaves equal lengths unordered).
  special_ids_.clear();
  for (size_t i = 0; i < n; ++i) {
    if ((attrs_[i] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) && !d.tokens[i].empty()) {
      special_ids_.push_back(int32_t(i));
    }
  }
  std::stable_sort(special_ids_.begin(), special_ids_.end(), [&](int32_t a, int32_t b) {
    return d.tokens[size_t(a)].size() > d.tokens[size_t(b)].size();
  });
  special_trie_.assign(1, TrieNode{});
  special_roots_.fill(-1);
  for (size_t k = 0; k < special_ids_.size(); ++k) {
    const std::string& text = d.tokens[size_t(special_ids_[k])];
    int32_t node = special_roots_[static_cast<uint8_t>(text[0])];
    if (node < 0) {
      node = int32_t(special_trie_.size());
      special_trie_.emplace_back();
      special_roots_[static_cast<uint8_t>(text[0])] = node;
    }
    for (size_t p = 1; p < text.size(); ++p) {
      const uint8_t b = static_cast<uint8_t>(text[p]);
      int32_t child = -1;
      for (const auto& [byte, index] : special_trie_[size_t(node)].children) {
        if (byte == b) child = index;
      }
      if (child < 0) {
        child = int32_t(special_trie_.size());
        special_trie_[size_t(node)].children.emplace_back(b, child);
        special_trie_.emplace_back();
      }
      node = child;
    }
    // Equal texts: the earlier candidate takes every occurrence, the later one never matches.
    if (special_trie_[size_t(node)].special < 0) special_trie_[size_t(node)].special = int32_t(k);
  }
}

// ---------------------------------------------------------------------------------------------
// Lookups

int32_t Tokenizer::lookup_text(std::string_view text) const {
  return lookup_text_hashed(text, hash_text(text));
}

int32_t Tokenizer::lookup_text_hashed(std::string_view text, uint64_t hash) const {
  if (text_slots_.empty()) return -1;
  for (uint64_t slot = hash & text_mask_;; slot = (slot + 1) & text_mask_) {
    const int32_t id = text_slots_[slot];
    if (id < 0) return -1;
    if (data_.tokens[size_t(id)] == text) return id;
  }
}

int32_t Tokenizer::char_symbol(uint32_t cp) const {
  if (cp < 0x80) return ascii_ids_[cp];
  const auto* v = char_ids_.find(cp);
  return v ? (*v)[0] : -1;
}

int32_t Tokenizer::find_token(std::string_view text) const {
  return lookup_text(text);
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= vocab_size()) {
    throw Error("token id " + std::to_string(id) + " out of range [0, " +
                std::to_string(vocab_size()) + ")");
  }
  return data_.tokens[size_t(id)];
}

TokenType Tokenizer::token_type(int32_t id) const {
  token_text(id);  // range check
  return data_.types[size_t(id)];
}

bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[size_t(id)] & kAttrControl);
}
bool Tokenizer::is_user_defined(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[size_t(id)] & kAttrUserDefined);
}
bool Tokenizer::is_byte(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[size_t(id)] & kAttrByte);
}
bool Tokenizer::is_eog(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

// ---------------------------------------------------------------------------------------------
// Encoding

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  encode_append(text, options, out);
  return out;
}

void Tokenizer::encode_append(std::string_view text, const EncodeOptions& options,
                              std::vector<int32_t>& out) const {
  if (text.size() > kMaxInputBytes) {
    throw Error("tokenizer: input of " + std::to_string(text.size()) +
                " bytes is larger than the 1 GiB limit");
  }
  if (options.add_bos) {
    if (data_.bos_id < 0) throw Error("tokenizer: add_bos requested but the vocabulary has no BOS");
    out.push_back(data_.bos_id);
  }
  if (text.empty()) return;
  Scratch scratch;
  scratch.use_cache = text.size() >= kCacheMinInput;
  partition_special(text, options.parse_special, scratch.fragments);
  for (const Fragment& f : scratch.fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
    } else {
      encode_plain(text.substr(f.begin, f.end - f.begin), scratch, out);
    }
  }
}

void Tokenizer::partition_special(std::string_view text, bool parse_special,
                                  std::vector<Fragment>& fragments) const {
  fragments.clear();
  fragments.push_back({-1, 0, text.size()});
  if (special_ids_.empty()) return;
  const auto allowed = [&](int32_t id) {
    return parse_special || !(attrs_[size_t(id)] & (kAttrControl | kAttrUnknown));
  };
  // One pass over the input finds which candidates occur at all; only those split fragments.
  std::vector<uint8_t> occurs(special_ids_.size(), 0);
  size_t n_occurring = 0;
  for (size_t pos = 0; pos < text.size(); ++pos) {
    int32_t node = special_roots_[static_cast<uint8_t>(text[pos])];
    for (size_t p = pos + 1; node >= 0; ++p) {
      const int32_t k = special_trie_[size_t(node)].special;
      if (k >= 0 && !occurs[size_t(k)] && allowed(special_ids_[size_t(k)])) {
        occurs[size_t(k)] = 1;
        ++n_occurring;
      }
      if (p >= text.size()) break;
      const uint8_t b = static_cast<uint8_t>(text[p]);
      int32_t child = -1;
      for (const auto& [byte, index] : special_trie_[size_t(node)].children) {
        if (byte == b) {
          child = index;
          break;
        }
      }
      node = child;
    }
  }
  if (n_occurring == 0) return;

  // llama.cpp's order: each candidate, longest first, splits every plain fragment left to right.
  std::vector<Fragment> next;
  for (size_t k = 0; k < special_ids_.size(); ++k) {
    if (!occurs[k]) continue;
    const int32_t id = special_ids_[k];
    const std::string& tok = data_.tokens[size_t(id)];
    next.clear();
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.begin;
      const std::string_view region = text.substr(0, f.end);
      for (;;) {
        const size_t match = region.find(tok, pos);
        if (match == std::string_view::npos) break;
        if (match > pos) next.push_back({-1, pos, match});
        next.push_back({id, match, match + tok.size()});
        pos = match + tok.size();
      }
      if (pos < f.end) next.push_back({-1, pos, f.end});
    }
    fragments.swap(next);
  }
}

void Tokenizer::encode_plain(std::string_view text, Scratch& scratch,
                             std::vector<int32_t>& out) const {
  std::string& esc = scratch.escaped;
  esc.clear();
  esc.reserve(text.size() + text.size() / 2);
  for (char c : text) {
    if (c == ' ') {
      esc.append(kSpaceMark);
    } else {
      esc.push_back(c);
    }
  }
  const std::string_view s(esc);
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    if (s[i] == '\n') {
      while (j < s.size() && s[j] == '\n') ++j;
      const std::string_view run = s.substr(i, j - i);
      // A newline run that is a token stays whole (llama.cpp's Gemma 4 rule: no merge chain
      // reaches "\n\n" from two "\n").
      const int32_t id =
          run.size() < newline_run_ids_.size() ? newline_run_ids_[run.size()] : lookup_text(run);
      if (id >= 0) {
        out.push_back(id);
      } else {
        encode_word(run, scratch, out);
      }
    } else {
      const void* nl = std::memchr(s.data() + i, '\n', s.size() - i);
      j = nl ? size_t(static_cast<const char*>(nl) - s.data()) : s.size();
      encode_line(s.substr(i, j - i), scratch, out);
    }
    i = j;
  }
}

void Tokenizer::encode_line(std::string_view line, Scratch& scratch,
                            std::vector<int32_t>& out) const {
  if (!split_words_) {
    encode_word(line, scratch, out);
    return;
  }
  size_t word_start = 0;
  size_t pos = 0;
  for (;;) {
    pos = line.find(kSpaceMark, pos + 1);
    if (pos == std::string_view::npos) break;
    if (pos >= kSpaceMark.size() && line.substr(pos - kSpaceMark.size(), 3) == kSpaceMark) {
      continue;  // inside a run of spaces
    }
    // The character before the mark (bytes that are not one well-formed character never merge).
    size_t start = pos - 1;
    while (start > word_start && (static_cast<uint8_t>(line[start]) & 0xC0) == 0x80) --start;
    const utf8::SeqInfo prev = utf8::next_sequence(line.substr(start, pos - start));
    if (prev.status == utf8::SeqStatus::kValid && size_t(prev.len) == pos - start &&
        std::binary_search(word_glue_chars_.begin(), word_glue_chars_.end(), prev.cp)) {
      continue;
    }
    encode_word(line.substr(word_start, pos - word_start), scratch, out);
    word_start = pos;
  }
  encode_word(line.substr(word_start), scratch, out);
}

void Tokenizer::encode_word(std::string_view word, Scratch& scratch,
                            std::vector<int32_t>& out) const {
  if (!scratch.use_cache || word.size() > kCacheMaxWord) {
    bpe(word, scratch, out);
    return;
  }
  const uint64_t hash = hash_text(word);
  uint32_t count = 0;
  if (const int32_t* ids = scratch.cache.find(word, hash, count)) {
    out.insert(out.end(), ids, ids + count);
    return;
  }
  const size_t before = out.size();
  bpe(word, scratch, out);
  scratch.cache.insert(word, hash, out.data() + before, out.size() - before);
}

void Tokenizer::bpe(std::string_view run, Scratch& scratch, std::vector<int32_t>& out) const {
  std::vector<Symbol>& syms = scratch.symbols;
  syms.clear();
  for (size_t pos = 0; pos < run.size();) {
    const uint8_t b = static_cast<uint8_t>(run[pos]);
    int32_t id;
    uint32_t len;
    if (b < 0x80) {
      id = ascii_ids_[b];
      len = 1;
    } else {
      const utf8::SeqInfo info = utf8::next_sequence(run.substr(pos));
      if (info.status == utf8::SeqStatus::kValid) {
        id = char_symbol(info.cp);
        len = uint32_t(info.len);
      } else {
        id = -1;  // ill-formed byte: never merges, becomes its byte token
        len = 1;
      }
    }
    const int32_t index = int32_t(syms.size());
    syms.push_back({id, uint32_t(pos), len, index - 1, index + 1});
    pos += len;
  }
  if (syms.empty()) return;
  syms.back().next = -1;

  if (syms.size() > 1) {
    std::vector<Candidate>& heap = scratch.heap;
    heap.clear();
    const auto later = [](const Candidate& a, const Candidate& b) { return a.order > b.order; };
    const auto try_add = [&](int32_t left, int32_t right) {
      if (left < 0 || right < 0) return;
      const Symbol& l = syms[size_t(left)];
      const Symbol& r = syms[size_t(right)];
      if (l.id < 0 || r.id < 0) return;
      const std::array<int32_t, 2>* m;
      if (l.len == 1 && r.len == 1) {  // two ASCII characters (other single bytes have no id)
        m = &ascii_pairs_[size_t(uint8_t(run[l.start])) * 128 + uint8_t(run[r.start])];
        if ((*m)[0] < 0) return;
      } else {
        m = merges_.find(pair_key(l.id, r.id));
        if (!m) return;
      }
      heap.push_back(
          {(uint64_t(uint32_t((*m)[0])) << 32) | uint32_t(left), l.len + r.len, (*m)[1]});
      std::push_heap(heap.begin(), heap.end(), later);
    };
    for (int32_t k = 1; k < int32_t(syms.size()); ++k) try_add(k - 1, k);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Candidate c = heap.back();
      heap.pop_back();
      const int32_t left = int32_t(uint32_t(c.order));
      Symbol& l = syms[size_t(left)];
      if (l.len == 0 || l.next < 0) continue;
      Symbol& r = syms[size_t(l.next)];
      if (l.len + r.len != c.size) continue;  // stale
      l.id = c.result;
      l.len += r.len;
      r.len = 0;
      l.next = r.next;
      if (r.next >= 0) syms[size_t(r.next)].prev = left;
      try_add(l.prev, left);
      try_add(left, l.next);
    }
  }

  const int32_t n_vocab = vocab_size();
  for (int32_t k = 0; k >= 0; k = syms[size_t(k)].next) {
    const Symbol& sym = syms[size_t(k)];
    if (sym.id >= 0 && sym.id < n_vocab) {
      out.push_back(sym.id);
    } else {
      push_bytes(run.substr(sym.start, sym.len), out);
    }
  }
}

void Tokenizer::push_bytes(std::string_view bytes, std::vector<int32_t>& out) const {
  for (char c : bytes) {
    const int32_t id = byte_ids_[static_cast<uint8_t>(c)];
    if (id >= 0) {
      out.push_back(id);
    } else if (data_.unk_id >= 0) {
      out.push_back(data_.unk_id);  // vocabulary without that byte token
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

void Tokenizer::append_piece(int32_t id, bool render_special, std::string& out) const {
  const std::string& text = token_text(id);  // range check
  const uint8_t attr = attrs_[size_t(id)];
  if (attr & (kAttrControl | kAttrUnknown)) {
    if (render_special) out += text;
    return;
  }
  if (attr & kAttrUserDefined) {
    out += text;
    return;
  }
  if (attr & kAttrNormal) {
    size_t pos = 0;
    for (;;) {
      const size_t mark = text.find(kSpaceMark, pos);
      if (mark == std::string::npos) break;
      out.append(text, pos, mark - pos);
      out += ' ';
      pos = mark + kSpaceMark.size();
    }
    out.append(text, pos, std::string::npos);
    return;
  }
  if (attr & kAttrByte) {
    out += static_cast<char>(parse_byte_token(text));
    return;
  }
  // Unused / undefined tokens render as nothing (llama.cpp).
}

std::string Tokenizer::token_piece(int32_t id, bool render_special) const {
  std::string out;
  append_piece(id, render_special, out);
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool render_special) const {
  std::string out;
  for (int32_t id : ids) append_piece(id, render_special, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// StreamDecoder

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool render_special)
    : tokenizer_(&tokenizer), render_special_(render_special) {}

std::string StreamDecoder::push(int32_t id) {
  tokenizer_->append_piece(id, render_special_, pending_);
  return drain(false);
}

std::string StreamDecoder::flush() {
  return drain(true);
}

std::string StreamDecoder::drain(bool final) {
  std::string out;
  const std::string_view s(pending_);
  size_t i = 0;
  while (i < s.size()) {
    const utf8::SeqInfo info = utf8::next_sequence(s.substr(i));
    if (info.status == utf8::SeqStatus::kTruncated && !final) break;  // wait for more bytes
    if (info.status == utf8::SeqStatus::kValid) {
      out.append(s.substr(i, size_t(info.len)));
    } else {
      out.append(utf8::kReplacementChar);
    }
    i += size_t(info.len);
  }
  pending_.erase(0, i);
  return out;
}

}  // namespace ug
