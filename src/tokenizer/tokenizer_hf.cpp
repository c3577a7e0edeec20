// Hugging Face tokenizer.json / tokenizer_config.json loading.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ug {

namespace {

using nlohmann::json;

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A special-token entry of tokenizer_config.json: a string, {"content": ...} or null.
std::optional<std::string> token_name(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return std::nullopt;
}

constexpr std::string_view kGemma4VisibleTokens[] = {
    "<|channel>",       "<channel|>",       "<|tool_call>", "<tool_call|>",
    "<|tool_response>", "<tool_response|>", "<|\"|>"};

// Highest id with that text (duplicates resolve like the tokenizer's own lookup), or -1.
int32_t last_index_of(const std::vector<std::string>& tokens, std::string_view text) {
  for (size_t i = tokens.size(); i-- > 0;) {
    if (tokens[i] == text) return int32_t(i);
  }
  return -1;
}

struct AddedToken {
  int64_t id;
  std::string content;
  bool special;
};

}  // namespace

Tokenizer Tokenizer::from_hf_files(const std::string& tokenizer_json_path,
                                   const std::string& tokenizer_config_path) {
  const std::string& path = tokenizer_json_path;
  const json root = read_json(path);
  const auto fail = [&](const std::string& where, const std::string& problem) {
    throw Error(path + ": " + where + ": " + problem);
  };
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    fail("model", "missing");
  }
  const json& model = root["model"];
  const std::string type = model.value("type", std::string());
  if (type != "BPE") fail("model.type", "'" + type + "' is not supported (expected 'BPE')");
  if (!model.contains("vocab") || !model["vocab"].is_object()) fail("model.vocab", "missing");
  const json& vocab = model["vocab"];

  std::vector<AddedToken> added;
  const auto collect_added = [&](const json& entry, int64_t id, const std::string& where) {
    if (!entry.is_object() || !entry.contains("content") || !entry["content"].is_string()) {
      throw Error(where + ": entry for id " + std::to_string(id) + " has no content");
    }
    added.push_back({id, entry["content"].get<std::string>(), entry.value("special", false)});
  };
  if (root.contains("added_tokens")) {
    const json& list = root["added_tokens"];
    if (!list.is_array()) fail("added_tokens", "not an array");
    for (const json& e : list) {
      if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer()) {
        fail("added_tokens", "entry without an integer id");
      }
      collect_added(e, e["id"].get<int64_t>(), path + ": added_tokens");
    }
  }

  TokenizerData d;
  std::string template_text;
  std::optional<std::string> bos_name, eos_name, unk_name, pad_name;
  if (!tokenizer_config_path.empty()) {
    const json cfg = read_json(tokenizer_config_path);
    if (!cfg.is_object()) throw Error(tokenizer_config_path + ": not a JSON object");
    if (cfg.contains("added_tokens_decoder")) {
      const json& dec = cfg["added_tokens_decoder"];
      if (!dec.is_object()) {
        throw Error(tokenizer_config_path + ": added_tokens_decoder: not an object");
      }
      for (const auto& [key, e] : dec.items()) {
        int64_t id = -1;
        try {
          size_t used = 0;
          id = std::stoll(key, &used);
          if (used != key.size()) id = -1;
        } catch (const std::exception&) {
          id = -1;
        }
        if (id < 0) {
          throw Error(tokenizer_config_path + ": added_tokens_decoder: key '" + key +
                      "' is not a token id");
        }
        collect_added(e, id, tokenizer_config_path + ": added_tokens_decoder");
      }
    }
    if (cfg.contains("bos_token")) bos_name = token_name(cfg["bos_token"]);
    if (cfg.contains("eos_token")) eos_name = token_name(cfg["eos_token"]);
    if (cfg.contains("unk_token")) unk_name = token_name(cfg["unk_token"]);
    if (cfg.contains("pad_token")) pad_name = token_name(cfg["pad_token"]);
    if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
      d.add_bos = cfg["add_bos_token"].get<bool>();
    }
    if (cfg.contains("chat_template")) {
      const json& t = cfg["chat_template"];
      if (t.is_string()) {
        d.chat_template = t.get<std::string>();
      } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
        for (const json& e : t) {
          if (e.is_object() && e.value("name", std::string()) == "default" &&
              e.contains("template") && e["template"].is_string()) {
            d.chat_template = e["template"].get<std::string>();
          }
        }
      }
    }
  }

  // Ids must be dense: 0 .. n-1, each with one text.
  const size_t n_entries = vocab.size() + added.size();
  std::vector<std::optional<std::string>> texts;
  const auto place = [&](int64_t id, const std::string& text, const std::string& where) {
    if (id < 0 || uint64_t(id) >= n_entries) {
      fail(where, "token id " + std::to_string(id) + " out of range for " +
                      std::to_string(n_entries) + " entries");
    }
    if (texts.size() <= size_t(id)) texts.resize(size_t(id) + 1);
    auto& slot = texts[size_t(id)];
    if (slot && *slot != text) {
      fail(where, "token id " + std::to_string(id) + " has two different texts");
    }
    slot = text;
  };
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_integer()) fail("model.vocab", "non-integer id for a token");
    place(id.get<int64_t>(), text, "model.vocab");
  }
  for (const AddedToken& a : added) place(a.id, a.content, "added tokens");
  d.tokens.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    if (!texts[i]) fail("model.vocab", "token id " + std::to_string(i) + " has no text");
    d.tokens.push_back(std::move(*texts[i]));
  }

  d.types.assign(d.tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < d.tokens.size(); ++i) {
    const std::string& t = d.tokens[i];
    if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
        std::isxdigit(static_cast<unsigned char>(t[3])) &&
        std::isxdigit(static_cast<unsigned char>(t[4]))) {
      d.types[i] = TokenType::kByte;
    }
  }
  for (const AddedToken& a : added) {
    d.types[size_t(a.id)] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  // Gemma 4's tool-call, thought and string-delimiter tokens always render (llama.cpp's converter
  // writes them as user-defined so that generated tool calls and thoughts stay visible).
  for (std::string_view name : kGemma4VisibleTokens) {
    const int32_t id = last_index_of(d.tokens, name);
    if (id >= 0 && d.types[size_t(id)] == TokenType::kControl) {
      d.types[size_t(id)] = TokenType::kUserDefined;
    }
  }

  if (model.contains("merges")) {
    const json& merges = model["merges"];
    if (!merges.is_array()) fail("model.merges", "not an array");
    d.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const json& m = merges[i];
      if (m.is_string()) {
        d.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        const std::string left = m[0].get<std::string>();
        const std::string right = m[1].get<std::string>();
        // The GGUF form "left right" cannot carry a space inside the left part.
        if (left.empty() || right.empty() || left.find(' ', 1) != std::string::npos) {
          fail("model.merges", "merge " + std::to_string(i) + " cannot be written as 'left right'");
        }
        d.merges.push_back(left + " " + right);
      } else {
        fail("model.merges", "merge " + std::to_string(i) + " is neither a string nor a pair");
      }
    }
  }

  // Special ids by name; Gemma's names are the defaults when no config names them.
  const auto resolve = [&](const std::optional<std::string>& name, const std::string& fallback,
                           const char* what) -> int32_t {
    const std::string& text = name ? *name : fallback;
    const int32_t id = last_index_of(d.tokens, text);
    if (id >= 0) return id;
    if (name) fail(what, "token '" + text + "' is not in the vocabulary");
    return -1;
  };
  std::string unk_fallback = "<unk>";
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    unk_fallback = model["unk_token"].get<std::string>();
  }
  d.bos_id = resolve(bos_name, "<bos>", "bos_token");
  d.eos_id = resolve(eos_name, "<eos>", "eos_token");
  d.unk_id = resolve(unk_name, unk_fallback, "unk_token");
  d.pad_id = resolve(pad_name, "<pad>", "pad_token");
  return from_data(std::move(d), path);
}

Tokenizer Tokenizer::from_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path base(dir);
  const fs::path config = base / "tokenizer_config.json";
  const bool has_config = fs::exists(config);
  Tokenizer t = from_hf_files((base / "tokenizer.json").string(),
                              has_config ? config.string() : std::string());
  if (t.data_.chat_template.empty()) {
    const fs::path jinja = base / "chat_template.jinja";
    const fs::path json_file = base / "chat_template.json";
    if (fs::exists(jinja)) {
      t.data_.chat_template = read_text(jinja.string());
    } else if (fs::exists(json_file)) {
      const json j = read_json(json_file.string());
      if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string()) {
        t.data_.chat_template = j["chat_template"].get<std::string>();
      }
    }
  }
  return t;
}

}  // namespace ug
