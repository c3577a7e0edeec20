// Subcommands of the `unigemma` binary. Each returns the process exit code; bad input throws
// ug::Error, which main() prints as one line and turns into exit code 2.
#pragma once

namespace ug::cli {

int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_template(int argc, char** argv);
int cmd_tokenize(int argc, char** argv);
int cmd_detokenize(int argc, char** argv);
int cmd_info(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_synth(int argc, char** argv);
int cmd_bundle(int argc, char** argv);
int cmd_check_oracle(int argc, char** argv);
int cmd_convert(int argc, char** argv);
int cmd_quantize(int argc, char** argv);
int cmd_pull(int argc, char** argv);
int cmd_ls(int argc, char** argv);
int cmd_rm(int argc, char** argv);
int cmd_serve(int argc, char** argv);
int cmd_eval(int argc, char** argv);

// Shared option helpers.
int default_threads();

}  // namespace ug::cli
