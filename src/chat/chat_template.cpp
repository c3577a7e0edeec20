#include "chat/chat_template.h"

#include "chat/gemma4_default_template.h"

namespace ug {
namespace {

jinja::Options chat_template_options() {
  jinja::Options options;
  options.name = "chat template";
  return options;
}

}  // namespace

std::string_view default_chat_template() {
  return gemma4_default_chat_template();
}

ChatTemplate::ChatTemplate(std::string_view source)
    : template_(source.empty() ? default_chat_template() : source, chat_template_options()) {}

std::string ChatTemplate::render(const nlohmann::ordered_json& inputs) const {
  return template_.render(inputs);
}

std::string ChatTemplate::render(const nlohmann::json& inputs) const {
  return template_.render(inputs);
}

std::string render_chat_template(std::string_view template_source,
                                 const nlohmann::ordered_json& inputs) {
  return ChatTemplate(template_source).render(inputs);
}

std::string render_chat_template(std::string_view template_source, const nlohmann::json& inputs) {
  return ChatTemplate(template_source).render(inputs);
}

}  // namespace ug
