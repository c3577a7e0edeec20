"""The whole path on a few training steps: train.py -> HF export -> unigemma convert -> parity.py
(text, image, audio and tool prompts; MTP drafting and speculative rounds) against the engine.
Skipped when the unigemma binary is not built."""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.dirname(HERE)
REPO = os.path.dirname(TRAINING)


def cli():
    p = os.environ.get("UG_CLI") or os.path.join(REPO, "build", "release", "unigemma")
    return p if os.path.exists(p) else None


class EngineParity(unittest.TestCase):
    def test_exported_model_matches_the_engine(self):
        exe = cli()
        if not exe:
            self.skipTest("unigemma binary not built")
        with tempfile.TemporaryDirectory() as out:
            run = lambda args: subprocess.run([sys.executable] + args, capture_output=True,  # noqa
                                              text=True, cwd=REPO)
            r = run([os.path.join(TRAINING, "train.py"), "--out", out, "--preset", "smoke",
                     "--minutes", "5", "--max-steps", "3", "--batch", "4",
                     "--tokenizer-examples", "300", "--draft-k", "2", "--unigemma", exe])
            self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
            gg = os.path.join(out, "gguf")
            r = run([os.path.join(TRAINING, "parity.py"), "--hf", os.path.join(out, "hf"),
                     "--gguf", os.path.join(gg, "unigemma-nano-f32.gguf"),
                     "--mmproj", os.path.join(gg, "mmproj-unigemma-nano-f32.gguf"),
                     "--draft", os.path.join(gg, "unigemma-nano-assistant-f32.gguf"),
                     "--hf-draft", os.path.join(out, "hf-assistant"), "--unigemma", exe,
                     "--work", os.path.join(out, "parity")])
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
            self.assertEqual(r.stdout.count("PASS "), 8, r.stdout[-3000:])


if __name__ == "__main__":
    unittest.main()
