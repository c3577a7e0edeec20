// The official Gemma 4 chat template text (see gemma4_default_template.cpp for its origin and
// license terms).
#pragma once

#include <string_view>

namespace ug {

std::string_view gemma4_default_chat_template();

}  // namespace ug
