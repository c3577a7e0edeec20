"""The Gemma 4 chat format in Python, for the parts the synthetic data uses: system turn, thinking
switch, tool declarations, tool calls, tool responses (OpenAI `role: tool` form), image/audio
placeholders, generation prompt. It follows the official template (the repo's
src/chat/gemma4_default_template.cpp is the byte-exact copy the C++ engine renders) and is checked
against the oracle's rendered conversations in tests/test_chat_tokenizer.py.

`expand_media` then does what the engine's prompt assembly does (src/runtime/multimodal.cpp):
each `<|image|>` becomes "\\n\\n<|image>" + soft tokens + "<image|>\\n\\n", each `<|audio|>`
becomes "<|audio>" + soft tokens + "<audio|>", and the text between soft-token runs is tokenized
piece by piece.
"""

import os
import re

Q = '<|"|>'
_STANDARD_KEYS = ("description", "type", "properties", "required", "nullable")


def format_argument(v, escape_keys=True):
    if isinstance(v, str):
        return Q + v + Q
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        parts = []
        for k in sorted(v):
            key = Q + k + Q if escape_keys else k
            parts.append(key + ":" + format_argument(v[k], escape_keys))
        return "{" + ",".join(parts) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(format_argument(x, escape_keys) for x in v) + "]"
    if isinstance(v, float):
        raise ValueError("floats render differently across template engines; use int or str")
    return str(v)


def _format_parameters(properties):
    out = []
    for key in sorted(properties):
        if key in _STANDARD_KEYS:
            continue
        value = properties[key]
        s = key + ":{"
        add_comma = False
        if value.get("description"):
            s += "description:" + Q + value["description"] + Q
            add_comma = True
        typ = str(value.get("type", "")).upper()
        if typ == "STRING" and value.get("enum"):
            s += ("," if add_comma else "") + "enum:" + format_argument(value["enum"])
            add_comma = True
        if typ in ("ARRAY", "OBJECT") or value.get("nullable"):
            raise ValueError(f"parameter '{key}': only scalar parameters are supported here")
        s += ("," if add_comma else "") + "type:" + Q + typ + Q + "}"
        out.append(s)
    return ",".join(out)


def format_declaration(tool):
    f = tool["function"]
    if "response" in f:
        raise ValueError(f"tool '{f['name']}': response declarations are not supported here")
    s = "declaration:" + f["name"] + "{description:" + Q + f["description"] + Q
    params = f.get("parameters")
    if params:
        s += ",parameters:{"
        if params.get("properties"):
            s += "properties:{" + _format_parameters(params["properties"]) + "},"
        if params.get("required"):
            s += "required:[" + ",".join(Q + r + Q for r in params["required"]) + "],"
        if params.get("type"):
            s += "type:" + Q + params["type"].upper() + Q + "}"
    return s + "}"


def strip_thinking(text):
    result = ""
    for part in text.split("<channel|>"):
        result += part.split("<|channel>")[0] if "<|channel>" in part else part
    return result.strip()


def _tool_response(name, body):
    if isinstance(body, dict):
        inner = ",".join(k + ":" + format_argument(body[k], False) for k in sorted(body))
        return "<|tool_response>response:" + name + "{" + inner + "}<tool_response|>"
    return "<|tool_response>response:" + name + "{value:" + format_argument(body, False) + \
        "}<tool_response|>"


def render(messages, tools=None, enable_thinking=False, add_generation_prompt=True,
           bos_token="<bos>"):
    """messages: [{"role": "system"|"user"|"assistant"|"tool", "content": str | [parts],
    "tool_calls": [{"id", "function": {"name", "arguments": dict}}], "tool_call_id", "name",
    "reasoning_content"}]; parts: {"type": "text", "text"} / {"type": "image"} / {"type": "audio"}."""
    out = bos_token
    loop = list(messages)
    prev_type = None
    if enable_thinking or tools or (messages and messages[0]["role"] in ("system", "developer")):
        out += "<|turn>system\n"
        if enable_thinking:
            out += "<|think|>\n"
            prev_type = "think"
        if messages and messages[0]["role"] in ("system", "developer"):
            out += messages[0]["content"].strip()
            loop = loop[1:]
        if tools:
            for tool in tools:
                out += "<|tool>" + format_declaration(tool).strip() + "<tool|>"
            prev_type = "tool"
        out += "<turn|>\n"
    last_user = max((i for i, m in enumerate(loop) if m["role"] == "user"), default=-1)
    for i, m in enumerate(loop):
        if m["role"] == "tool":
            continue
        if m.get("tool_responses"):
            raise ValueError("legacy tool_responses on a message are not supported here")
        prev_type = None
        role = "model" if m["role"] == "assistant" else m["role"]
        prev_nt = next((loop[j]["role"] for j in range(i - 1, -1, -1) if loop[j]["role"] != "tool"),
                       None)
        if not (role == "model" and prev_nt == "assistant"):
            out += "<|turn>" + role + "\n"
        thinking = m.get("reasoning") or m.get("reasoning_content")
        if thinking and i > last_user and m.get("tool_calls"):
            out += "<|channel>thought\n" + thinking + "\n<channel|>"
        calls = m.get("tool_calls") or []
        for tc in calls:
            fn = tc["function"]
            args = fn["arguments"]
            out += "<|tool_call>call:" + fn["name"] + "{"
            if isinstance(args, dict):
                out += ",".join(k + ":" + format_argument(args[k], False) for k in sorted(args))
            else:
                out += args
            out += "}<tool_call|>"
        if calls:
            prev_type = "tool_call"
        responded = False
        if calls:
            for k in range(i + 1, len(loop)):
                follow = loop[k]
                if follow["role"] != "tool":
                    break
                name = follow.get("name") or "unknown"
                for tc in calls:
                    if tc.get("id") is not None and tc.get("id") == follow.get("tool_call_id"):
                        name = tc["function"]["name"]
                body = follow.get("content")
                if isinstance(body, list):
                    body = "".join(p.get("text", "") for p in body if p.get("type") == "text")
                out += _tool_response(name, body)
                responded = True
                prev_type = "tool_response"
        content = m.get("content")
        if isinstance(content, str):
            out += strip_thinking(content) if role == "model" else content.strip()
        elif isinstance(content, list):
            for part in content:
                if part["type"] == "text":
                    out += strip_thinking(part["text"]) if role == "model" else part["text"].strip()
                elif part["type"] in ("image", "audio", "video"):
                    out += "<|" + part["type"] + "|>"
                    prev_type = part["type"]
        if prev_type == "tool_call" and not responded:
            out += "<|tool_response>"
        elif not (responded and not content):
            out += "<turn|>\n"
    if add_generation_prompt and prev_type not in ("tool_response", "tool_call"):
        out += "<|turn>model\n"
        if not enable_thinking:
            out += "<|channel>thought\n<channel|>"
    return out


_PLACEHOLDER = re.compile(r"<\|(image|audio|video)\|>")


def expand_media(rendered):
    """Splits a rendered prompt at its media placeholders the way the engine assembles prompts.
    Returns a list of ("text", str) and ("image" | "audio", index) items; the text items already
    carry the begin/end markers and the blank lines the engine adds around images."""
    items = []
    pending = ""
    pos = 0
    n = {"image": 0, "audio": 0}
    for m in _PLACEHOLDER.finditer(rendered):
        kind = m.group(1)
        if kind == "video":
            raise ValueError("video is not part of the synthetic data")
        pending += rendered[pos:m.start()]
        pending += "\n\n<|image>" if kind == "image" else "<|audio>"
        items.append(("text", pending))
        items.append((kind, n[kind]))
        n[kind] += 1
        pending = "<image|>\n\n" if kind == "image" else "<audio|>"
        pos = m.end()
    pending += rendered[pos:]
    items.append(("text", pending))
    return items


def default_chat_template():
    """The official template text, taken from the C++ source that embeds it byte for byte."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "chat",
                       "gemma4_default_template.cpp")
    with open(src, encoding="utf-8") as f:
        text = f.read()
    start = text.index('R"UG_TEMPLATE(') + len('R"UG_TEMPLATE(')
    return text[start:text.index(')UG_TEMPLATE"', start)]
