// Gemma 4 tokenizer: BPE over SentencePiece-style pieces, as llama.cpp's "gemma4" vocabulary
// (LLAMA_VOCAB_TYPE_BPE + LLAMA_VOCAB_PRE_TYPE_GEMMA4) and the Hugging Face tokenizer compute it.
//
// Encoding, in order:
//   1. Special-token partition. Every token of type control, user-defined or unknown is a
//      candidate, longest text first (ties: lower id first); each splits the remaining plain-text
//      fragments at every non-overlapping occurrence. Without parse_special only user-defined
//      tokens take part (so `<|channel>` is always one token, `<|turn>` only with parse_special).
//   2. In each plain fragment every ' ' becomes U+2581 "▁" (a literal "▁" in the input is therefore
//      indistinguishable from a space); no prefix space is added.
//   3. The fragment is split into runs of '\n' and runs of everything else. A newline run that is
//      itself a token is emitted whole.
//   4. Each run is merged by BPE over its UTF-8 characters: repeatedly the adjacent pair with the
//      lowest merge rank (leftmost on ties) is joined.
//   5. A final symbol that is not a token is emitted as its bytes' `<0xNN>` tokens (byte fallback).
// Invalid UTF-8 policy: each byte that is not part of a well-formed sequence is its own symbol that
// never merges and is emitted as its `<0xNN>` byte token, so decode(encode(s)) == s for any bytes
// without a literal "▁" (llama.cpp instead replaces such bytes with U+FFFD before tokenizing).
//
// Decoding renders each token as its piece: normal tokens with "▁" turned back into spaces, byte
// tokens as their raw byte, user-defined tokens verbatim always, control/unknown tokens verbatim
// only with render_special (otherwise as nothing). This is llama.cpp's llama_token_to_piece and
// Hugging Face decode(skip_special_tokens=False) without space clean-up.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

namespace gguf {
class File;
}

// GGUF `tokenizer.ggml.token_type` values (llama.cpp numbering).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};
const char* token_type_name(TokenType t);

// Everything a tokenizer is made of, in GGUF form. Used to construct one from plain vectors (tests,
// converters) and returned by Tokenizer::data() (e.g. to write a GGUF from a tokenizer.json).
struct TokenizerData {
  std::vector<std::string> tokens;
  std::vector<TokenType> types;  // one per token; empty = normal, `<0xNN>` texts = byte
  std::vector<float> scores;     // optional (one per token); BPE does not use them
  // "left right", split at the first space after byte 0; the rank is the index.
  std::vector<std::string> merges;
  int32_t bos_id = -1;  // -1 = none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = true;            // the vocabulary's default; encode() takes it as an option
  bool add_space_prefix = false;  // stored only: the gemma4 BPE never adds a prefix space
  std::string chat_template;      // empty when absent
  // Ids never to sample (GGUF tokenizer.ggml.suppress_tokens).
  std::vector<int32_t> suppress_tokens;
};

struct EncodeOptions {
  bool add_bos = false;        // prepend bos_id (an error when the vocabulary has none)
  bool parse_special = false;  // control-token texts (e.g. "<|turn>") become their ids
};

class Tokenizer {
 public:
  // Reads tokenizer.ggml.* from a model or vocabulary GGUF. `tokenizer.ggml.model` must be
  // "gemma4"; any other value, or inconsistent arrays, throw ug::Error naming the file and key.
  static Tokenizer from_gguf(const gguf::File& file);
  // Validates `data` (throws ug::Error with `source` in the message) and builds the lookup tables.
  static Tokenizer from_data(TokenizerData data, const std::string& source = "tokenizer data");
  // Hugging Face files: tokenizer.json (BPE model, vocab, merges, added_tokens) and optionally
  // tokenizer_config.json (added_tokens_decoder, bos/eos/unk/pad names, add_bos_token,
  // chat_template). Added tokens with "special": true become control tokens, the others
  // user-defined, except that Gemma 4's tool-call/thought/string tokens (`<|channel>`,
  // `<|tool_call>`, `<|"|>`, ...) are always user-defined, as llama.cpp's converter writes them;
  // `<0xNN>` vocabulary entries become byte tokens. Errors name the file and the field.
  static Tokenizer from_hf_files(const std::string& tokenizer_json_path,
                                 const std::string& tokenizer_config_path = "");
  // Same from a directory: tokenizer.json, tokenizer_config.json if present, and
  // chat_template.jinja if present and the config has no chat_template.
  static Tokenizer from_hf_dir(const std::string& dir);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // Thread-safe (const, no shared scratch). Throws ug::Error for inputs over 1 GiB.
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Appends to `out` instead of returning a new vector.
  void encode_append(std::string_view text, const EncodeOptions& options,
                     std::vector<int32_t>& out) const;

  // The bytes a token stands for (see the header comment). Throws ug::Error for ids out of range.
  std::string token_piece(int32_t id, bool render_special = true) const;
  void append_piece(int32_t id, bool render_special, std::string& out) const;
  // Concatenation of the pieces; the result may be invalid UTF-8 (e.g. a lone byte token).
  std::string decode(std::span<const int32_t> ids, bool render_special = true) const;

  // Exact vocabulary text (e.g. "<turn|>", "▁hello") to id, or -1. With duplicate texts the
  // highest id wins, as in llama.cpp.
  int32_t find_token(std::string_view text) const;
  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }
  const std::string& token_text(int32_t id) const;  // raw vocabulary text (throws out of range)
  TokenType token_type(int32_t id) const;           // as stored (throws out of range)
  // Effective classification used for parsing and rendering: the stored type, except that the
  // end-of-generation tokens (eos, "<eos>", "<turn|>", "<|tool_response>") count as control, as in
  // llama.cpp — `<|tool_response>` is user-defined in the GGUF yet renders as control.
  bool is_control(int32_t id) const;
  bool is_user_defined(int32_t id) const;
  bool is_byte(int32_t id) const;
  bool is_eog(int32_t id) const;  // end of generation
  const std::vector<int32_t>& eog_ids() const { return eog_ids_; }

  int32_t bos_id() const { return data_.bos_id; }
  int32_t eos_id() const { return data_.eos_id; }
  int32_t unk_id() const { return data_.unk_id; }
  int32_t pad_id() const { return data_.pad_id; }
  bool add_bos_default() const { return data_.add_bos; }
  const std::string& chat_template() const { return data_.chat_template; }
  const TokenizerData& data() const { return data_; }

 private:
  Tokenizer() = default;
  void build(const std::string& source);

  struct Symbol;
  struct Candidate;
  struct Scratch;
  struct Fragment;

  // Open-addressing table from a 64-bit key to two int32 values (merge pair -> rank, result;
  // code point -> id). Key and value share a 16-byte slot: one cache miss per lookup.
  struct FlatMap64 {
    struct Slot {
      uint64_t key;
      std::array<int32_t, 2> value;
    };
    std::vector<Slot> slots;
    uint64_t mask = 0;
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    void reserve(size_t n);
    // Inserts unless present; returns false (and leaves the value) when the key already exists.
    bool insert(uint64_t key, std::array<int32_t, 2> value);
    const std::array<int32_t, 2>* find(uint64_t key) const;
    void prefetch(uint64_t key) const;
  };

  int32_t lookup_text(std::string_view text) const;
  int32_t lookup_text_hashed(std::string_view text, uint64_t hash) const;
  int32_t char_symbol(uint32_t cp) const;
  void partition_special(std::string_view text, bool parse_special,
                         std::vector<Fragment>& fragments) const;
  void encode_plain(std::string_view text, Scratch& scratch, std::vector<int32_t>& out) const;
  void encode_line(std::string_view line, Scratch& scratch, std::vector<int32_t>& out) const;
  void encode_word(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const;
  void bpe(std::string_view word, Scratch& scratch, std::vector<int32_t>& out) const;
  void push_bytes(std::string_view bytes, std::vector<int32_t>& out) const;

  TokenizerData data_;
  std::vector<uint8_t> attrs_;       // bit set of kAttr* flags per token
  std::vector<int32_t> text_slots_;  // open-addressing table of ids, keyed by text hash
  uint64_t text_mask_ = 0;
  // Strings that merges produce or consume but that are not tokens (none in Gemma 4's vocabulary);
  // they get ids from vocab_size() up, merge like tokens and are emitted as byte fallback.
  std::vector<std::string> extra_symbols_;
  FlatMap64 merges_;  // (left id << 32 | right id) -> {rank, result id}
  std::vector<std::array<int32_t, 2>> ascii_pairs_;  // [a * 128 + b] -> {rank, result} or -1
  FlatMap64 char_ids_;  // code point -> {symbol id, 0} for non-ASCII characters
  std::array<int32_t, 128> ascii_ids_{};
  std::array<int32_t, 256> byte_ids_{};
  // Word split (an exact speed-up, not a rule of the tokenizer): a line may be cut before a "▁"
  // that follows another character c when no merge joins a left part ending in c with a right
  // part starting with "▁". `word_glue_chars_` (sorted) lists the c for which such a merge exists
  // (Gemma 4: only '>', from "> ▁</"); `split_words_` is false if the vocabulary defeats this.
  bool split_words_ = false;
  std::vector<uint32_t> word_glue_chars_;
  std::vector<int32_t> newline_run_ids_;  // [k] = id of k newlines, or -1
  std::vector<int32_t> special_ids_;      // partition candidates, longest text first
  // Byte trie over the candidates' texts, to find which occur in an input in one pass.
  struct TrieNode {
    int32_t special = -1;  // index into special_ids_ of the text ending here
    std::vector<std::pair<uint8_t, int32_t>> children;
  };
  std::vector<TrieNode> special_trie_;        // node 0 is the (unused) root
  std::array<int32_t, 256> special_roots_{};  // root's children by first byte (-1: none)
  std::vector<int32_t> eog_ids_;
};

// Turns a stream of token ids into text that is always complete, well-formed UTF-8: bytes of a
// character split across tokens (e.g. an emoji as four `<0xNN>` tokens) are held back until the
// character is complete. Ill-formed bytes are replaced by U+FFFD (one per maximal ill-formed
// subpart) as soon as they are known to be ill-formed; flush() replaces an unfinished trailing
// sequence by one U+FFFD. Concatenating all push() results and flush() therefore equals
// utf8::sanitize(tokenizer.decode(ids, render_special)). The tokenizer must outlive the decoder.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool render_special);

  std::string push(int32_t id);  // throws ug::Error for ids out of range
  std::string flush();           // emits and clears whatever is held back
  void reset() { pending_.clear(); }
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string drain(bool final);

  const Tokenizer* tokenizer_;
  bool render_special_;
  std::string pending_;
};

}  // namespace ug
