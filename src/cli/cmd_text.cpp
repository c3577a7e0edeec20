// Debugging commands: template rendering, tokenize, detokenize.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "format/gguf.h"

#include "chat/chat_template.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "util/error.h"

namespace ug::cli {

std::vector<int32_t> parse_id_list(const std::string& s);

namespace {
// Loads only what text commands need: the tokenizer (from the GGUF metadata or the HF folder).
std::unique_ptr<Tokenizer> tokenizer_for(const std::string& path) {
  if (std::filesystem::is_directory(path))
    return std::make_unique<Tokenizer>(Tokenizer::from_hf_dir(path));
  auto f = gguf::File::open(path);
  return std::make_unique<Tokenizer>(Tokenizer::from_gguf(*f));
}
}  // namespace

int cmd_template(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma template -m MODEL --conversation FILE.json [--chat-template FILE]\n"
        "  FILE.json: {\"messages\": [...], \"tools\": [...], \"add_generation_prompt\": true,\n"
        "              \"enable_thinking\": false, ...} (all template variables; bos_token is "
        "added)");
    return 0;
  }
  args.reject_unknown({"-m", "--model", "--conversation", "--chat-template"});
  const std::string conv_path = args.get({"--conversation"});
  if (conv_path.empty()) throw Error("template: missing --conversation FILE.json");
  std::ifstream in(conv_path);
  if (!in) throw Error(conv_path + ": cannot open");
  nlohmann::ordered_json inputs = nlohmann::ordered_json::parse(in, nullptr, false);
  if (inputs.is_discarded() || !inputs.is_object()) throw Error(conv_path + ": not a JSON object");
  std::string source;
  if (args.has("--chat-template")) {
    std::ifstream t(args.get({"--chat-template"}));
    if (!t) throw Error(args.get({"--chat-template"}) + ": cannot open");
    source.assign(std::istreambuf_iterator<char>(t), std::istreambuf_iterator<char>());
  }
  std::string bos = "<bos>";
  const std::string model = args.get({"-m", "--model"});
  if (!model.empty()) {
    auto tok = tokenizer_for(model);
    if (source.empty()) source = tok->data().chat_template;
    if (tok->bos_id() >= 0) bos = tok->token_piece(tok->bos_id(), true);
  }
  if (!inputs.contains("bos_token")) inputs["bos_token"] = bos;
  const std::string out = ChatTemplate(source).render(inputs);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

int cmd_tokenize(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--pieces", "--special", "--bos"});
  if (args.has("--help") || args.has("-h")) {
    std::puts("usage: unigemma tokenize -m MODEL [--special] [--bos] [--pieces] (TEXT | -)");
    return 0;
  }
  args.reject_unknown({"-m", "--model", "--pieces", "--special", "--bos"});
  if (args.positional().size() != 1) throw Error("tokenize: expected one TEXT argument (or -)");
  std::string text = args.positional()[0];
  if (text == "-")
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  auto tok = tokenizer_for(args.get({"-m", "--model"}));
  EncodeOptions o;
  o.parse_special = args.has("--special");
  o.add_bos = args.has("--bos");
  const auto ids = tok->encode(text, o);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (args.has("--pieces")) {
      std::printf("%d\t%s\n", ids[i],
                  nlohmann::json(tok->token_piece(ids[i], true))
                      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                      .c_str());
    } else {
      std::printf("%s%d", i ? " " : "", ids[i]);
    }
  }
  if (!args.has("--pieces")) std::printf("\n");
  return 0;
}

int cmd_detokenize(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--no-special"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma detokenize -m MODEL [--no-special] IDS   (e.g. \"2 818 505\" or "
        "2,818,505)");
    return 0;
  }
  args.reject_unknown({"-m", "--model", "--no-special"});
  std::string joined;
  for (const auto& p : args.positional()) joined += p + " ";
  auto tok = tokenizer_for(args.get({"-m", "--model"}));
  const auto ids = parse_id_list(joined);
  for (int32_t id : ids) {
    if (id >= tok->vocab_size()) throw Error("token id " + std::to_string(id) + " out of range");
  }
  const std::string s = tok->decode(ids, !args.has("--no-special"));
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::printf("\n");
  return 0;
}

}  // namespace ug::cli
