#include "runtime/oracle_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "format/gguf.h"
#include "kernels/thread_pool.h"
#include "model/gemma4/decoder.h"
#include "runtime/generate.h"
#include "runtime/oracle_check_mm.h"
#include "runtime/oracle_check_mtp.h"
#include "runtime/oracle_files.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ug {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Tier B limits against llama.cpp, by weight format (README-text.md §3.6).
std::pair<double, double> llamacpp_tolerance(const std::string& variant) {
  if (variant == "f32") return {1e-2, 2e-3};
  if (variant == "f16") return {4e-2, 4e-3};
  if (variant == "bf16") return {0.15, 0.02};
  return {0.75, 0.1};
}
constexpr double kRefMax = 1e-3;  // tier A: exact float32 reference
constexpr double kRefMean = 1e-4;
constexpr double kMarginTie = 2e-3;  // argmax is only meaningful above this top-2 gap

int argmax(const float* x, size_t n) {
  return int(std::max_element(x, x + n) - x);
}

fs::path oracle_root_of(const fs::path& file) {
  for (fs::path p = file.parent_path(); !p.empty(); p = p.parent_path()) {
    if (fs::exists(p / "models")) return p;
    if (p == p.parent_path()) break;
  }
  return file.parent_path().parent_path();
}

class TextCaseRunner {
 public:
  TextCaseRunner(const OracleOptions& options, std::ostream& out)
      : options_(options),
        out_(out),
        pool_(options.n_threads > 0 ? options.n_threads
                                    : int(std::max(1u, std::thread::hardware_concurrency()))) {}

  void run_file(const fs::path& file, OracleSummary* summary) {
    std::ifstream in(file);
    std::string line;
    int line_no = 0;
    const fs::path root = oracle_root_of(file);
    while (std::getline(in, line)) {
      ++line_no;
      if (line.empty()) continue;
      json rec = json::parse(line, nullptr, false);
      if (rec.is_discarded()) {
        throw Error(file.string() + ":" + std::to_string(line_no) + ": not valid JSON");
      }
      run_case(rec, root, summary);
    }
  }

 private:
  // Weight format of a GGUF as the oracle names its variants (from general.file_type).
  static std::string variant_of(const gemma4::Model& m) {
    if (!m.gguf) {  // an HF folder: named after its weight dtype
      return m.token_embd.type == TensorType::F32    ? "f32"
             : m.token_embd.type == TensorType::BF16 ? "bf16"
                                                     : "f16";
    }
    switch (m.gguf->opt_int("general.file_type").value_or(-1)) {
      case 0:
        return "f32";
      case 1:
        return "f16";
      case 2:
        return "q4_0";
      case 7:
        return "q8_0";
      case 15:
        return "q4_k_m";
      case 18:
        return "q6_k";
      case 32:
        return "bf16";
      default:
        return "unknown";
    }
  }

  gemma4::Model& model_for(const std::string& path) {
    auto it = models_.find(path);
    if (it != models_.end()) return *it->second;
    auto model = gemma4::load_model(path);
    gemma4::Model& ref = *model;
    models_.emplace(path, std::move(model));
    return ref;
  }

  void run_case(const json& rec, const fs::path& root, OracleSummary* summary) {
    const std::string name =
        rec.value("set", "?") + "/" + rec.value("variant", "?") + "/" + rec.value("case", "?");
    const std::string model_path = options_.model_override.empty()
                                       ? (root / rec.at("model").get<std::string>()).string()
                                       : options_.model_override;
    const std::vector<int32_t> ids = rec.at("ids").get<std::vector<int32_t>>();
    const size_t V = rec.at("n_vocab").get<size_t>();
    const size_t n = ids.size();
    const json& files = rec.at("files");
    const std::string variant = rec.value("variant", "f32");

    gemma4::Model& model = model_for(model_path);
    // A substituted model stands in only for the cases of its own weight format and vocabulary:
    // the references of the other variants were computed on other weights.
    if (!options_.model_override.empty()) {
      const std::string mine = variant_of(model);
      if (mine != variant || size_t(model.config.n_vocab) != V) {
        out_ << "SKIP " << name << ": --model is " << mine << " with vocabulary "
             << model.config.n_vocab << ", the case is " << variant << " with " << V << "\n";
        ++summary->skipped;
        return;
      }
    }
    if (size_t(model.config.n_vocab) != V) {
      throw Error(model_path + ": vocabulary " + std::to_string(model.config.n_vocab) +
                  " does not match case " + name + " (" + std::to_string(V) + ")");
    }
    const json& greedy = rec.value("greedy", json::object());
    const size_t n_gen = greedy.contains("ref_ids") ? greedy["ref_ids"].size() : 0;
    gemma4::DecoderOptions dopt;
    dopt.n_ctx = int(n + n_gen + 8);
    dopt.n_ubatch = 512;
    dopt.cache_type = options_.cache_type;
    dopt.global_cache_type = options_.global_cache_type;
    gemma4::Decoder decoder(model, dopt, pool_);
    gemma4::Output all;
    decoder.eval_tokens(ids, gemma4::Outputs::kAll, &all);
    const float* last = all.logits.data() + (n - 1) * V;

    bool ok = true;
    std::string detail;
    char buf[256];
    // Tier A: the exact float32 reference on this file's dequantized weights.
    if (files.contains("ref_last")) {
      const auto ref = read_reference_f32(root / files["ref_last"].get<std::string>(), V);
      const OracleDiff d = oracle_diff(last, ref.data(), V);
      const bool pass = d.max_abs <= kRefMax && d.mean_abs <= kRefMean;
      ok = ok && pass;
      std::snprintf(buf, sizeof buf, " ref max %.2e mean %.2e (<= %.2g/%.2g)%s", d.max_abs,
                    d.mean_abs, kRefMax, kRefMean, pass ? "" : " FAIL");
      detail += buf;
    }
    // Tier B: llama.cpp (last position, and every position where available).
    const auto [lc_max, lc_mean] = llamacpp_tolerance(variant);
    OracleDiff lc_worst;
    if (files.contains("lc_last")) {
      const auto lc = read_reference_f32(root / files["lc_last"].get<std::string>(), V);
      lc_worst = oracle_diff(last, lc.data(), V);
    }
    if (files.contains("lc_all")) {
      const auto lc = read_reference_f32(root / files["lc_all"].get<std::string>(), V * n);
      const OracleDiff d = oracle_diff(all.logits.data(), lc.data(), V * n);
      lc_worst.max_abs = std::max(lc_worst.max_abs, d.max_abs);
      lc_worst.mean_abs = std::max(lc_worst.mean_abs, d.mean_abs);
    }
    if (files.contains("lc_last") || files.contains("lc_all")) {
      const bool pass = lc_worst.max_abs <= lc_max && lc_worst.mean_abs <= lc_mean;
      ok = ok && pass;
      std::snprintf(buf, sizeof buf, " | llama.cpp max %.2e mean %.2e (<= %.2g/%.2g)%s",
                    lc_worst.max_abs, lc_worst.mean_abs, lc_max, lc_mean, pass ? "" : " FAIL");
      detail += buf;
    }
    // Prompt-position argmax wherever the reference's top-2 gap is not a near-tie.
    if (rec.contains("ref_argmax") && rec.contains("ref_top2_margin")) {
      const auto ref_arg = rec["ref_argmax"].get<std::vector<int>>();
      const auto margin = rec["ref_top2_margin"].get<std::vector<double>>();
      int checked = 0, agree = 0;
      for (size_t i = 0; i < n && i < ref_arg.size(); ++i) {
        if (margin[i] < kMarginTie) continue;
        ++checked;
        agree += argmax(all.logits.data() + i * V, V) == ref_arg[i];
      }
      ok = ok && agree == checked;
      std::snprintf(buf, sizeof buf, " | argmax %d/%d", agree, checked);
      detail += buf;
    }
    // Greedy continuation through the single-token decode path.
    if (n_gen > 0) {
      const auto ref_ids = greedy["ref_ids"].get<std::vector<int>>();
      const auto margins = greedy.value("ref_top2_margin", std::vector<double>());
      GreedyOptions g;
      g.max_tokens = int(n_gen);
      g.suppress = model.suppress_tokens;
      g.stop = model.eog_tokens;
      // The decoder already holds the prompt; generation continues from its last logits.
      const std::vector<int32_t> mine = greedy_continue(decoder, last, g);
      size_t must = 0;
      while (must < ref_ids.size() && (must >= margins.size() || margins[must] >= kMarginTie)) {
        ++must;
      }
      size_t same = 0;
      while (same < mine.size() && same < ref_ids.size() && mine[same] == ref_ids[same]) ++same;
      const bool pass = same >= must;
      ok = ok && pass;
      std::snprintf(buf, sizeof buf, " | greedy %zu/%zu (required %zu)%s", same, ref_ids.size(),
                    must, pass ? "" : " FAIL");
      detail += buf;
    }
    out_ << (ok ? "PASS " : "FAIL ") << name << detail << "\n";
    out_.flush();
    (ok ? summary->passed : summary->failed)++;
  }

  OracleOptions options_;
  std::ostream& out_;
  ThreadPool pool_;
  std::map<std::string, std::unique_ptr<gemma4::Model>> models_;
};

std::string to_hex(const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) {
    h += kHex[c >> 4];
    h += kHex[c & 15];
  }
  return h;
}

template <typename F>
void for_each_record(const fs::path& file, F&& f) {
  std::ifstream in(file);
  if (!in) throw Error(file.string() + ": cannot open");
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) continue;
    json rec = json::parse(line, nullptr, false);
    if (rec.is_discarded()) {
      throw Error(file.string() + ":" + std::to_string(line_no) + ": not valid JSON");
    }
    f(rec);
  }
}

// Tokenizer cases (README-text.md §4): exact ids both ways, exact detokenized bytes. One line per
// failing record, one summary line per file.
void run_tokenizer_file(const fs::path& file, std::ostream& out, OracleSummary* summary) {
  const fs::path vocab_path = file.parent_path() / "ggml-vocab-gemma4.gguf";
  auto vocab = gguf::File::open(vocab_path.string());
  const Tokenizer tok = Tokenizer::from_gguf(*vocab);
  const std::string label = "tokenizer/" + file.filename().string();
  int passed = 0, failed = 0;
  for_each_record(file, [&](const json& rec) {
    const std::string id = rec.value("id", "?");
    std::string problem;
    if (rec.contains("text")) {
      const std::string text = rec["text"].get<std::string>();
      EncodeOptions plain;
      if (rec.contains("ids") &&
          tok.encode(text, plain) != rec["ids"].get<std::vector<int32_t>>()) {
        problem += " ids differ";
      }
      EncodeOptions special;
      special.parse_special = true;
      if (rec.contains("ids_parse_special") &&
          tok.encode(text, special) != rec["ids_parse_special"].get<std::vector<int32_t>>()) {
        problem += " ids_parse_special differ";
      }
    } else if (rec.contains("ids")) {
      const auto ids = rec["ids"].get<std::vector<int32_t>>();
      if (rec.contains("pieces_special_hex") &&
          to_hex(tok.decode(ids, true)) != rec["pieces_special_hex"].get<std::string>()) {
        problem += " pieces_special differ";
      }
      if (rec.contains("pieces_nospecial_hex") &&
          to_hex(tok.decode(ids, false)) != rec["pieces_nospecial_hex"].get<std::string>()) {
        problem += " pieces_nospecial differ";
      }
    }
    if (problem.empty()) {
      ++passed;
    } else {
      ++failed;
      out << "FAIL " << label << " " << id << ":" << problem << "\n";
    }
  });
  out << (failed ? "FAIL " : "PASS ") << label << ": " << passed << "/" << (passed + failed)
      << " records exact\n";
  summary->passed += passed;
  summary->failed += failed;
}

// Chat-template cases (README-text.md §5): byte-identical rendering, and the same token ids.
void run_template_file(const fs::path& file, std::ostream& out, OracleSummary* summary) {
  std::ifstream src_in(file.parent_path() / "gemma4-chat-template.jinja");
  if (!src_in) throw Error(file.string() + ": gemma4-chat-template.jinja not found beside it");
  const std::string source((std::istreambuf_iterator<char>(src_in)),
                           std::istreambuf_iterator<char>());
  const ChatTemplate tpl(source);
  std::unique_ptr<Tokenizer> tok;
  const fs::path vocab = file.parent_path().parent_path() / "tokenizer" / "ggml-vocab-gemma4.gguf";
  if (fs::exists(vocab))
    tok = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*gguf::File::open(vocab.string())));
  for_each_record(file, [&](const json& line) {
    const nlohmann::ordered_json rec = nlohmann::ordered_json::parse(line.dump());
    nlohmann::ordered_json inputs = rec.at("input");
    inputs["bos_token"] = "<bos>";
    const std::string id = rec.value("id", "?");
    std::string rendered;
    std::string problem;
    try {
      rendered = tpl.render(inputs);
      if (rendered != rec.at("rendered").get<std::string>()) problem = " rendering differs";
    } catch (const Error& e) {
      problem = std::string(" error: ") + e.what();
    }
    if (problem.empty() && tok && rec.contains("ids")) {
      EncodeOptions o;
      o.parse_special = true;
      if (tok->encode(rendered, o) != rec["ids"].get<std::vector<int32_t>>())
        problem = " token ids differ";
    }
    out << (problem.empty() ? "PASS" : "FAIL") << " template/" << id << problem << "\n";
    (problem.empty() ? summary->passed : summary->failed)++;
  });
}

bool is_text_case_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.rfind("cases-", 0) == 0 && p.extension() == ".jsonl" &&
         p.parent_path().filename() == "text";
}

}  // namespace

OracleSummary run_oracle_checks(const std::string& path, const OracleOptions& options,
                                std::ostream& out) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file or directory");
  std::vector<fs::path> text_files, tokenizer_files, template_files, mm_files, unsupported;
  std::vector<fs::path> mtp_files;
  auto classify = [&](const fs::path& p) {
    const std::string name = p.filename().string();
    const std::string dir = p.parent_path().filename().string();
    if (is_text_case_file(p)) {
      text_files.push_back(p);
    } else if (dir == "tokenizer" && (name == "llamacpp_vectors.jsonl" ||
                                      name == "generated.jsonl" || name == "detokenize.jsonl")) {
      tokenizer_files.push_back(p);
    } else if (dir == "template" && name == "conversations.jsonl") {
      template_files.push_back(p);
    } else if (is_mtp_case_file(p)) {
      mtp_files.push_back(p);
    } else if (dir == "mtp" && name == "models.json") {
      // The pair list; every case.json names its own models.
    } else if (is_multimodal_case_file(p)) {
      mm_files.push_back(p);
    } else if (name == "models.json") {
      unsupported.push_back(p);
    } else {
      return false;
    }
    return true;
  };
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.is_regular_file()) classify(e.path());
    }
  } else if (!classify(path)) {
    throw Error(path +
                ": not a case file this version understands (text/cases-*.jsonl, "
                "tokenizer/*.jsonl, template/conversations.jsonl)");
  }
  for (auto* v :
       {&text_files, &tokenizer_files, &template_files, &mm_files, &unsupported, &mtp_files}) {
    std::sort(v->begin(), v->end());
  }
  if (text_files.empty() && tokenizer_files.empty() && template_files.empty() && mm_files.empty() &&
      unsupported.empty() && mtp_files.empty()) {
    throw Error(path + ": no oracle cases found");
  }
  OracleSummary summary;
  for (const auto& f : tokenizer_files) run_tokenizer_file(f, out, &summary);
  for (const auto& f : template_files) run_template_file(f, out, &summary);
  if (!text_files.empty()) {
    TextCaseRunner runner(options, out);
    for (const auto& f : text_files) runner.run_file(f, &summary);
  }
  for (const auto& f : mm_files) run_multimodal_case_file(f, options, out, &summary);
  run_mtp_cases(mtp_files, options, out, &summary);
  for (const auto& f : unsupported) {
    out << "SKIP " << f.parent_path().filename().string() << "/" << f.filename().string()
        << ": MTP case types are not implemented yet\n";
    ++summary.skipped;
  }
  return summary;
}

}  // namespace ug
