// The Gemma 4 tokenizer against the oracle pack (README-text.md §4): llama.cpp's test vectors,
// 2000 generated strings in both special-token modes, 355 detokenization records, the tiny-a /
// tiny-rv prompts and the rendered chat-template conversations.
#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/gguf.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace ug {
namespace {

using nlohmann::json;

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::vector<json> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

double thread_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

std::vector<int32_t> ids_of(const json& v) {
  return v.get<std::vector<int32_t>>();
}

// A literal U+2581 in the input is a space to the tokenizer, so it decodes as one.
std::string marks_to_spaces(const std::string& s) {
  std::string out;
  for (size_t p = 0; p < s.size();) {
    if (s.compare(p, 3, "\xE2\x96\x81") == 0) {
      out += ' ';
      p += 3;
    } else {
      out += s[p++];
    }
  }
  return out;
}

// Loads (once per path) the tokenizer of a GGUF file under the oracle directory.
const Tokenizer& tokenizer_for(const std::string& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto it = cache.find(path);
  if (it == cache.end()) {
    auto file = gguf::File::open(path);
    it = cache.emplace(path, std::make_unique<Tokenizer>(Tokenizer::from_gguf(*file))).first;
  }
  return *it->second;
}

const Tokenizer& real_vocab(const std::string& oracle) {
  return tokenizer_for(oracle + "/tokenizer/ggml-vocab-gemma4.gguf");
}

TEST(TokenizerOracle, LoadsRealVocabularyQuickly) {
  UG_REQUIRE_ORACLE(oracle);
  const double c0 = thread_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  auto file = gguf::File::open(oracle + "/tokenizer/ggml-vocab-gemma4.gguf");
  const double c1 = thread_cpu_seconds();
  const Tokenizer tok = Tokenizer::from_gguf(*file);
  const double c2 = thread_cpu_seconds();
  const auto t2 = std::chrono::steady_clock::now();
  std::printf(
      "[ measure  ] load 262144 tokens + %zu merges: GGUF parse %.0f ms + tokenizer build %.0f ms "
      "CPU time (%.0f ms wall)\n",
      tok.data().merges.size(), (c1 - c0) * 1e3, (c2 - c1) * 1e3,
      std::chrono::duration<double, std::milli>(t2 - t0).count());

  EXPECT_EQ(tok.vocab_size(), 262144);
  EXPECT_EQ(tok.data().merges.size(), 514906u);
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_TRUE(tok.add_bos_default());
  EXPECT_FALSE(tok.chat_template().empty());
  EXPECT_EQ(tok.find_token("<turn|>"), 106);
  EXPECT_EQ(tok.find_token("<|turn>"), 105);
  EXPECT_EQ(tok.find_token("\n"), 107);
  EXPECT_EQ(tok.find_token("<|image|>"), 258880);
  EXPECT_EQ(tok.find_token("<0xFF>"), 493);
  EXPECT_EQ(tok.find_token("not a token at all"), -1);
  EXPECT_EQ(tok.eog_ids(), (std::vector<int32_t>{1, 50, 106}));
  EXPECT_EQ(tok.data().suppress_tokens, (std::vector<int32_t>{258883, 258882}));
  // <|tool_response> is user-defined in the file but an end-of-generation (control) token.
  EXPECT_EQ(tok.token_type(50), TokenType::kUserDefined);
  EXPECT_TRUE(tok.is_control(50));
  EXPECT_TRUE(tok.is_eog(50));
  EXPECT_TRUE(tok.is_user_defined(100));
  EXPECT_FALSE(tok.is_control(100));
  EXPECT_TRUE(tok.is_byte(238));
  EXPECT_EQ(tok.token_type(212), TokenType::kNormal);  // "</s>" stays a normal token
  EXPECT_FALSE(tok.is_eog(212));
}

TEST(TokenizerOracle, LlamaCppVectors) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const auto rows = read_jsonl(oracle + "/tokenizer/llamacpp_vectors.jsonl");
  ASSERT_EQ(rows.size(), 46u);
  for (const json& r : rows) {
    const std::string text = r["text"];
    EXPECT_EQ(tok.encode(text), ids_of(r["ids"])) << r["id"];
  }
}

TEST(TokenizerOracle, GeneratedBothModes) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const auto rows = read_jsonl(oracle + "/tokenizer/generated.jsonl");
  ASSERT_EQ(rows.size(), 2000u);
  int n_plain_ok = 0, n_special_ok = 0, n_modes_differ = 0;
  for (const json& r : rows) {
    const std::string text = r["text"];
    const auto plain = tok.encode(text);
    const auto special = tok.encode(text, {.parse_special = true});
    n_plain_ok += plain == ids_of(r["ids"]);
    n_special_ok += special == ids_of(r["ids_parse_special"]);
    n_modes_differ += plain != special;
    EXPECT_EQ(plain, ids_of(r["ids"])) << r["id"] << " (" << r["category"] << ") no parsing";
    EXPECT_EQ(special, ids_of(r["ids_parse_special"]))
        << r["id"] << " (" << r["category"] << ") parse_special";
  }
  EXPECT_EQ(n_plain_ok, 2000);
  EXPECT_EQ(n_special_ok, 2000);
  EXPECT_EQ(n_modes_differ, 205);  // README: 205 strings tokenize differently in the two modes
}

TEST(TokenizerOracle, GeneratedWithBos) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const auto rows = read_jsonl(oracle + "/tokenizer/generated.jsonl");
  for (size_t i = 0; i < rows.size(); i += 50) {
    std::vector<int32_t> expected = {2};
    for (int32_t id : ids_of(rows[i]["ids"])) expected.push_back(id);
    EXPECT_EQ(tok.encode(rows[i]["text"].get<std::string>(), {.add_bos = true}), expected)
        << rows[i]["id"];
  }
}

TEST(TokenizerOracle, Detokenize) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const auto rows = read_jsonl(oracle + "/tokenizer/detokenize.jsonl");
  ASSERT_EQ(rows.size(), 355u);
  for (const json& r : rows) {
    const auto ids = ids_of(r["ids"]);
    EXPECT_EQ(to_hex(tok.decode(ids, true)), r["pieces_special_hex"].get<std::string>())
        << r["id"] << " (" << r["kind"] << ") render_special";
    EXPECT_EQ(to_hex(tok.decode(ids, false)), r["pieces_nospecial_hex"].get<std::string>())
        << r["id"] << " (" << r["kind"] << ") no render_special";
    // Streaming yields the same bytes, sanitized to well-formed UTF-8.
    StreamDecoder stream(tok, true);
    std::string streamed;
    for (int32_t id : ids) streamed += stream.push(id);
    streamed += stream.flush();
    EXPECT_EQ(streamed, utf8::sanitize(from_hex(r["pieces_special_hex"]))) << r["id"];
  }
}

TEST(TokenizerOracle, GeneratedRoundTrip) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  for (const json& r : read_jsonl(oracle + "/tokenizer/generated.jsonl")) {
    const std::string expected = marks_to_spaces(r["text"]);
    EXPECT_EQ(tok.decode(ids_of(r["ids_parse_special"]), true), expected) << r["id"];
    EXPECT_EQ(tok.decode(tok.encode(r["text"].get<std::string>()), true), expected) << r["id"];
  }
}

// The real vocabulary written as a Hugging Face tokenizer.json (control tokens as special added
// tokens, user-defined ones as non-special) loads back to the same tokenizer.
TEST(TokenizerOracle, HuggingFaceJsonOfRealVocabulary) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& ref = real_vocab(oracle);
  const TokenizerData& d = ref.data();
  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    vocab[d.tokens[i]] = i;
    if (d.types[i] == TokenType::kControl || d.types[i] == TokenType::kUserDefined) {
      // Gemma 4's HF files mark the tool/thought tokens special too; the loader keeps them
      // visible (user-defined), as llama.cpp's converter does.
      added.push_back({{"id", i}, {"content", d.tokens[i]}, {"special", true}});
    }
  }
  const json tokenizer = {
      {"added_tokens", added},
      {"model",
       {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", d.merges}}}};
  const auto dir = std::filesystem::temp_directory_path() / "ug_tok_oracle_hf";
  std::filesystem::create_directories(dir);
  {
    std::ofstream out(dir / "tokenizer.json", std::ios::binary);
    out << tokenizer.dump();
  }
  const double c0 = thread_cpu_seconds();
  const Tokenizer hf = Tokenizer::from_hf_dir(dir.string());
  const double c1 = thread_cpu_seconds();
  std::filesystem::remove_all(dir);
  std::printf("[ measure  ] tokenizer.json with 262144 tokens loaded in %.0f ms CPU time\n",
              (c1 - c0) * 1e3);
  EXPECT_EQ(hf.data().tokens, d.tokens);
  EXPECT_EQ(hf.data().types, d.types);
  EXPECT_EQ(hf.data().merges, d.merges);
  EXPECT_EQ(hf.bos_id(), 2);
  EXPECT_EQ(hf.eos_id(), 1);
  EXPECT_EQ(hf.unk_id(), 3);
  EXPECT_EQ(hf.pad_id(), 0);
  EXPECT_EQ(hf.eog_ids(), ref.eog_ids());
  const auto rows = read_jsonl(oracle + "/tokenizer/generated.jsonl");
  for (size_t i = 0; i < rows.size(); i += 7) {
    const std::string text = rows[i]["text"];
    EXPECT_EQ(hf.encode(text), ids_of(rows[i]["ids"])) << rows[i]["id"];
    EXPECT_EQ(hf.encode(text, {.parse_special = true}), ids_of(rows[i]["ids_parse_special"]))
        << rows[i]["id"];
  }
}

// BPE straight from its definition (whole lines, string symbols, quadratic search for the
// lowest-ranked leftmost pair): an independent check of the optimized encoder (word split and its
// "> </" exception, per-call memo, ASCII pair table, heap) on inputs the oracle does not cover.
class ReferenceBpe {
 public:
  explicit ReferenceBpe(const TokenizerData& d) : d_(d) {
    for (size_t i = 0; i < d.tokens.size(); ++i) ids_[d.tokens[i]] = int32_t(i);
    for (size_t r = 0; r < d.merges.size(); ++r) ranks_.emplace(d.merges[r], int32_t(r));
  }

  // Plain text only (no special-token texts).
  std::vector<int32_t> encode(const std::string& text) const {
    std::string s;
    for (char c : text) s += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    std::vector<int32_t> out;
    size_t i = 0;
    while (i < s.size()) {
      const bool newline = s[i] == '\n';
      size_t j = i;
      while (j < s.size() && (s[j] == '\n') == newline) ++j;
      const std::string run = s.substr(i, j - i);
      auto it = ids_.find(run);
      if (newline && it != ids_.end()) {
        out.push_back(it->second);
      } else {
        bpe(run, out);
      }
      i = j;
    }
    return out;
  }

 private:
  void bpe(const std::string& run, std::vector<int32_t>& out) const {
    std::vector<std::string> syms;
    for (size_t p = 0; p < run.size();) {
      const utf8::SeqInfo info = utf8::next_sequence(std::string_view(run).substr(p));
      const size_t len = info.status == utf8::SeqStatus::kValid ? size_t(info.len) : 1;
      syms.push_back(run.substr(p, len));
      p += len;
    }
    for (;;) {
      int32_t best_rank = INT32_MAX;
      size_t best = 0;
      for (size_t k = 0; k + 1 < syms.size(); ++k) {
        auto it = ranks_.find(syms[k] + " " + syms[k + 1]);
        if (it != ranks_.end() && it->second < best_rank) {
          best_rank = it->second;
          best = k;
        }
      }
      if (best_rank == INT32_MAX) break;
      syms[best] += syms[best + 1];
      syms.erase(syms.begin() + long(best) + 1);
    }
    for (const std::string& sym : syms) {
      auto it = ids_.find(sym);
      if (it != ids_.end()) {
        out.push_back(it->second);
        continue;
      }
      for (unsigned char b : sym) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        out.push_back(ids_.at(name));
      }
    }
  }

  const TokenizerData& d_;
  std::unordered_map<std::string, int32_t> ids_;
  std::unordered_map<std::string, int32_t> ranks_;
};

TEST(TokenizerOracle, MatchesReferenceBpeOnRandomText) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const ReferenceBpe ref(tok.data());
  const std::vector<std::string> pieces = {"<",
                                           ">",
                                           "</",
                                           "> </",
                                           ">\xE2\x96\x81</",
                                           " ",
                                           "  ",
                                           "   ",
                                           "\n",
                                           "\n\n",
                                           "\t",
                                           "a",
                                           "the",
                                           "div",
                                           "span",
                                           "\xC3\xA9",
                                           "\xE4\xB8\xAD\xE6\x96\x87",
                                           "\xF0\x9F\x98\x80",
                                           "\xFF",
                                           "\xE2\x82",
                                           "1234",
                                           "'s",
                                           "\xE2\x96\x81",
                                           ">>",
                                           "> ",
                                           " >",
                                           "=\"x\"",
                                           "()",
                                           "{",
                                           "}",
                                           ";",
                                           "->"};
  std::mt19937 rng(99);
  std::string big;  // long enough for the per-call memo (kicks in at 4 KiB)
  for (int trial = 0; trial < 400; ++trial) {
    std::string s;
    const size_t n = 1 + rng() % 40;
    for (size_t k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    EXPECT_EQ(tok.encode(s), ref.encode(s)) << utf8::sanitize(s);
    big += s;
    big += '\n';
  }
  ASSERT_GT(big.size(), size_t(4096));
  EXPECT_TRUE(tok.encode(big) == ref.encode(big));
  // The one Gemma 4 merge across a word boundary, ">" + "▁</", must still happen.
  const auto ids = tok.encode("<a> </a>");
  EXPECT_EQ(ids, ref.encode("<a> </a>"));
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok.find_token(">\xE2\x96\x81</")), ids.end());
}

// Text prompts of the logits oracle: plain = [BOS] + text without special parsing, chat = the
// rendered template with special parsing (it starts with a literal "<bos>").
void check_text_cases(const std::string& oracle, const std::string& file, size_t expected_rows) {
  const auto rows = read_jsonl(oracle + "/text/" + file);
  ASSERT_EQ(rows.size(), expected_rows);
  for (const json& r : rows) {
    const Tokenizer& tok = tokenizer_for(oracle + "/" + r["model"].get<std::string>());
    EXPECT_EQ(tok.vocab_size(), r["n_vocab"].get<int32_t>());
    const std::string text = r["text"];
    const bool chat = r["kind"] == "chat";
    const auto ids =
        chat ? tok.encode(text, {.parse_special = true}) : tok.encode(text, {.add_bos = true});
    EXPECT_EQ(ids, ids_of(r["ids"])) << r["variant"] << " " << r["case"];
    EXPECT_EQ(ids.size(), r["n_tokens"].get<size_t>());
  }
}

TEST(TokenizerOracle, TinyASmallVocabCases) {
  UG_REQUIRE_ORACLE(oracle);
  check_text_cases(oracle, "cases-tiny-a.jsonl", 49);
  const Tokenizer& tok = tokenizer_for(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  EXPECT_EQ(tok.vocab_size(), 4198);
  EXPECT_EQ(tok.find_token("<|image>"), 4191);
  EXPECT_EQ(tok.eog_ids(), (std::vector<int32_t>{1, 50, 106}));
}

TEST(TokenizerOracle, TinyRvRealVocabCases) {
  UG_REQUIRE_ORACLE(oracle);
  check_text_cases(oracle, "cases-tiny-rv.jsonl", 4);
}

TEST(TokenizerOracle, ChatTemplateRenderings) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  const auto rows = read_jsonl(oracle + "/template/conversations.jsonl");
  ASSERT_EQ(rows.size(), 40u);
  for (const json& r : rows) {
    const std::string rendered = r["rendered"];
    EXPECT_EQ(tok.encode(rendered, {.parse_special = true}), ids_of(r["ids"])) << r["id"];
  }
}

// Not a timing assertion: prints throughput on 4 MB of mixed text, lines of words drawn (seeded)
// from the 2000 oracle strings (all scripts, emoji, code, digits, special-token texts).
TEST(TokenizerOracle, Throughput) {
  UG_REQUIRE_ORACLE(oracle);
  const Tokenizer& tok = real_vocab(oracle);
  std::vector<std::string> words;
  for (const json& r : read_jsonl(oracle + "/tokenizer/generated.jsonl")) {
    const std::string text = r["text"];
    size_t start = 0;
    for (size_t i = 0; i <= text.size(); ++i) {
      if (i == text.size() || text[i] == ' ' || text[i] == '\n') {
        if (i > start) words.push_back(text.substr(start, i - start));
        start = i + 1;
      }
    }
  }
  std::mt19937 rng(1234);
  std::string text;
  while (text.size() < (size_t(4) << 20)) {
    const size_t n_words = 4 + rng() % 16;
    for (size_t w = 0; w < n_words; ++w) {
      if (w > 0) text += ' ';
      text += words[rng() % words.size()];
    }
    text += '\n';
  }
  const double c0 = thread_cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, {.parse_special = true});
  const auto t1 = std::chrono::steady_clock::now();
  const double c1 = thread_cpu_seconds();
  const std::string back = tok.decode(ids, true);
  const double c2 = thread_cpu_seconds();
  const double mb = double(text.size()) / 1e6;
  std::printf(
      "[ measure  ] encode %.2f MB (%zu distinct words) -> %zu tokens: %.1f MB/s CPU time, "
      "%.1f MB/s wall; decode %.1f MB/s CPU time\n",
      mb, words.size(), ids.size(), mb / (c1 - c0),
      mb / std::chrono::duration<double>(t1 - t0).count(), mb / (c2 - c1));
  EXPECT_GT(ids.size(), text.size() / 8);
  EXPECT_TRUE(back == marks_to_spaces(text));  // no 4 MB diff in the log when it fails
}

}  // namespace
}  // namespace ug
