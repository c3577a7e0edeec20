"""A small Gemma-4-style BPE vocabulary: pieces learned by sentencepiece (BPE) on generated text,
laid out like the oracle's tiny-a vocabulary so the C++ engine reads it like a real Gemma 4 one.

Id layout (size V):
  0..4            <pad> <eos> <bos> <unk> <mask>               (real Gemma 4 ids)
  46..52, 98, 100, 101, 105, 106, 107
                  <|tool> <tool|> <|tool_call> <tool_call|> <|tool_response> <tool_response|> <|"|>
                  <|think|> <|channel> <channel|> <|turn> <turn|> "\\n"   (real Gemma 4 ids)
  238..493        byte tokens <0x00>..<0xFF>                     (real Gemma 4 ids)
  V-7..V-1        <|image> <image|> <|audio> <audio|> <|image|> <|audio|> <|video|>
                  (moved to the end, as in tiny-a; the engine finds them by text)
  the rest        newline runs, single characters, then sentencepiece's merged pieces by score;
                  "<unused_N>" if sentencepiece learns fewer pieces than there are free slots.

Merges: for every merged piece (in vocabulary order) every split into two vocabulary entries,
as Hugging Face's SentencePiece extractor does. Encoding (`Tokenizer.encode`) mirrors
src/tokenizer/tokenizer.h exactly: special-token partition (longest first), ' ' -> '▁', runs of
'\\n' vs other text, rank-ordered BPE, byte fallback. The training data is tokenized with it, and
tests compare it with `unigemma tokenize` on the exported tokenizer.json.
"""

import json
import os
import tempfile
from functools import lru_cache

SPACE = "\u2581"

FIXED = {
    0: ("<pad>", "control"), 1: ("<eos>", "control"), 2: ("<bos>", "control"),
    3: ("<unk>", "unknown"), 4: ("<mask>", "control"),
    46: ("<|tool>", "control"), 47: ("<tool|>", "control"),
    48: ("<|tool_call>", "user"), 49: ("<tool_call|>", "user"),
    50: ("<|tool_response>", "control"), 51: ("<tool_response|>", "user"),
    52: ('<|"|>', "user"), 98: ("<|think|>", "control"),
    100: ("<|channel>", "user"), 101: ("<channel|>", "user"),
    105: ("<|turn>", "control"), 106: ("<turn|>", "control"), 107: ("\n", "normal"),
}
MEDIA_TAIL = ["<|image>", "<image|>", "<|audio>", "<audio|>", "<|image|>", "<|audio|>", "<|video|>"]
BYTE_BASE = 238
SPECIAL_TEXTS = [t for t, kind in FIXED.values() if kind != "normal"] + MEDIA_TAIL
MAX_NEWLINE_RUN = 8


class Tokenizer:
    def __init__(self, tokens, types, merges):
        self.tokens = tokens  # id -> text
        self.types = types  # id -> "normal" | "control" | "user" | "unknown" | "byte" | "unused"
        self.merges = merges  # list of (left, right), rank = index
        self.ids = {}
        for i, t in enumerate(tokens):
            self.ids[t] = i  # duplicates: highest id wins, as in the engine
        self.ranks = {}
        for r, (a, b) in enumerate(merges):
            self.ranks.setdefault((a, b), r)
        self.specials_all = self._candidates({"control", "user", "unknown"})
        self.specials_user = self._candidates({"user"})
        self.glue = {a[-1] for a, b in merges if b.startswith(SPACE)}
        self.byte_ids = [self.ids[f"<0x{b:02X}>"] for b in range(256)]

    def _candidates(self, kinds):
        c = [i for i, k in enumerate(self.types) if k in kinds and self.tokens[i]]
        c.sort(key=lambda i: (-len(self.tokens[i].encode()), i))
        return [(self.tokens[i], i) for i in c]

    def __len__(self):
        return len(self.tokens)

    def token_id(self, text):
        return self.ids[text]

    @property
    def bos_id(self):
        return self.ids["<bos>"]

    # -- encoding -------------------------------------------------------------------------------
    def encode(self, text, parse_special=True):
        frags = [(text, None)]
        for s, sid in (self.specials_all if parse_special else self.specials_user):
            nxt = []
            for frag, fid in frags:
                if fid is not None or s not in frag:
                    nxt.append((frag, fid))
                    continue
                start = 0
                while True:
                    j = frag.find(s, start)
                    if j < 0:
                        break
                    if j > start:
                        nxt.append((frag[start:j], None))
                    nxt.append((s, sid))
                    start = j + len(s)
                if start < len(frag):
                    nxt.append((frag[start:], None))
            frags = nxt
        out = []
        for frag, fid in frags:
            if fid is not None:
                out.append(fid)
            else:
                self._encode_plain(frag, out)
        return out

    def _encode_plain(self, text, out):
        text = text.replace(" ", SPACE)
        i = 0
        while i < len(text):
            j = i
            nl = text[i] == "\n"
            while j < len(text) and (text[j] == "\n") == nl:
                j += 1
            run = text[i:j]
            if nl and run in self.ids:
                out.append(self.ids[run])
            elif nl:
                out.extend(self._bpe(run))
            else:
                # Cut before a '▁' unless a merge could join across it (exact, see tokenizer.h).
                start = 0
                for k in range(1, len(run)):
                    if run[k] == SPACE and run[k - 1] not in self.glue:
                        out.extend(self._bpe(run[start:k]))
                        start = k
                out.extend(self._bpe(run[start:]))
            i = j

    @lru_cache(maxsize=1 << 16)
    def _bpe(self, word):
        syms = list(word)
        while len(syms) > 1:
            best, best_rank = -1, None
            for k in range(len(syms) - 1):
                r = self.ranks.get((syms[k], syms[k + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = k, r
            if best < 0:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        ids = []
        for s in syms:
            if s in self.ids and self.types[self.ids[s]] not in ("byte",):
                ids.append(self.ids[s])
            else:
                ids.extend(self.byte_ids[b] for b in s.encode("utf-8"))
        return tuple(ids)

    def decode(self, ids, render_special=True):
        b = bytearray()
        for i in ids:
            kind = self.types[i]
            t = self.tokens[i]
            if kind == "byte":
                b.append(int(t[3:5], 16))
            elif kind in ("control", "unknown", "unused"):
                if render_special:
                    b.extend(t.encode())
            else:
                b.extend(t.replace(SPACE, " ").encode())
        return b.decode("utf-8", errors="replace")

    # -- export ---------------------------------------------------------------------------------
    def save_hf(self, folder, chat_template=None):
        os.makedirs(folder, exist_ok=True)
        vocab = {}
        added = []
        for i, (t, kind) in enumerate(zip(self.tokens, self.types)):
            if kind in ("control", "user", "unknown", "unused"):
                added.append({"id": i, "content": t, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False,
                              "special": kind in ("control", "unknown", "unused")})
            vocab[t] = i
        tj = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\n+|[^\n]+"},
                              "behavior": "Isolated", "invert": False},
            "post_processor": None,
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"}, {"type": "Fuse"}]},
            "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>",
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                      "vocab": vocab, "merges": [a + " " + b for a, b in self.merges]},
        }
        cfg = {
            "tokenizer_class": "GemmaTokenizer",
            "add_bos_token": False,
            "add_eos_token": False,
            "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>",
            "padding_side": "left",
            "clean_up_tokenization_spaces": False,
            "model_max_length": 4096,
            "added_tokens_decoder": {str(a["id"]): {k: v for k, v in a.items() if k != "id"}
                                     for a in added},
        }
        if chat_template:
            cfg["chat_template"] = chat_template
        for name, obj in (("tokenizer.json", tj), ("tokenizer_config.json", cfg)):
            tmp = os.path.join(folder, name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(obj, f, ensure_ascii=False, indent=1)
            os.replace(tmp, os.path.join(folder, name))

    @staticmethod
    def load_hf(folder):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        n = len(tj["model"]["vocab"])
        tokens = [None] * n
        for t, i in tj["model"]["vocab"].items():
            tokens[i] = t
        types = ["byte" if len(t) == 6 and t.startswith("<0x") and t.endswith(">") else "normal"
                 for t in tokens]
        for a in tj["added_tokens"]:
            kind = "control" if a["special"] else "user"
            if a["content"] == "<unk>":
                kind = "unknown"
            elif a["content"].startswith("<unused_"):
                kind = "unused"
            types[a["id"]] = kind
        merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m)
                  for m in tj["model"]["merges"]]
        return Tokenizer(tokens, types, merges)


def train(texts, vocab_size=2048, seed=0, sp_input_limit=200000):
    """Learns pieces with sentencepiece BPE on `texts` (the rendered conversations) and returns a
    Tokenizer with the id layout above."""
    import sentencepiece as spm

    assert vocab_size >= 1024, "the fixed Gemma ids need at least 1024 slots"
    tokens = [None] * vocab_size
    types = [None] * vocab_size
    for i, (t, kind) in FIXED.items():
        tokens[i], types[i] = t, kind
    for b in range(256):
        tokens[BYTE_BASE + b], types[BYTE_BASE + b] = f"<0x{b:02X}>", "byte"
    for k, t in enumerate(MEDIA_TAIL):
        tokens[vocab_size - len(MEDIA_TAIL) + k], types[vocab_size - len(MEDIA_TAIL) + k] = t, "control"
    free = [i for i in range(vocab_size) if tokens[i] is None]

    # Plain text lines without special tokens (merges never cross a special token or a newline).
    lines = []
    chars = {}
    for text in texts:
        for s in SPECIAL_TEXTS:
            text = text.replace(s, "\n")
        for line in text.split("\n"):
            if line:
                lines.append(line)
                for ch in line.replace(" ", SPACE):
                    chars[ch] = chars.get(ch, 0) + 1
    base = ["\n" * k for k in range(2, MAX_NEWLINE_RUN + 1)]
    base += [ch for ch, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))]
    base = base[: len(free)]

    # sentencepiece's size counts the characters, <unk> and the special tokens (user-defined
    # symbols there, so it never learns pieces that overlap them; they are placed above).
    n_sp = len(free) - len(base) + len(chars) + len(SPECIAL_TEXTS)
    with tempfile.TemporaryDirectory() as tmp:
        inp = os.path.join(tmp, "lines.txt")
        import random
        rng = random.Random(seed)
        sample = lines if len(lines) <= sp_input_limit else rng.sample(lines, sp_input_limit)
        with open(inp, "w", encoding="utf-8") as f:
            for line in sample:
                f.write(line + "\n")
        prefix = os.path.join(tmp, "sp")
        spm.SentencePieceTrainer.train(
            input=inp, model_prefix=prefix, model_type="bpe", vocab_size=n_sp,
            character_coverage=1.0, split_digits=True, add_dummy_prefix=False,
            remove_extra_whitespaces=False, normalization_rule_name="identity",
            hard_vocab_limit=False, byte_fallback=False, split_by_whitespace=True,
            max_sentence_length=8192, num_threads=1, minloglevel=2,
            user_defined_symbols=[t for t in SPECIAL_TEXTS if t != "<unk>"],
            unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        pieces = []
        for i in range(sp.get_piece_size()):
            p = sp.id_to_piece(i)
            if sp.is_unknown(i) or sp.is_control(i) or sp.is_unused(i) or sp.is_byte(i) or \
                    p in SPECIAL_TEXTS:
                continue
            if len(p) > 1:
                pieces.append((sp.get_score(i), i, p))
        pieces.sort(key=lambda x: (-x[0], x[1]))
    seen = set(t for t in tokens if t is not None)
    order = []
    for t in base + [p for _, _, p in pieces]:
        if t not in seen:
            seen.add(t)
            order.append(t)
    order = order[: len(free)]
    for slot, t in zip(free, order):
        tokens[slot], types[slot] = t, "normal"
    for k, slot in enumerate(free[len(order):]):
        tokens[slot], types[slot] = f"<unused_{k}>", "unused"

    # Merges: every split of every multi-character normal piece into two vocabulary entries,
    # ordered by the piece's rank in `order` (earlier pieces merge first), then by left, right.
    rank = {t: r for r, t in enumerate(order)}
    merges = []
    for t in order:
        if len(t) < 2 or t.startswith("\n"):
            continue
        splits = [(rank[t[:k]], rank[t[k:]], t[:k], t[k:]) for k in range(1, len(t))
                  if t[:k] in rank and t[k:] in rank]
        splits.sort()
        merges.extend((a, b) for _, _, a, b in splits)
    # Newline runs are tokens of their own; longer runs merge from single newlines.
    return Tokenizer(tokens, types, merges)
