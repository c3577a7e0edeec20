#include "chat/jinja.h"

#include <new>

#include "chat/jinja_interp.h"
#include "chat/jinja_parser.h"
#include "util/error.h"

namespace ug::jinja {
namespace {

std::string describe_fault(const std::string& name, const Fault& fault) {
  if (!fault.located()) return name + ": " + fault.message();
  return name + ": line " + std::to_string(fault.line()) + ", column " +
         std::to_string(fault.column()) + ": " + fault.message();
}

template <class Json>
std::string render_program(const Program& program, const Options& options, const Json& context) {
  if (!context.is_object()) {
    throw ug::Error(options.name + ": the template context must be a JSON object, got " +
                    std::string(context.type_name()));
  }
  try {
    Interp interp(options);
    return interp.run(program, from_json(context));
  } catch (const Fault& fault) {
    throw ug::Error(describe_fault(options.name, fault));
  } catch (const std::bad_alloc&) {
    throw ug::Error(options.name + ": out of memory while rendering");
  }
}

}  // namespace

Template::Template(std::string_view source, Options options) : options_(std::move(options)) {
  LexOptions lex;
  lex.trim_blocks = options_.trim_blocks;
  lex.lstrip_blocks = options_.lstrip_blocks;
  lex.keep_trailing_newline = options_.keep_trailing_newline;
  try {
    program_ = std::make_shared<const Program>(parse_template(source, lex));
  } catch (const Fault& fault) {
    throw ug::Error(describe_fault(options_.name, fault));
  }
}

Template::~Template() = default;
Template::Template(const Template&) = default;
Template& Template::operator=(const Template&) = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& context) const {
  return render_program(*program_, options_, context);
}

std::string Template::render(const nlohmann::json& context) const {
  return render_program(*program_, options_, context);
}

std::string render(std::string_view source, const nlohmann::ordered_json& context,
                   const Options& options) {
  return Template(source, options).render(context);
}

}  // namespace ug::jinja
