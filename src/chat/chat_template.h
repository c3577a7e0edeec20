// Chat template rendering: turns a conversation (messages, tools, flags) into the prompt text a
// model expects, by running the model's Jinja chat template in the Hugging Face environment
// (see chat/jinja.h). Models without a template get the official Gemma 4 template.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

#include "chat/jinja.h"

namespace ug {

// The official Gemma 4 chat template (the oracle's gemma4-chat-template.jinja, embedded).
std::string_view default_chat_template();

// A parsed chat template, for rendering many prompts with the same template.
class ChatTemplate {
 public:
  // An empty source selects default_chat_template(). Throws ug::Error ("chat template: line L,
  // column C: ...") when the template does not parse.
  explicit ChatTemplate(std::string_view source = {});

  // `inputs` is a JSON object whose members become template variables: messages, tools,
  // add_generation_prompt, enable_thinking, bos_token, eos_token and any extra kwargs. Nothing is
  // added implicitly (pass bos_token, e.g. "<bos>"). ordered_json keeps the key order of objects,
  // which tojson and dict iteration follow as in Python. Throws ug::Error on failure, including a
  // template's raise_exception(message).
  std::string render(const nlohmann::ordered_json& inputs) const;
  std::string render(const nlohmann::json& inputs) const;

 private:
  jinja::Template template_;
};

// One-shot form of ChatTemplate(template_source).render(inputs).
std::string render_chat_template(std::string_view template_source,
                                 const nlohmann::ordered_json& inputs);
std::string render_chat_template(std::string_view template_source, const nlohmann::json& inputs);

}  // namespace ug
