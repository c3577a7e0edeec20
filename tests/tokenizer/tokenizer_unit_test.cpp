// Tokenizer behaviour on small hand-made vocabularies (no oracle needed): BPE merge order, byte
// fallback, invalid UTF-8, special-token partition, rendering, the stream decoder, GGUF and
// tokenizer.json loading, and input validation.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace ug {
namespace {

using Ids = std::vector<int32_t>;
constexpr int32_t kByte0 = 10;  // <0x00> .. <0xFF> are ids 10 .. 265

// A miniature Gemma-like vocabulary.
TokenizerData small_data() {
  TokenizerData d;
  const auto add = [&](const std::string& text, TokenType type) {
    d.tokens.push_back(text);
    d.types.push_back(type);
  };
  add("<pad>", TokenType::kControl);                 // 0
  add("<eos>", TokenType::kControl);                 // 1
  add("<bos>", TokenType::kControl);                 // 2
  add("<unk>", TokenType::kControl);                 // 3
  add("<|turn>", TokenType::kControl);               // 4
  add("<turn|>", TokenType::kControl);               // 5
  add("<|channel>", TokenType::kUserDefined);        // 6
  add("<|tool_response>", TokenType::kUserDefined);  // 7: end of generation -> control
  add("<|turn>x", TokenType::kControl);              // 8: longer special that overlaps <|turn>
  add("<unused>", TokenType::kUnused);               // 9
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    add(buf, TokenType::kByte);  // 10 .. 265
  }
  for (const char* t : {"a", "b", "c", "\xE2\x96\x81", "\n", "\n\n", "ab", "bc", "abc",
                        "\xE2\x96\x81"
                        "a",
                        "aa", "\xC3\xA9", "x", "y", "xyz", "<", ">"}) {
    add(t, TokenType::kNormal);  // 266 ..
  }
  d.merges = {"b c", "a b", "ab c", "\xE2\x96\x81 a", "a a", "x y", "xy z"};
  d.bos_id = 2;
  d.eos_id = 1;
  d.unk_id = 3;
  d.pad_id = 0;
  d.chat_template = "{{ messages }}";
  return d;
}

const Tokenizer& small() {
  static const Tokenizer tok = Tokenizer::from_data(small_data(), "small vocab");
  return tok;
}

int32_t id(const std::string& text) {
  const int32_t i = small().find_token(text);
  EXPECT_GE(i, 0) << text;
  return i;
}
int32_t byte_id(uint8_t b) {
  return kByte0 + b;
}

TEST(Tokenizer, MergesFollowRankNotLength) {
  // "b c" (rank 0) wins over "a b" (rank 1), and "a bc" is no merge.
  EXPECT_EQ(small().encode("abc"), (Ids{id("a"), id("bc")}));
  EXPECT_EQ(small().encode("ab"), (Ids{id("ab")}));
  EXPECT_EQ(small().encode("abab"), (Ids{id("ab"), id("ab")}));
}

TEST(Tokenizer, EqualRanksMergeLeftmostFirst) {
  EXPECT_EQ(small().encode("aaa"), (Ids{id("aa"), id("a")}));
  EXPECT_EQ(small().encode("aaaaa"), (Ids{id("aa"), id("aa"), id("a")}));
}

TEST(Tokenizer, SpacesBecomeMarksWithoutPrefix) {
  const int32_t mark = id("\xE2\x96\x81");
  EXPECT_EQ(small().encode("a a"), (Ids{id("a"), id("\xE2\x96\x81"
                                                    "a")}));
  EXPECT_EQ(small().encode(" "), (Ids{mark}));
  EXPECT_EQ(small().encode("  b"), (Ids{mark, mark, id("b")}));
  // A literal U+2581 is the same as a space.
  EXPECT_EQ(small().encode("a\xE2\x96\x81"
                           "a"),
            small().encode("a a"));
  EXPECT_EQ(small().decode(small().encode("a\xE2\x96\x81"
                                          "a")),
            "a a");
}

TEST(Tokenizer, NewlineRunsSplitAndStayWholeWhenTokens) {
  const int32_t nl = id("\n"), nl2 = id("\n\n");
  EXPECT_EQ(small().encode("a\n\nb"), (Ids{id("a"), nl2, id("b")}));
  // "\n\n\n" is no token and no merge joins newlines here: three single newlines.
  EXPECT_EQ(small().encode("\n\n\n"), (Ids{nl, nl, nl}));
  // Merges never cross a newline: "a" and "b" stay apart.
  EXPECT_EQ(small().encode("a\nb"), (Ids{id("a"), nl, id("b")}));
}

TEST(Tokenizer, ByteFallbackForUnknownCharacters) {
  EXPECT_EQ(small().encode("z"), (Ids{byte_id('z')}));
  EXPECT_EQ(small().encode("\xC3\xA9"), (Ids{id("\xC3\xA9")}));  // é is a token
  // U+1F600 is not: its four UTF-8 bytes.
  EXPECT_EQ(small().encode("\xF0\x9F\x98\x80"),
            (Ids{byte_id(0xF0), byte_id(0x9F), byte_id(0x98), byte_id(0x80)}));
}

TEST(Tokenizer, MergeOnlySymbolsFallBackToBytes) {
  // "xy" is produced by a merge but is not a token: it falls back to bytes, like llama.cpp.
  EXPECT_EQ(small().encode("xyz"), (Ids{id("xyz")}));
  EXPECT_EQ(small().encode("xy"), (Ids{byte_id('x'), byte_id('y')}));
}

TEST(Tokenizer, InvalidUtf8BecomesByteTokensAndRoundTrips) {
  const std::vector<std::string> inputs = {"\xFF",
                                           "a\x80"
                                           "b",
                                           "\xE2\x82",
                                           "\xC0\xAF",
                                           "\xED\xA0\x80",
                                           "ab\xF4\x90\x80\x80"
                                           "c",
                                           std::string("a\0b", 3),
                                           "\xE2\x96",
                                           "\xF0\x9F\x98"};
  for (const std::string& s : inputs) {
    const Ids ids = small().encode(s);
    EXPECT_EQ(small().decode(ids), s) << utf8::sanitize(s);
  }
  EXPECT_EQ(small().encode("\xFF"), (Ids{byte_id(0xFF)}));
  // A truncated sequence does not swallow the following character.
  EXPECT_EQ(small().encode("\xE2\x82"
                           "a"),
            (Ids{byte_id(0xE2), byte_id(0x82), id("a")}));
  // Random bytes: never a crash, always a lossless round trip.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    if (s.find("\xE2\x96\x81") != std::string::npos) continue;  // decodes to a space
    EXPECT_EQ(small().decode(small().encode(s, {.parse_special = true})), s);
  }
}

TEST(Tokenizer, SpecialTokensNeedParseSpecialUnlessUserDefined) {
  const std::string text = "<|turn>a<|channel>b";
  EXPECT_EQ(small().encode(text, {.parse_special = true}), (Ids{4, id("a"), 6, id("b")}));
  // Without parsing, control text is plain text but user-defined tokens are still matched.
  EXPECT_EQ(small().encode(text), (Ids{id("<"), byte_id('|'), byte_id('t'), byte_id('u'),
                                       byte_id('r'), byte_id('n'), id(">"), id("a"), 6, id("b")}));
  // <|tool_response> is user-defined in the data but end-of-generation, hence control.
  EXPECT_TRUE(small().is_control(7));
  EXPECT_EQ(small().encode("<|tool_response>", {.parse_special = true}), (Ids{7}));
  EXPECT_NE(small().encode("<|tool_response>"), (Ids{7}));
}

TEST(Tokenizer, LongerSpecialTokensWinAndTextStaysApart) {
  EXPECT_EQ(small().encode("<|turn>x<|turn>", {.parse_special = true}), (Ids{8, 4}));
  // No merge across a special token: "a" + "b" around it stay separate.
  EXPECT_EQ(small().encode("a<|turn>b", {.parse_special = true}), (Ids{id("a"), 4, id("b")}));
  EXPECT_EQ(small().encode("ab", {.add_bos = true, .parse_special = true}), (Ids{2, id("ab")}));
  EXPECT_EQ(small().encode("", {.add_bos = true}), (Ids{2}));
  EXPECT_TRUE(small().encode("").empty());
}

TEST(Tokenizer, RenderingByTokenKind) {
  const Tokenizer& t = small();
  EXPECT_EQ(t.token_piece(4, true), "<|turn>");
  EXPECT_EQ(t.token_piece(4, false), "");
  EXPECT_EQ(t.token_piece(7, false), "");            // end of generation: control
  EXPECT_EQ(t.token_piece(6, false), "<|channel>");  // user-defined always renders
  EXPECT_EQ(t.token_piece(9, true), "");             // unused renders as nothing
  EXPECT_EQ(t.token_piece(id("\xE2\x96\x81"
                             "a")),
            " a");
  EXPECT_EQ(t.token_piece(byte_id(0x41)), "A");
  EXPECT_EQ(t.decode(Ids{2, id("ab"), 4, byte_id(0xC3), byte_id(0xA9)}, true),
            "<bos>ab<|turn>\xC3\xA9");
  EXPECT_EQ(t.decode(Ids{2, id("ab"), 4, 6}, false), "ab<|channel>");
  EXPECT_THROW(t.token_piece(t.vocab_size()), Error);
  EXPECT_THROW(t.token_piece(-1), Error);
}

TEST(Tokenizer, LookupHelpers) {
  const Tokenizer& t = small();
  EXPECT_EQ(t.find_token("<turn|>"), 5);
  EXPECT_EQ(t.find_token("nope"), -1);
  EXPECT_EQ(t.token_type(6), TokenType::kUserDefined);
  EXPECT_EQ(t.token_type(kByte0), TokenType::kByte);
  EXPECT_TRUE(t.is_control(0));
  EXPECT_FALSE(t.is_control(id("a")));
  EXPECT_EQ(t.eog_ids(), (Ids{1, 5, 7}));  // <eos>, <turn|>, <|tool_response>
  EXPECT_TRUE(t.is_eog(5));
  EXPECT_FALSE(t.is_eog(4));
  EXPECT_THROW(t.token_type(100000), Error);
  EXPECT_EQ(t.chat_template(), "{{ messages }}");
}

TEST(Tokenizer, DuplicateTextsResolveToHighestId) {
  TokenizerData d = small_data();
  d.tokens.push_back("a");
  d.types.push_back(TokenType::kNormal);
  const Tokenizer t = Tokenizer::from_data(std::move(d));
  const int32_t last = t.vocab_size() - 1;
  EXPECT_EQ(t.find_token("a"), last);
  EXPECT_EQ(t.encode("a"), (Ids{last}));
  EXPECT_EQ(t.encode("ab"), (Ids{t.find_token("ab")}));  // merges still apply to that id
}

TEST(Tokenizer, ValidationErrors) {
  {
    TokenizerData d = small_data();
    d.types.pop_back();
    EXPECT_THROW(Tokenizer::from_data(std::move(d)), Error);
  }
  {
    TokenizerData d = small_data();
    d.tokens[kByte0] = "<0xZZ>";
    try {
      Tokenizer::from_data(std::move(d), "vocab.gguf");
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("vocab.gguf"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("byte token 10"), std::string::npos) << e.what();
    }
  }
  {
    TokenizerData d = small_data();
    d.merges.push_back("nospace");
    EXPECT_THROW(Tokenizer::from_data(std::move(d)), Error);
  }
  {
    TokenizerData d = small_data();
    d.bos_id = 100000;
    EXPECT_THROW(Tokenizer::from_data(std::move(d)), Error);
  }
  {
    TokenizerData d = small_data();
    d.bos_id = -1;
    const Tokenizer t = Tokenizer::from_data(std::move(d));
    EXPECT_THROW(t.encode("a", {.add_bos = true}), Error);
  }
  EXPECT_THROW(Tokenizer::from_data(TokenizerData{}), Error);
}

TEST(Tokenizer, DefaultTypesMarkByteTokens) {
  TokenizerData d;
  d.tokens = {"a", "<0x61>", "b"};
  const Tokenizer t = Tokenizer::from_data(std::move(d));
  EXPECT_EQ(t.token_type(0), TokenType::kNormal);
  EXPECT_EQ(t.token_type(1), TokenType::kByte);
  EXPECT_EQ(t.encode("ab"), (Ids{0, 2}));
  // "c" has neither a token nor a byte token, and there is no <unk>: it is dropped (llama.cpp).
  EXPECT_EQ(t.encode("acb"), (Ids{0, 2}));
  EXPECT_EQ(t.token_piece(1), "a");
}

// ---------------------------------------------------------------------------------------------
// StreamDecoder

TEST(StreamDecoder, HoldsSplitCharactersUntilComplete) {
  const Tokenizer& t = small();
  StreamDecoder s(t, false);
  // U+1F600 as four byte tokens.
  EXPECT_EQ(s.push(byte_id(0xF0)), "");
  EXPECT_EQ(s.push(byte_id(0x9F)), "");
  EXPECT_EQ(s.push(byte_id(0x98)), "");
  EXPECT_EQ(s.pending_bytes(), 3u);
  EXPECT_EQ(s.push(byte_id(0x80)), "\xF0\x9F\x98\x80");
  EXPECT_EQ(s.pending_bytes(), 0u);
  EXPECT_EQ(s.push(id("ab")), "ab");
  EXPECT_EQ(s.push(4), "");  // control, not rendered
  EXPECT_EQ(s.push(6), "<|channel>");
  EXPECT_EQ(s.flush(), "");
}

TEST(StreamDecoder, InvalidSequencesBecomeReplacementCharacters) {
  const Tokenizer& t = small();
  const std::string fffd = "\xEF\xBF\xBD";
  StreamDecoder s(t, true);
  EXPECT_EQ(s.push(byte_id(0xFF)), fffd);  // never valid: replaced at once
  EXPECT_EQ(s.push(byte_id(0xE2)), "");
  EXPECT_EQ(s.push(byte_id(0x82)), "");
  // "a" proves E2 82 ill-formed: one U+FFFD for the maximal subpart, then "a".
  EXPECT_EQ(s.push(id("a")), fffd + "a");
  EXPECT_EQ(s.push(byte_id(0xF0)), "");
  EXPECT_EQ(s.flush(), fffd);  // unfinished at the end
  EXPECT_EQ(s.pending_bytes(), 0u);
  // A stray continuation byte after a complete character.
  EXPECT_EQ(s.push(byte_id(0xC3)), "");
  EXPECT_EQ(s.push(byte_id(0xA9)), "\xC3\xA9");
  EXPECT_EQ(s.push(byte_id(0xA9)), fffd);
  EXPECT_THROW(s.push(-5), Error);
}

TEST(StreamDecoder, EqualsSanitizedDecodeOnRandomIds) {
  const Tokenizer& t = small();
  std::mt19937 rng(11);
  for (int trial = 0; trial < 300; ++trial) {
    Ids ids(rng() % 12);
    for (int32_t& i : ids) i = static_cast<int32_t>(rng() % uint32_t(t.vocab_size()));
    StreamDecoder s(t, trial % 2 == 0);
    std::string out;
    for (int32_t i : ids) out += s.push(i);
    out += s.flush();
    EXPECT_EQ(out, utf8::sanitize(t.decode(ids, trial % 2 == 0)));
    EXPECT_TRUE(utf8::is_valid(out));
  }
}

TEST(Utf8, ClassifiesSequences) {
  using utf8::SeqStatus;
  const auto check = [](std::string_view s, SeqStatus status, int len) {
    const utf8::SeqInfo info = utf8::next_sequence(s);
    EXPECT_EQ(info.status, status) << utf8::sanitize(s);
    EXPECT_EQ(info.len, len) << utf8::sanitize(s);
  };
  check("a", SeqStatus::kValid, 1);
  check("\xC3\xA9", SeqStatus::kValid, 2);
  check("\xF4\x8F\xBF\xBF", SeqStatus::kValid, 4);  // U+10FFFF
  check("\xC3", SeqStatus::kTruncated, 1);
  check("\xF0\x9F\x98", SeqStatus::kTruncated, 3);
  check("\xC0\x80", SeqStatus::kInvalid, 1);          // overlong
  check("\xE0\x80\x80", SeqStatus::kInvalid, 1);      // overlong
  check("\xED\xA0\x80", SeqStatus::kInvalid, 1);      // surrogate
  check("\xF4\x90\x80\x80", SeqStatus::kInvalid, 1);  // above U+10FFFF
  check(
      "\xE2\x82"
      "a",
      SeqStatus::kInvalid, 2);
  check("\x80", SeqStatus::kInvalid, 1);
  EXPECT_EQ(utf8::next_sequence("\xE2\x82\xAC").cp, 0x20ACu);
  EXPECT_EQ(utf8::sanitize("a\xE2\x82"
                           "b\xFF"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD");
  std::string s;
  utf8::append_codepoint(0x1F600, s);
  EXPECT_EQ(s, "\xF0\x9F\x98\x80");
}

// ---------------------------------------------------------------------------------------------
// Files

class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("ug_tok_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
             "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void write_vocab_gguf(const std::string& path, const TokenizerData& d, const std::string& model) {
  gguf::Writer w;
  w.set_string("general.architecture", "gemma4");
  w.set_string("tokenizer.ggml.model", model);
  w.set_string_array("tokenizer.ggml.tokens", d.tokens);
  std::vector<int32_t> types;
  for (TokenType t : d.types) types.push_back(static_cast<int32_t>(t));
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_f32_array("tokenizer.ggml.scores", std::vector<float>(d.tokens.size(), -1000.0f));
  w.set_string_array("tokenizer.ggml.merges", d.merges);
  w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(d.bos_id));
  w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(d.eos_id));
  w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(d.unk_id));
  w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(d.pad_id));
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_string("tokenizer.chat_template", d.chat_template);
  w.set_i32_array("tokenizer.ggml.suppress_tokens", {5});
  w.write(path);
}

const std::vector<std::string> kSamples = {"abc abab aaa",
                                           "a\n\nb\n\n\nc",
                                           "<|turn>a<|channel>b<turn|>",
                                           "xyz xy \xC3\xA9\xF0\x9F\x98\x80",
                                           "\xFF\xE2\x82 a",
                                           ""};

void expect_same_encoding(const Tokenizer& a, const Tokenizer& b) {
  for (const std::string& s : kSamples) {
    EXPECT_EQ(a.encode(s), b.encode(s)) << s;
    EXPECT_EQ(a.encode(s, {.parse_special = true}), b.encode(s, {.parse_special = true})) << s;
  }
}

TEST(TokenizerFiles, GgufRoundTrip) {
  TempDir dir;
  const TokenizerData d = small_data();
  write_vocab_gguf(dir.file("vocab.gguf"), d, "gemma4");
  auto file = gguf::File::open(dir.file("vocab.gguf"));
  const Tokenizer t = Tokenizer::from_gguf(*file);
  EXPECT_EQ(t.vocab_size(), small().vocab_size());
  EXPECT_EQ(t.data().merges, d.merges);
  EXPECT_EQ(t.data().scores.size(), d.tokens.size());
  EXPECT_EQ(t.data().suppress_tokens, (Ids{5}));
  EXPECT_EQ(t.chat_template(), d.chat_template);
  EXPECT_EQ(t.bos_id(), 2);
  expect_same_encoding(t, small());
}

TEST(TokenizerFiles, GgufRejectsOtherTokenizerModels) {
  TempDir dir;
  write_vocab_gguf(dir.file("llama.gguf"), small_data(), "llama");
  auto file = gguf::File::open(dir.file("llama.gguf"));
  try {
    Tokenizer::from_gguf(*file);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'llama'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tokenizer.ggml.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("llama.gguf"), std::string::npos) << msg;
  }
}

TEST(TokenizerFiles, GgufRejectsMismatchedTypes) {
  TempDir dir;
  TokenizerData d = small_data();
  d.types.pop_back();
  gguf::Writer w;
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string_array("tokenizer.ggml.tokens", d.tokens);
  std::vector<int32_t> types;
  for (TokenType t : d.types) types.push_back(static_cast<int32_t>(t));
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", d.merges);
  w.write(dir.file("bad.gguf"));
  auto file = gguf::File::open(dir.file("bad.gguf"));
  EXPECT_THROW(Tokenizer::from_gguf(*file), Error);
}

// tokenizer.json in the Hugging Face layout, with both merge spellings.
nlohmann::json hf_tokenizer_json(const TokenizerData& d, bool pair_merges) {
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    vocab[d.tokens[i]] = i;
    const TokenType t = d.types[i];
    if (t == TokenType::kControl || t == TokenType::kUserDefined) {
      added.push_back({{"id", i},
                       {"content", d.tokens[i]},
                       {"special", t == TokenType::kControl},
                       {"normalized", false}});
    }
  }
  nlohmann::json merges = nlohmann::json::array();
  for (const std::string& m : d.merges) {
    const size_t sep = m.find(' ', 1);
    if (pair_merges) {
      merges.push_back({m.substr(0, sep), m.substr(sep + 1)});
    } else {
      merges.push_back(m);
    }
  }
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}},
          {"model",
           {{"type", "BPE"},
            {"unk_token", "<unk>"},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", merges}}}};
}

TEST(TokenizerFiles, HuggingFaceJsonRoundTrip) {
  TokenizerData d = small_data();
  // HF has no "unused" kind; make that token normal so both sides agree.
  d.types[9] = TokenType::kNormal;
  const Tokenizer reference = Tokenizer::from_data(d);
  for (bool pair_merges : {false, true}) {
    TempDir dir;
    write_file(dir.file("tokenizer.json"), hf_tokenizer_json(d, pair_merges).dump());
    const nlohmann::json config = {{"bos_token", "<bos>"},
                                   {"eos_token", {{"content", "<eos>"}}},
                                   {"pad_token", "<pad>"},
                                   {"add_bos_token", false},
                                   {"chat_template", "T{{ x }}"}};
    write_file(dir.file("tokenizer_config.json"), config.dump());
    const Tokenizer t = Tokenizer::from_hf_dir(dir.file(""));
    EXPECT_EQ(t.vocab_size(), reference.vocab_size());
    EXPECT_EQ(t.data().tokens, reference.data().tokens);
    EXPECT_EQ(t.data().types, reference.data().types);
    EXPECT_EQ(t.data().merges, reference.data().merges);
    EXPECT_EQ(t.bos_id(), 2);
    EXPECT_EQ(t.eos_id(), 1);
    EXPECT_EQ(t.unk_id(), 3);
    EXPECT_EQ(t.pad_id(), 0);
    EXPECT_FALSE(t.add_bos_default());
    EXPECT_EQ(t.chat_template(), "T{{ x }}");
    EXPECT_EQ(t.eog_ids(), reference.eog_ids());
    expect_same_encoding(t, reference);
  }
}

TEST(TokenizerFiles, HuggingFaceDirWithoutConfigUsesGemmaNamesAndJinjaFile) {
  TokenizerData d = small_data();
  d.types[9] = TokenType::kNormal;
  TempDir dir;
  write_file(dir.file("tokenizer.json"), hf_tokenizer_json(d, false).dump());
  write_file(dir.file("chat_template.jinja"), "J{{ y }}");
  const Tokenizer t = Tokenizer::from_hf_dir(dir.file(""));
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.eos_id(), 1);
  EXPECT_TRUE(t.add_bos_default());
  EXPECT_EQ(t.chat_template(), "J{{ y }}");
  EXPECT_EQ(t.encode("<|turn>", {.parse_special = true}), (Ids{4}));
}

TEST(TokenizerFiles, HuggingFaceErrorsNameTheFile) {
  TempDir dir;
  const auto expect_error = [&](const std::string& text, const std::string& needle) {
    write_file(dir.file("tokenizer.json"), text);
    try {
      Tokenizer::from_hf_files(dir.file("tokenizer.json"));
      FAIL() << "expected an error for " << text;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  expect_error("{not json", "invalid JSON");
  expect_error(R"({"model": {"type": "Unigram", "vocab": []}})", "Unigram");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 5}, "merges": []}})",
               "out of range");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}})",
               "two different texts");
  expect_error(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [7]}})", "merge 0");
  EXPECT_THROW(Tokenizer::from_hf_files(dir.file("missing.json")), Error);
}

}  // namespace
}  // namespace ug
