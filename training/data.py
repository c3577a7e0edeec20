"""Seeded synthetic tasks for unigemma-nano, every example in the real Gemma 4 chat format.

Tasks (name: what is asked -> canonical answer):
  image  shape, colour, size, count, position (left/right), read_digit, read_word
  audio  tone_pitch (high/low), beep_count, spoken_digit, spoken_word (espeak-ng, several voices
         and speeds, resampled to 16 kHz with sox)
  text   arithmetic, spelling, letter_count, thinking (answer after a thought channel),
         tool_call (native Gemma 4 call), tool_answer (answer after a tool response), no_tool

`Generator(seed, split)` is deterministic: example i of a split depends only on (seed, split, i).
The held-out split draws from a disjoint seed space (and for speech, from its own renderings),
so no held-out example is a training example. `Example.target` is what the model must generate
after the rendered prompt (ending in its stop token: `<turn|>`, or `<|tool_response>` after a
tool call); `Example.answer` is what evaluation checks (see `check_answer`).

CLI: /usr/bin/python3 training/data.py --show 12        (prints examples)
     /usr/bin/python3 training/data.py --dump DIR --n 50 (writes prompts, PNG and WAV files)
"""

import hashlib
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

import numpy as np

import chat

RATE = 16000

SHAPES = ["circle", "square", "triangle", "star", "diamond", "cross"]
COLOURS = {
    "red": (220, 30, 30), "green": (30, 160, 50), "blue": (40, 70, 225),
    "yellow": (245, 215, 20), "orange": (250, 135, 15), "purple": (135, 45, 185),
}
BACKGROUNDS = ["white", "black", "gray", "light", "dark", "gradient", "noise"]
DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
WORDS = ["cat", "dog", "sun", "tree", "fish", "bird", "book", "moon", "star", "cake", "door", "ball",
         "milk", "rain", "ship", "frog", "lamp", "king", "hat", "cup", "apple", "house", "water",
         "green", "music", "river", "paper", "light", "horse", "chair", "bread", "cloud", "table",
         "zebra", "lemon", "tiger", "robot", "piano", "grape", "train"]
SPOKEN_WORDS = ["yes", "no", "hello", "stop", "go", "left", "right", "up", "down", "cat", "dog",
                "apple", "water", "music", "red", "blue"]
VOICES = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-029", "en-us+f2", "en-gb+f4",
          "en-us+m3"]
CITIES = ["Paris", "London", "Tokyo", "Berlin", "Madrid", "Rome", "Oslo", "Cairo", "Lima", "Delhi",
          "Sydney", "Toronto", "Nairobi", "Seoul", "Dublin", "Vienna"]
SKIES = ["sunny", "cloudy", "rainy", "windy", "snowy", "foggy"]

TOOLS = {
    "get_weather": {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city name"}}, "required": ["city"]}}},
    "get_time": {"type": "function", "function": {
        "name": "get_time", "description": "Get the local time in a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "The city name"}}, "required": ["city"]}}},
    "multiply": {"type": "function", "function": {
        "name": "multiply", "description": "Multiply two integers",
        "parameters": {"type": "object", "properties": {
            "a": {"type": "integer", "description": "First factor"},
            "b": {"type": "integer", "description": "Second factor"}}, "required": ["a", "b"]}}},
}

IMAGE_TASKS = ["shape", "colour", "size", "count", "position", "read_digit", "read_word"]
AUDIO_TASKS = ["tone_pitch", "beep_count", "spoken_digit", "spoken_word"]
TEXT_TASKS = ["arithmetic", "spelling", "letter_count", "thinking", "tool_call", "tool_answer",
              "no_tool"]
ALL_TASKS = IMAGE_TASKS + AUDIO_TASKS + TEXT_TASKS
SINGLE_SHAPE_TASKS = ["shape", "colour", "size", "position"]

QUESTIONS = {
    "shape": ["What shape is in the image?", "Which shape do you see?", "Name the shape.",
              "What shape is this?"],
    "colour": ["What colour is the shape?", "Which colour is the shape?", "What color is it?",
               "Name the colour of the shape."],
    "size": ["Is the shape large or small?", "Is it big or small?", "How big is the shape?"],
    "count": ["How many shapes are there?", "Count the shapes.", "How many objects do you see?"],
    "position": ["Is the shape on the left or on the right?", "Where is the shape, left or right?",
                 "Which side is the shape on?"],
    "read_digit": ["What number is written?", "Read the digit.", "Which digit is shown?"],
    "read_word": ["What word is written?", "Read the word in the image.", "What does it say?"],
    "tone_pitch": ["Is the tone high or low?", "Is this a high or a low sound?",
                   "High pitch or low pitch?"],
    "beep_count": ["How many beeps are there?", "Count the beeps.", "How many beeps do you hear?"],
    "spoken_digit": ["Which number is spoken?", "What digit do you hear?", "What number is said?"],
    "spoken_word": ["Which word is spoken?", "What word do you hear?", "Transcribe the word."],
}


@dataclass
class Example:
    task: str
    messages: list
    target: str  # the model's output after the rendered prompt, including its stop token
    answer: str  # what check_answer compares
    tools: list = None
    thinking: bool = False
    media: list = field(default_factory=list)  # [("image", PIL.Image) | ("audio", float32 array)]

    def prompt(self):
        return chat.render(self.messages, self.tools, self.thinking, add_generation_prompt=True)


def normalize(text):
    text = re.sub(r"<\|channel>.*?<channel\|>", "", text, flags=re.S)
    text = text.replace("<turn|>", "").strip().lower()
    return re.sub(r"[.!?]+$", "", text).strip()


def check_answer(example, output):
    """True when the generated `output` answers `example` (see README: evaluation)."""
    if example.task == "tool_call":
        return parse_tool_call(output) == parse_tool_call(example.target)
    return normalize(output) == normalize(example.answer)


_CALL = re.compile(r'<\|tool_call>call:([A-Za-z_][A-Za-z0-9_]*)\{(.*?)\}<tool_call\|>', re.S)
_ARG = re.compile(r'([A-Za-z_][A-Za-z0-9_]*):(<\|"\|>.*?<\|"\|>|-?\d+|true|false)')


def parse_tool_call(text):
    """(name, {arg: value}) of the first well-formed native tool call, or None."""
    m = _CALL.search(text)
    if not m:
        return None
    body = m.group(2)
    args = {}
    pos = 0
    for a in _ARG.finditer(body):
        if a.start() != pos:
            return None
        v = a.group(2)
        args[a.group(1)] = v[5:-5] if v.startswith('<|"|>') else (
            v == "true" if v in ("true", "false") else int(v))
        pos = a.end()
        if pos < len(body):
            if body[pos] != ",":
                return None
            pos += 1
    if pos != len(body):
        return None
    return m.group(1), args


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

_FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
          "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
          "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
          "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"]


def _font(rng, size):
    from PIL import ImageFont
    fonts = [f for f in _FONTS if os.path.exists(f)]
    if not fonts:
        raise RuntimeError("fonts-dejavu-core is needed for the text-in-image tasks "
                           "(scripts/setup --training)")
    return ImageFont.truetype(rng.choice(fonts), size)


def _background(rng, w, h):
    from PIL import Image
    kind = rng.choice(BACKGROUNDS)
    if kind == "white":
        c = (255, 255, 255)
    elif kind == "black":
        c = (0, 0, 0)
    elif kind == "gray":
        v = rng.randint(100, 160)
        c = (v, v, v)
    elif kind == "light":
        c = tuple(rng.randint(215, 250) for _ in range(3))
    elif kind == "dark":
        c = tuple(rng.randint(10, 50) for _ in range(3))
    else:
        c = None
    if c is not None:
        return Image.new("RGB", (w, h), c), kind
    a = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    b = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    a, b = a * 0.3 + 150 * 0.7, b * 0.3 + 60 * 0.7  # muted, so shape colours stay distinct
    if kind == "gradient":
        t = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        if len(t) == w:
            img = a[None, None] * (1 - t[None, :, None]) + b[None, None] * t[None, :, None]
            img = np.broadcast_to(img, (h, w, 3))
        else:
            img = a[None, None] * (1 - t[:, None, None]) + b[None, None] * t[:, None, None]
            img = np.broadcast_to(img, (h, w, 3))
    else:
        nrng = np.random.default_rng(rng.getrandbits(32))
        img = a[None, None] + nrng.normal(0, 25, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), kind


def _shape_points(shape, cx, cy, r, rng):
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    if shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        return pts
    if shape == "cross":
        t = r * 0.33
        return [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t),
                (cx + r, cy + t), (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r),
                (cx - t, cy + t), (cx - r, cy + t), (cx - r, cy - t), (cx - t, cy - t)]
    raise ValueError(shape)


def _draw_shape(draw, shape, cx, cy, r, colour, rng):
    jitter = lambda c: tuple(int(np.clip(v + rng.randint(-15, 15), 0, 255)) for v in c)  # noqa
    fill = jitter(colour)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_points(shape, cx, cy, r, rng), fill=fill)


def _canvas_size(rng):
    aspect = rng.choice([1.0, 1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16, 2.0, 0.5])
    area = rng.randint(96, 320) ** 2
    w = int(round(math.sqrt(area * aspect)))
    h = int(round(math.sqrt(area / aspect)))
    return max(48, w), max(48, h)


def image_example(rng, task, answers=None):
    """Renders one image for `task`; returns (image, answer). For the single-shape tasks,
    `answers` (a dict) also receives the answers of the other three questions about the image
    (used by multi-question conversations; the shape is then placed in a left/right third)."""
    from PIL import ImageDraw
    w, h = _canvas_size(rng)
    img, _ = _background(rng, w, h)
    draw = ImageDraw.Draw(img)
    m = min(w, h)
    shape = rng.choice(SHAPES)
    colour = rng.choice(list(COLOURS))
    if task in ("shape", "colour", "size", "position"):
        big = rng.random() < 0.5
        r = m * (rng.uniform(0.32, 0.42) if big else rng.uniform(0.10, 0.16))
        if task == "position" or answers is not None:
            left = rng.random() < 0.5
            cx = rng.uniform(r + 2, max(r + 3, w * 0.33)) if left else rng.uniform(
                min(w - r - 3, w * 0.67), w - r - 2)
        else:
            cx = rng.uniform(r + 2, w - r - 2)
        cy = rng.uniform(r + 2, h - r - 2)
        _draw_shape(draw, shape, cx, cy, r, COLOURS[colour], rng)
        all_answers = {"shape": f"A {shape}.", "colour": colour.capitalize() + ".",
                       "size": "Large." if big else "Small.",
                       "position": ("Left." if cx < w / 2 else "Right.")}
        if answers is not None:
            answers.update(all_answers)
        answer = all_answers[task]
    elif task == "count":
        n = rng.randint(1, 6)
        r = m * rng.uniform(0.07, 0.11)
        placed = []
        tries = 0
        while len(placed) < n and tries < 500:
            tries += 1
            cx, cy = rng.uniform(r + 2, w - r - 2), rng.uniform(r + 2, h - r - 2)
            if all((cx - x) ** 2 + (cy - y) ** 2 > (2.3 * r) ** 2 for x, y in placed):
                placed.append((cx, cy))
        for cx, cy in placed:
            _draw_shape(draw, shape, cx, cy, r, COLOURS[colour], rng)
        answer = str(len(placed))
    else:  # read_digit / read_word
        text = str(rng.randint(0, 9)) if task == "read_digit" else rng.choice(WORDS)
        size = int(m * (0.6 if task == "read_digit" else rng.uniform(0.25, 0.4)))
        size = min(size, int(0.9 * w / max(1, 0.62 * len(text))))
        font = _font(rng, max(12, size))
        box = draw.textbbox((0, 0), text, font=font)
        tw, th = box[2] - box[0], box[3] - box[1]
        x = rng.uniform(0, max(0, w - tw)) - box[0]
        y = rng.uniform(0, max(0, h - th)) - box[1]
        draw.text((x, y), text, fill=COLOURS[colour], font=font)
        answer = text
    return img, answer


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def _tone(rng, freq, seconds, amp):
    t = np.arange(int(seconds * RATE), dtype=np.float32) / RATE
    env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms fades
    return (amp * env * np.sin(2 * math.pi * freq * t + rng.uniform(0, 6.28))).astype(np.float32)


def tone_example(rng, task):
    nrng = np.random.default_rng(rng.getrandbits(32))
    amp = rng.uniform(0.2, 0.8)
    lead = np.zeros(int(rng.uniform(0.05, 0.3) * RATE), np.float32)
    if task == "tone_pitch":
        high = rng.random() < 0.5
        f = rng.uniform(900, 1600) if high else rng.uniform(150, 330)
        sig = np.concatenate([lead, _tone(rng, f, rng.uniform(0.4, 1.0), amp)])
        answer = "High." if high else "Low."
    else:
        n = rng.randint(1, 5)
        f = rng.uniform(400, 1200)
        parts = [lead]
        for _ in range(n):
            parts.append(_tone(rng, f, rng.uniform(0.08, 0.18), amp))
            parts.append(np.zeros(int(rng.uniform(0.12, 0.25) * RATE), np.float32))
        sig = np.concatenate(parts)
        answer = str(n)
    sig = sig + nrng.normal(0, rng.uniform(0.0, 0.02), sig.shape).astype(np.float32)
    return np.clip(sig, -1, 1).astype(np.float32), answer


class Speech:
    """espeak-ng renderings, resampled to 16 kHz mono by sox (`rate -v`), cached on disk by
    (text, voice, speed, pitch)."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        os.makedirs(cache_dir, exist_ok=True)
        for tool in ("espeak-ng", "sox"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} not found (scripts/setup --training installs it)")

    def say(self, text, voice, speed, pitch):
        key = hashlib.sha1(f"{text}|{voice}|{speed}|{pitch}".encode()).hexdigest()[:16]
        path = os.path.join(self.cache_dir, key + ".f32")
        if os.path.exists(path):
            return np.fromfile(path, "<f4")
        with tempfile.TemporaryDirectory() as tmp:
            raw = os.path.join(tmp, "a.wav")
            out = os.path.join(tmp, "b.raw")
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", raw,
                            text], check=True, capture_output=True)
            subprocess.run(["sox", raw, "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
                            out, "rate", "-v", str(RATE)], check=True, capture_output=True)
            a = np.fromfile(out, "<f4")
        # Trim leading/trailing silence to keep prompts short, leave 50 ms.
        loud = np.nonzero(np.abs(a) > 0.02)[0]
        if loud.size:
            a = a[max(0, loud[0] - 800): loud[-1] + 800]
        a = a.astype(np.float32)
        tmp_path = path + f".{os.getpid()}.tmp"
        a.tofile(tmp_path)
        os.replace(tmp_path, path)
        return a


def speech_example(rng, task, speech, split):
    if task == "spoken_digit":
        d = rng.randint(0, 9)
        text, answer = DIGIT_NAMES[d], str(d)
    else:
        text = rng.choice(SPOKEN_WORDS)
        answer = text
    voice = rng.choice(VOICES)
    # Held-out renderings use speeds/pitches the training split never draws (odd vs even).
    speed = rng.randrange(120, 200, 10) + (5 if split == "heldout" else 0)
    pitch = rng.randrange(20, 80, 10) + (5 if split == "heldout" else 0)
    sig = speech.say(text, voice, speed, pitch) * rng.uniform(0.5, 1.0)
    return sig.astype(np.float32), answer


# --------------------------------------------------------------------------------------------
# Text tasks
# --------------------------------------------------------------------------------------------


def heldout_pair(a, op, b):
    """One in ten arithmetic problems belongs to the held-out split only, so held-out arithmetic
    measures the operation, not memorised questions. The choice is a hash of the whole problem:
    a rule linear in the digits (as this once was, (31a + 17b) mod 10) holds out every problem
    whose ones digits form certain pairs, so training would never show, say, a 6 plus a 1."""
    digest = hashlib.sha256(f"{a}{op}{b}".encode()).digest()
    return digest[0] % 10 == 3


def arithmetic(rng, split="train"):
    while True:
        q, r, parts = _arithmetic_once(rng)
        if heldout_pair(parts[0], parts[1], parts[2]) == (split == "heldout"):
            return q, r, parts


def _arithmetic_once(rng):
    op = rng.choice(["+", "-", "*"])
    if op == "*":
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        r = a * b
    elif op == "+":
        a, b = rng.randint(0, 50), rng.randint(0, 50)
        r = a + b
    else:
        a = rng.randint(0, 50)
        b = rng.randint(0, a)
        r = a - b
    sym = {"+": "+", "-": "-", "*": "times"}[op]
    q = rng.choice([f"What is {a} {sym} {b}?", f"Compute {a} {sym} {b}.", f"{a} {sym} {b} = ?"])
    return q, str(r), (a, op, b, r)


def _thought(a, op, b, r):
    if op == "+":
        return f"{a} plus {b}: tens {a // 10 * 10} + {b // 10 * 10}, ones {a % 10} + {b % 10}. " \
               f"Total {r}."
    if op == "-":
        return f"{a} minus {b} leaves {r}."
    return f"{a} groups of {b} make {r}."


class Generator:
    def __init__(self, seed=0, split="train", speech_cache=None, tasks=None, weights=None,
                 multi_question=0.0):
        if split not in ("train", "heldout"):
            raise ValueError("split must be 'train' or 'heldout'")
        self.seed = seed
        self.split = split
        self.tasks = tasks or ALL_TASKS
        self.weights = weights
        # Probability that a single-shape image task becomes a conversation of 2-4 questions
        # about the same image (more supervised tokens per embedded image).
        self.multi_question = multi_question
        self._speech = None
        self._speech_cache = speech_cache or os.path.join(
            os.path.expanduser("~"), ".cache", "unigemma-nano", "speech")

    @property
    def speech(self):
        if self._speech is None:
            self._speech = Speech(self._speech_cache)
        return self._speech

    def rng(self, index):
        space = 0 if self.split == "train" else 1
        return random.Random(f"{self.seed}:{space}:{index}")

    def example(self, index, task=None):
        rng = self.rng(index)
        if task is None:
            task = rng.choices(self.tasks, weights=self.weights)[0]
        return self.make(rng, task)

    def make(self, rng, task):
        if task in SINGLE_SHAPE_TASKS and self.multi_question > 0 and \
                rng.random() < self.multi_question:
            return self._multi_question(rng, task)
        if task in IMAGE_TASKS:
            img, answer = image_example(rng, task)
            return self._media_question(rng, task, "image", img, answer)
        if task in ("tone_pitch", "beep_count"):
            sig, answer = tone_example(rng, task)
            return self._media_question(rng, task, "audio", sig, answer)
        if task in ("spoken_digit", "spoken_word"):
            sig, answer = speech_example(rng, task, self.speech, self.split)
            return self._media_question(rng, task, "audio", sig, answer)
        if task == "arithmetic":
            q, a, _ = arithmetic(rng, self.split)
            return Example(task, [{"role": "user", "content": q}], a + "<turn|>", a)
        if task == "thinking":
            q, a, parts = arithmetic(rng, self.split)
            target = "<|channel>thought\n" + _thought(*parts) + "<channel|>" + a + "<turn|>"
            return Example(task, [{"role": "user", "content": q}], target, a, thinking=True)
        if task == "spelling":
            w = rng.choice(WORDS)
            q = rng.choice([f"Spell the word {w}.", f"How do you spell {w}?", f"Spell {w}."])
            a = "-".join(w.upper())
            return Example(task, [{"role": "user", "content": q}], a + "<turn|>", a)
        if task == "letter_count":
            w = rng.choice(WORDS)
            if rng.random() < 0.5:
                q = rng.choice([f"How many letters are in {w}?",
                                f"Count the letters in the word {w}."])
                a = str(len(w))
            else:
                ch = rng.choice(sorted(set(w)) + ["e", "a", "o"])
                q = f"How many times does the letter {ch} appear in {w}?"
                a = str(w.count(ch))
            return Example(task, [{"role": "user", "content": q}], a + "<turn|>", a)
        if task in ("tool_call", "tool_answer", "no_tool"):
            return self._tool(rng, task)
        raise ValueError(f"unknown task '{task}'")

    def _media_question(self, rng, task, kind, data, answer):
        q = rng.choice(QUESTIONS[task])
        parts = [{"type": kind}, {"type": "text", "text": q}]
        if rng.random() < 0.25:
            parts.reverse()
        messages = [{"role": "user", "content": parts}]
        if rng.random() < 0.15:
            messages.insert(0, {"role": "system", "content": "Answer briefly."})
        return Example(task, messages, answer + "<turn|>", answer, media=[(kind, data)])

    def _multi_question(self, rng, task):
        answers = {}
        img, _ = image_example(rng, task, answers)
        others = [t for t in SINGLE_SHAPE_TASKS if t != task]
        rng.shuffle(others)
        order = others[: rng.randint(1, 3)] + [task]
        messages = [{"role": "user", "content": [{"type": "image"},
                                                 {"type": "text",
                                                  "text": rng.choice(QUESTIONS[order[0]])}]}]
        for prev, nxt in zip(order, order[1:]):
            messages.append({"role": "assistant", "content": answers[prev]})
            messages.append({"role": "user", "content": rng.choice(QUESTIONS[nxt])})
        return Example(task, messages, answers[task] + "<turn|>", answers[task],
                       media=[("image", img)])

    def _tool(self, rng, task):
        names = list(TOOLS)
        rng.shuffle(names)
        tools = [TOOLS[n] for n in names[: rng.randint(1, 3)]]
        if task == "no_tool":
            q, a, _ = arithmetic(rng, self.split)
            return Example(task, [{"role": "user", "content": q}], a + "<turn|>", a, tools=tools)
        tool = rng.choice([t["function"]["name"] for t in tools])
        city = rng.choice(CITIES)
        if tool == "get_weather":
            q = rng.choice([f"What is the weather in {city}?", f"How is the weather in {city}?",
                            f"Weather in {city} please."])
            args = {"city": city}
            temp = rng.randint(-5, 35)
            sky = rng.choice(SKIES)
            result = f"{temp} C, {sky}"
            answer = f"It is {temp} C and {sky} in {city}."
        elif tool == "get_time":
            q = rng.choice([f"What time is it in {city}?", f"Tell me the time in {city}."])
            args = {"city": city}
            hh, mm = rng.randint(0, 23), rng.randint(0, 59)
            result = f"{hh:02d}:{mm:02d}"
            answer = f"It is {hh:02d}:{mm:02d} in {city}."
        else:
            a, b = rng.randint(11, 99), rng.randint(11, 99)
            q = rng.choice([f"Use the tool to multiply {a} by {b}.", f"What is {a} times {b}? "
                            "Use the multiply tool."])
            args = {"a": a, "b": b}
            result = str(a * b)
            answer = f"{a} times {b} is {a * b}."
        call_text = "<|tool_call>call:" + tool + "{" + ",".join(
            k + ":" + chat.format_argument(args[k], False) for k in sorted(args)) + "}<tool_call|>"
        user = {"role": "user", "content": q}
        if task == "tool_call":
            return Example(task, [user], call_text + "<|tool_response>", call_text, tools=tools)
        call = {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": args}}]}
        response = {"role": "tool", "tool_call_id": "call_1", "name": tool, "content": result}
        return Example(task, [user, call, response], answer + "<turn|>", answer, tools=tools)


def write_wav(path, samples):
    import wave
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def main():
    import argparse
    import json
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", default="train", choices=["train", "heldout"])
    ap.add_argument("--show", type=int, default=0, help="print N examples")
    ap.add_argument("--dump", help="write N examples (prompt, target, media files) to DIR")
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--task", help="only this task")
    args = ap.parse_args()
    g = Generator(args.seed, args.split)
    n = args.show or args.n
    for i in range(n):
        ex = g.example(i, args.task)
        if args.dump:
            os.makedirs(args.dump, exist_ok=True)
            files = []
            for k, (kind, data) in enumerate(ex.media):
                name = f"{i:05d}_{k}.{'png' if kind == 'image' else 'wav'}"
                if kind == "image":
                    data.save(os.path.join(args.dump, name))
                else:
                    write_wav(os.path.join(args.dump, name), data)
                files.append(name)
            with open(os.path.join(args.dump, "examples.jsonl"), "a", encoding="utf-8") as f:
                f.write(json.dumps({"index": i, "task": ex.task, "prompt": ex.prompt(),
                                    "target": ex.target, "answer": ex.answer, "media": files,
                                    "messages": ex.messages, "tools": ex.tools,
                                    "thinking": ex.thinking}) + "\n")
        else:
            print(f"--- {i} {ex.task} media={[k for k, _ in ex.media]}")
            print(ex.prompt() + ex.target)


if __name__ == "__main__":
    main()
