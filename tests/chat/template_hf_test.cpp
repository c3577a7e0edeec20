// Real-world Hugging Face chat templates, written from memory in simplified form (ChatML with
// tool JSON dumps, Llama 3.1, Mistral, Phi-3, DeepSeek-R1, Gemma 3), rendered on a few
// conversations. Expected outputs (or raise_exception messages) were produced by Python jinja2
// 3.1 in the environment transformers uses (see jinja_test.cpp).
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "chat/chat_template.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kChatmlTools = R"~({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)~";

constexpr std::string_view kLlama3 = R"~({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)~";

constexpr std::string_view kMistral = R"~({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)~";

constexpr std::string_view kPhi3 =
    R"~({% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %})~";

constexpr std::string_view kDeepseekR1 =
    R"~({% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{%- set ns.is_first = true -%}{%- else %}{{'\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\n' + '```json' + '\n' + tool['function']['arguments'] + '\n' + '```' + '<｜tool▁call▁end｜>'}}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{%- if ns.is_tool %}{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- set ns.is_output_first = false %}{%- else %}{{'\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\n'}}{% endif %})~";

constexpr std::string_view kGemma3 = R"~({{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '

' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '

' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '
' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>
' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model
'}}
{%- endif -%}
)~";

struct HfCase {
  const char* name;
  std::string_view source;
  std::string_view inputs;
  std::string_view expected;  // the rendering, or the raise_exception message when `raises`
  bool raises;
};

const HfCase kHfCases[] = {
    {"chatmltools_single_user", kChatmlTools,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
Hi there é ✓<|im_end|>
<|im_start|>assistant
)~",
     false},
    {"chatmltools_system_multi_turn_think", kChatmlTools,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|im_start|>system
  Be brief.  <|im_end|>
<|im_start|>user
Hi<|im_end|>
<|im_start|>assistant
<think>hmm</think>Hello!<|im_end|>
<|im_start|>user
Bye<|im_end|>
<|im_start|>assistant
)~",
     false},
    {"chatmltools_tool_call_and_result", kChatmlTools,
     R"~({"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21.5}"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather\nfor a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}}}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|im_start|>system
You are a helpful assistant.

# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{"type": "function", "function": {"name": "get_weather", "description": "Get the weather\nfor a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}
{"type": "function", "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}}}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
<|im_start|>user
Weather in Paris?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}
</tool_call><|im_end|>
<|im_start|>user
<tool_response>
{"temp": 21.5}
</tool_response><|im_end|>
<|im_start|>assistant
)~",
     false},
    {"chatmltools_two_users", kChatmlTools,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|im_start|>system
You are a helpful assistant.<|im_end|>
<|im_start|>user
a<|im_end|>
<|im_start|>user
b<|im_end|>
)~",
     false},
    {"llama3_single_user", kLlama3,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

<|eot_id|><|start_header_id|>user<|end_header_id|>

Hi there é ✓<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)~",
     false},
    {"llama3_system_multi_turn_think", kLlama3,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

Be brief.<|eot_id|><|start_header_id|>user<|end_header_id|>

Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>

<think>hmm</think>Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>

Bye<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)~",
     false},
    {"llama3_tool_call_and_result", kLlama3,
     R"~({"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21.5}"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather\nfor a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}}}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

<|eot_id|><|start_header_id|>user<|end_header_id|>

Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.

Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.Do not use variables.

{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather\nfor a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {
                    "type": "string",
                    "description": "City name"
                },
                "unit": {
                    "type": "string",
                    "enum": [
                        "c",
                        "f"
                    ]
                }
            },
            "required": [
                "city"
            ]
        }
    }
}

{
    "type": "function",
    "function": {
        "name": "now",
        "description": "",
        "parameters": {
            "type": "object",
            "properties": {}
        }
    }
}

Weather in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>

{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}<|eot_id|><|start_header_id|>ipython<|end_header_id|>

"{\"temp\": 21.5}"<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)~",
     false},
    {"llama3_two_users", kLlama3,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

<|eot_id|><|start_header_id|>user<|end_header_id|>

a<|eot_id|><|start_header_id|>user<|end_header_id|>

b<|eot_id|>)~",
     false},
    {"llama3_system_and_parts", kLlama3, R"~({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Describe "}]}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><|start_header_id|>system<|end_header_id|>

Cutting Knowledge Date: December 2023
Today Date: 26 Jul 2024

S<|eot_id|><|start_header_id|>user<|end_header_id|>

[{'type': 'image'}, {'type': 'text', 'text': ' Describe '}]<|eot_id|><|start_header_id|>assistant<|end_header_id|>

)~",
     false},
    {"mistral_single_user", kMistral,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s> [INST] Hi there é ✓ [/INST])~", false},
    {"mistral_system_multi_turn_think", kMistral,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s> [INST]   Be brief.  

Hi [/INST] <think>hmm</think>Hello!</s> [INST] Bye [/INST])~",
     false},
    {"mistral_two_users", kMistral,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(After the optional system message, conversation roles must alternate user/assistant/user/assistant/...)~",
     true},
    {"phi3_single_user", kPhi3,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|user|>
Hi there é ✓<|end|>
<|assistant|>
)~",
     false},
    {"phi3_system_multi_turn_think", kPhi3,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|system|>
  Be brief.  <|end|>
<|user|>
Hi<|end|>
<|assistant|>
<think>hmm</think>Hello!<|end|>
<|user|>
Bye<|end|>
<|assistant|>
)~",
     false},
    {"phi3_two_users", kPhi3,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|user|>
a<|end|>
<|user|>
b<|end|>
</s>)~",
     false},
    {"phi3_empty", kPhi3,
     R"~({"messages": [], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<|assistant|>
)~",
     false},
    {"deepseekr1_single_user", kDeepseekR1,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><｜User｜>Hi there é ✓<｜Assistant｜><think>
)~",
     false},
    {"deepseekr1_system_multi_turn_think", kDeepseekR1,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s>  Be brief.  <｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜><think>
)~",
     false},
    {"deepseekr1_two_users", kDeepseekR1,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><｜User｜>a<｜User｜>b)~", false},
    {"deepseekr1_empty", kDeepseekR1,
     R"~({"messages": [], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><｜Assistant｜><think>
)~",
     false},
    {"gemma3_single_user", kGemma3,
     R"~({"messages": [{"role": "user", "content": "Hi there é ✓"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><start_of_turn>user
Hi there é ✓<end_of_turn>
<start_of_turn>model
)~",
     false},
    {"gemma3_system_multi_turn_think", kGemma3,
     R"~({"messages": [{"role": "system", "content": "  Be brief.  "}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>hmm</think>Hello!"}, {"role": "user", "content": "Bye"}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><start_of_turn>user
  Be brief.  

Hi<end_of_turn>
<start_of_turn>model
<think>hmm</think>Hello!<end_of_turn>
<start_of_turn>user
Bye<end_of_turn>
<start_of_turn>model
)~",
     false},
    {"gemma3_tool_call_and_result", kGemma3,
     R"~({"messages": [{"role": "user", "content": "Weather in Paris?"}, {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 21.5}"}], "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather\nfor a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "now", "description": "", "parameters": {"type": "object", "properties": {}}}}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~", R"~(Invalid content type)~",
     true},
    {"gemma3_two_users", kGemma3,
     R"~({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "add_generation_prompt": false, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(Conversation roles must alternate user/assistant/user/assistant/...)~", true},
    {"gemma3_system_and_parts", kGemma3,
     R"~({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": " Describe "}]}], "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})~",
     R"~(<s><start_of_turn>user
S

<start_of_image>Describe<end_of_turn>
<start_of_turn>model
)~",
     false},
};

class HfTemplateTest : public ::testing::TestWithParam<HfCase> {};

TEST_P(HfTemplateTest, MatchesPythonJinja2) {
  const HfCase& c = GetParam();
  const ordered_json inputs = ordered_json::parse(c.inputs);
  if (!c.raises) {
    EXPECT_EQ(render_chat_template(c.source, inputs), c.expected);
    return;
  }
  try {
    render_chat_template(c.source, inputs);
    FAIL() << "expected raise_exception";
  } catch (const Error& e) {
    const std::string message = e.what();
    ASSERT_GE(message.size(), c.expected.size());
    EXPECT_EQ(message.substr(message.size() - c.expected.size()), c.expected) << message;
    EXPECT_EQ(message.rfind("chat template: line ", 0), 0u) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(RealWorld, HfTemplateTest, ::testing::ValuesIn(kHfCases),
                         [](const ::testing::TestParamInfo<HfCase>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace ug
