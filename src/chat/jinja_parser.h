// Jinja parser: tokens -> Program, following jinja2's grammar and operator precedence.
#pragma once

#include <string_view>

#include "chat/jinja_ast.h"
#include "chat/jinja_lexer.h"

namespace ug::jinja {

// Throws Fault with the line/column of the offending token.
Program parse_template(std::string_view source, const LexOptions& options);

}  // namespace ug::jinja
