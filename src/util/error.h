// One error type for everything the user can get wrong (bad files, bad options, bad requests).
// The message is one line that names what and where, e.g. "model.gguf: tensor
// 'blk.3.attn_q.weight': data ends at byte 9000 past end of file (8000 bytes)". Frontends print it
// and exit with code 2.
#pragma once

#include <stdexcept>
#include <string>

namespace ug {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Exit code for bad input (files, options, requests). Internal failures use 1.
inline constexpr int kExitBadInput = 2;

}  // namespace ug
