"""The PyTorch model against the oracle pack (../shared/oracle): text logits, image preprocessing,
vision and audio embedders, a mixed image+audio prompt with the vision mask, one MTP draft round.

Run: /usr/bin/python3 -m unittest discover -s training/tests  (CTest: ug_training_tests).
Exits 77 (CTest "skipped") from run_tests.py when torch or the oracle is missing."""

import json
import os
import sys
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

import gemma4_torch as g  # noqa: E402

ORACLE = os.environ.get("UG_ORACLE_DIR", os.path.join(HERE, "..", "..", "..", "shared", "oracle"))
torch.set_num_threads(1)

_cache = {}


def oracle(path):
    return os.path.join(ORACLE, path)


def tiny_a():
    if "tiny" not in _cache:
        m = g.load_hf_model(oracle("models/tiny-a/hf"))
        g.load_gguf_projector(m, oracle("mm/model/mmproj-gemma4-tiny-a-f32.gguf"))
        _cache["tiny"] = m.eval()
    return _cache["tiny"]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def f32(path, shape=None):
    a = np.fromfile(oracle(path), "<f4")
    return a.reshape(shape) if shape else a


class TextCases(unittest.TestCase):
    def test_tiny_a_f32_logits_match_the_reference(self):
        m = tiny_a()
        n = 0
        with open(oracle("text/cases-tiny-a.jsonl")) as f:
            records = [json.loads(line) for line in f]
        for r in records:
            if r["variant"] != "f32":
                continue
            with torch.no_grad():
                logits, _, _ = m(torch.tensor([r["ids"]]))
            # Tier A (README-text §3.6): exact reference, every case.
            d = np.abs(logits[0, -1].numpy() - f32(r["files"]["ref_last"]))
            self.assertLessEqual(d.max(), 1e-3, r["case"])
            self.assertLessEqual(d.mean(), 1e-4, r["case"])
            # Tier B on every prompt position against llama.cpp.
            lc = f32(r["files"]["lc_all"], (r["n_tokens"], r["n_vocab"]))
            da = np.abs(logits[0].numpy() - lc)
            self.assertLessEqual(da.max(), 1e-2, r["case"])
            self.assertEqual(logits[0].argmax(-1).tolist(), r["lc_argmax"], r["case"])
            n += 1
        self.assertEqual(n, 7)


class Vision(unittest.TestCase):
    def test_resize_matches_the_hf_float_path(self):
        from PIL import Image
        meta = load_json(oracle("vision/vision_preprocess.json"))
        for name in ("astronaut.png", "grace_hopper.jpg", "mgs_rgba.png", "earth_strip_wide.png"):
            info = meta["images"][name]
            img = Image.open(oracle("vision/images/" + name))
            rgb = g.to_rgb_u8(img)
            h2, w2 = g.image_target_size(rgb.shape[0], rgb.shape[1], 70)
            mine = g.resize_u8(rgb, h2, w2)
            ref_path = f"vision/resized/{name.rsplit('.', 1)[0]}_b70_{h2}x{w2}.png"
            ref = np.asarray(Image.open(oracle(ref_path)).convert("RGB"))
            self.assertEqual(ref.shape, mine.shape, name)
            diff = np.abs(ref.astype(int) - mine.astype(int))
            self.assertLessEqual(diff.max(), 1, name)
            self.assertGreaterEqual((diff == 0).mean(), 0.999, name)
            self.assertEqual([h2, w2], info["budgets"]["70"]["target_hw"], name)

    def test_embedder_matches_numpy_reference(self):
        m = tiny_a()
        cases = {"grace_hopper": (9, 7), "chelsea": (6, 10)}
        for name, (rows, cols) in cases.items():
            patches = torch.from_numpy(f32(f"vision/embedder/{name}_b70_patches_f32.bin",
                                           (rows * cols, g.PATCH_VALUES)))
            pos = torch.tensor([[i % cols, i // cols] for i in range(rows * cols)])
            with torch.no_grad():
                e = m.embed_image(patches, pos).numpy()
            ref = f32(f"vision/embedder/{name}_b70_embd_numpy_f32.bin", e.shape)
            self.assertLessEqual(np.abs(e - ref).max(), 5e-4, name)
            self.assertLessEqual(np.abs(e - ref).mean(), 1e-5, name)

    def test_patches_from_png_equal_the_oracle_patches(self):
        from PIL import Image
        rgb = g.to_rgb_u8(Image.open(oracle("vision/resized/grace_hopper_b70_432x336.png")))
        p, pos = g.patchify(rgb)
        ref = f32("vision/embedder/grace_hopper_b70_patches_f32.bin", p.shape)
        self.assertEqual(np.abs(p.numpy() - ref).max(), 0.0)
        self.assertEqual(pos[8].tolist(), [1, 1])  # 7 columns: patch 8 is x=1, y=1


class Audio(unittest.TestCase):
    def test_embedder_matches_numpy_reference(self):
        m = tiny_a()
        for name in ("espeak_fox_16k", "conf_onlyperson_16k"):
            s, rate = g.read_wav(oracle(f"audio/files/{name}.wav"))
            self.assertEqual(rate, 16000)
            frames = g.audio_frames(s)
            with torch.no_grad():
                e = m.embed_audio(frames).numpy()
            ref = f32(f"audio/ref/{name}_embd_numpy_f32.bin", e.shape)
            self.assertEqual(e.shape[0], (len(s) + 639) // 640)
            self.assertLessEqual(np.abs(e - ref).max(), 1e-5, name)


class MixedPrompt(unittest.TestCase):
    def test_mixed_prompts_with_vision_mask(self):
        # Cases whose media are PNG/WAV (mm_audio_image's FLAC needs a decoder torch lacks).
        for name in ("mm_image_audio", "mm_two_images", "mm_wide_image", "text_chat", "text_long"):
            with self.subTest(case=name):
                self.check_case(name)

    def check_case(self, name):
        from PIL import Image
        m = tiny_a()
        case = load_json(oracle(f"mm/{name}/layout_and_logits.json"))
        ids = torch.tensor([case["ids"]])
        types = case["mm_token_type_ids"]
        T = len(types)
        soft = torch.zeros(1, T, m.config.hidden_size)
        mask = torch.tensor([[t != 0 for t in types]])
        blocks = torch.full((1, T), -1, dtype=torch.long)
        n_blocks = 0
        for seg in case["segments"]:
            if seg["type"] == "image":
                rgb = g.to_rgb_u8(Image.open(oracle(seg["file"])))
                p, pos = g.patchify(rgb)
                with torch.no_grad():
                    e = m.embed_image(p, pos)
                blocks[0, seg["start"]:seg["start"] + seg["n_tokens"]] = n_blocks
                n_blocks += 1
            elif seg["type"] == "audio":
                s, _ = g.read_wav(oracle(seg["file"]))
                with torch.no_grad():
                    e = m.embed_audio(g.audio_frames(s))
            else:
                continue
            self.assertEqual(e.shape[0], seg["n_tokens"])
            soft[0, seg["start"]:seg["start"] + seg["n_tokens"]] = e
        with torch.no_grad():
            logits, hidden, _ = m(ids, soft, mask, blocks)
        ref = f32("mm/" + case["logits_files"]["hf"])
        d = np.abs(logits[0, -1].numpy() - ref)
        self.assertLessEqual(d.max(), 5e-3)
        self.assertLessEqual(d.mean(), 1e-3)
        self.assertEqual(int(logits[0, -1].argmax()), case["argmax"]["hf"])
        href = f32("mm/" + case["hidden_final_norm_hf"]["file"], (T, m.config.hidden_size))
        self.assertLessEqual(np.abs(hidden[0].numpy() - href).max(), 5e-3)
        MixedPrompt.worst = max(getattr(MixedPrompt, "worst", 0.0), float(d.max()))
        if n_blocks:
            # The mask matters: the causal variant is far from the oracle.
            causal = f32("mm/" + case["logits_files"]["causal"])
            self.assertGreater(np.abs(causal - ref).max(), 0.2)


class Drafter(unittest.TestCase):
    def test_one_draft_round_matches_llamacpp(self):
        drafters = {pair: g.load_gguf_drafter(oracle(f"mtp/models/gemma4-{name}-f32.gguf"))
                    for pair, name in (("tiny-a", "tiny-a-assistant"),
                                       ("tiny-a-echo", "tiny-a-assistant-echo"))}
        for case_dir in ("mtp/tiny-a/p09/", "mtp/tiny-a/p16/", "mtp/tiny-a/p36/",
                         "mtp/tiny-a-echo/p30/"):
            with self.subTest(case=case_dir):
                self.check_round(case_dir, drafters[case_dir.split("/")[1]])

    def check_round(self, case_dir, d):
        m = tiny_a()
        case = load_json(oracle(case_dir + "case.json"))
        ids = torch.tensor([case["prompt_tokens"]])
        N = ids.shape[1]
        with torch.no_grad():
            logits, hidden, kvs = m(ids, return_kv=True)
            last = logits[0, -1].clone()
            for s in m.suppress_tokens or case["suppress_tokens"]:
                last[s] = float("-inf")
            t = int(last.argmax())
            self.assertEqual(t, case["target"]["t"])
            kv_s = kvs[max(i for i, l in enumerate(m.layers) if l.sliding)]
            kv_f = kvs[max(i for i, l in enumerate(m.layers) if not l.sliding)]
            pos = torch.tensor([[N]])
            allow_s, allow_f = g.drafter_masks(N, pos, m.config.sliding_window)
            tok = torch.tensor([[t]])
            h = hidden[:, -1:]
            drafted = []
            for s in range(4):
                dl, h = d(m, tok, h, pos, kv_s, kv_f, allow_s, allow_f)
                ref = f32(case_dir + f"step{s}_result_output.f32.bin")
                diff = np.abs(dl[0, 0].numpy() - ref)
                self.assertLessEqual(diff.max(), 1e-2, f"step {s}")
                self.assertLessEqual(diff.mean(), 2e-3, f"step {s}")
                href = f32(case_dir + f"step{s}_h_nextn.f32.bin")
                self.assertLessEqual(np.abs(h[0, 0].numpy() - href).max(), 1e-2, f"step {s}")
                tok = dl.argmax(-1)
                drafted.append(int(tok))
        self.assertEqual(drafted, case["draft"]["llamacpp_draft_tokens"])


if __name__ == "__main__":
    unittest.main()
