"""Training plumbing: batching, the drafter's batched teacher forcing against the one-query
inference convention (README-mtp §1.1), and export -> reload."""

import json
import os
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import torch  # noqa: E402

import data  # noqa: E402
import gemma4_torch as g  # noqa: E402
import tokenizer as tk  # noqa: E402
import train  # noqa: E402

torch.set_num_threads(1)
_state = {}


def setup_small():
    if "s" not in _state:
        gen = data.Generator(2, "train")
        texts = [gen.example(i, t).prompt() + gen.example(i, t).target
                 for i, t in enumerate(["arithmetic", "tool_call", "shape", "spelling"] * 60)]
        tok = tk.train(texts, vocab_size=1024)
        p = train.PRESETS["smoke"]
        tc = train.text_config(p, window=16)  # small window: the sliding masks matter
        tc.vocab_size = len(tok)
        model = g.Gemma4Unified(tc, g.MMConfig(mm_embed_dim=p["mm_dim"]))
        train.init_weights(model, 0)
        model.suppress_tokens = [tok.token_id("<audio|>"), tok.token_id("<image|>")]
        drafter = g.Gemma4Assistant(train.drafter_config(p, tc))
        train.init_weights(drafter, 1)
        _state["s"] = (tok, model.eval(), drafter.eval(), gen)
    return _state["s"]


class Batching(unittest.TestCase):
    def test_padding_and_labels(self):
        tok, model, _, gen = setup_small()
        a = train.encode_example(tok, gen.example(0, "arithmetic"), 70)
        b = train.encode_example(tok, gen.example(1, "shape"), 70)
        ids, soft, mask, blocks, valid, labels = train.collate(model, [a, b], 0)
        self.assertEqual(int(valid[0].sum()), len(a.ids))
        # Labels: exactly the target tokens (answer + stop token) are trained.
        n_target = len(tok.encode(gen.example(0, "arithmetic").target))
        self.assertEqual(int((labels[0] >= 0).sum()), n_target)
        self.assertEqual(labels[0, len(a.ids) - 2].item(), tok.token_id("<turn|>"))
        # The image's soft tokens form one vision block and are fed as embeddings.
        n_img = int((blocks[1] >= 0).sum())
        self.assertEqual(n_img, int(mask[1].sum()))
        self.assertGreater(n_img, 0)
        # A padded batch gives the same logits as the example alone.
        with torch.no_grad():
            both, _, _ = model(ids, soft, mask, blocks, valid)
            alone, _, _ = model(*train.collate(model, [a], 0)[:5])
        self.assertLess((both[0, :len(a.ids)] - alone[0]).abs().max().item(), 1e-4)

    def test_multi_question_conversations_train_every_answer(self):
        tok, model, _, _ = setup_small()
        gen = data.Generator(4, "train", multi_question=1.0)
        ex = gen.example(0, "size")
        self.assertGreaterEqual(len(ex.messages), 3)
        enc = train.encode_example(tok, ex, 70)
        _, _, _, _, _, labels = train.collate(model, [enc], 0)
        trained = tok.decode([int(t) for t in labels[0] if t >= 0])
        answers = [m["content"] for m in ex.messages if m["role"] == "assistant"]
        self.assertEqual(trained, "<turn|>".join(answers + [ex.answer]) + "<turn|>")

    def test_length_buckets_are_deterministic(self):
        tok, _, _, gen = setup_small()
        args = types.SimpleNamespace(bucket=2, batch=3, seed=5, budgets=[70])
        a = [[e.ids for e in train.length_bucketed_batch(args, tok, gen, s, 0)[0]]
             for s in range(4)]
        train._pool_cache.clear()
        b = [[e.ids for e in train.length_bucketed_batch(args, tok, gen, s, 0)[0]]
             for s in range(4)]
        self.assertEqual(a, b)


class DrafterTraining(unittest.TestCase):
    def test_batched_teacher_forcing_equals_single_query_drafting(self):
        tok, model, drafter, gen = setup_small()
        enc = train.encode_example(tok, gen.example(3, "tool_call"), 70)
        ids, soft, mask, blocks, valid, _ = train.collate(model, [enc], 0)
        T = ids.shape[1]
        with torch.no_grad():
            _, hidden, kvs = model(ids, soft, mask, blocks, valid, return_kv=True)
            kv_s, kv_f = kvs[4], kvs[5]
            # Batched form used by training: queries p = 1..Q, step 0.
            Q = T - 1 - 2
            pos = torch.arange(1, Q + 1)[None]
            a_s, a_f = g.drafter_masks(T, pos, model.config.sliding_window)
            batched, _ = drafter(model, ids[:, 1:Q + 1], hidden[:, :Q], pos, kv_s, kv_f, a_s, a_f)
            # Inference form: the target has cached positions 0..p-1 only.
            for p in (1, 10, 17, 40, Q):
                _, h_p, kv_p = model(ids[:, :p], return_kv=True)
                ps = torch.tensor([[p]])
                s_s, s_f = g.drafter_masks(p, ps, model.config.sliding_window)
                one, _ = drafter(model, ids[:, p:p + 1], h_p[:, -1:], ps, kv_p[4], kv_p[5], s_s,
                                 s_f)
                diff = (one[0, 0] - batched[0, p - 1]).abs().max().item()
                self.assertLess(diff, 1e-4, f"p={p}")

    def test_distillation_loss_is_finite_and_trains(self):
        tok, model, drafter, gen = setup_small()
        batch = [train.encode_example(tok, gen.example(i, "arithmetic"), 70) for i in range(4)]
        inp = train.collate(model, batch, 0)[:5]
        d = g.Gemma4Assistant(drafter.config)
        d.load_state_dict(drafter.state_dict())
        opt = torch.optim.AdamW(d.parameters(), lr=3e-3)
        losses = []
        for _ in range(6):
            loss = train.drafter_step_loss(model, d, *inp, k=2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.assertTrue(all(torch.isfinite(torch.tensor(losses))))
        self.assertLess(losses[-1], losses[0])


class Export(unittest.TestCase):
    def test_export_reload_gives_identical_logits(self):
        tok, model, drafter, gen = setup_small()
        with tempfile.TemporaryDirectory() as out:
            args = types.SimpleNamespace(out=out, name="nano-test", budgets=[70])
            paths = train.export(args, model, drafter, tok)
            m2 = g.load_hf_model(paths["hf"])
            d2 = g.load_hf_drafter(paths["assistant"])
            tok2 = tk.Tokenizer.load_hf(paths["hf"])
            self.assertEqual(sorted(m2.suppress_tokens), sorted(model.suppress_tokens))
            with open(os.path.join(paths["hf"], "processor_config.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f)["image_processor"]["max_soft_tokens"], 70)
        self.assertEqual(tok2.tokens, tok.tokens)
        enc = train.encode_example(tok, gen.example(4, "shape"), 70)
        inp = train.collate(model, [enc], 0)[:5]
        with torch.no_grad():
            a = model(*inp)[0]
            b = m2(*inp)[0]
        self.assertEqual((a - b).abs().max().item(), 0.0)
        for k, v in drafter.state_dict().items():
            self.assertTrue(torch.equal(v, d2.state_dict()[k]), k)


if __name__ == "__main__":
    unittest.main()
