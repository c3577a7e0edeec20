"""Writes the example media shipped in models/examples/ (the README's main command asks the
bundled model about them): held-out examples of the colour/size, tone-pitch and spoken-digit tasks, with
their true answers in labels.json, and tools.json with the tool declarations the model was trained
with.

  /usr/bin/python3 training/demo_media.py --out models/examples --image 3 --tone 1 --digit 2

The indices pick held-out examples (data.Generator(0, "heldout")); the labels come from the
generator, not from any model.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import data  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image", type=int, default=0, help="held-out index of the shape image")
    ap.add_argument("--tone", type=int, default=0, help="held-out index of the tone clip")
    ap.add_argument("--digit", type=int, default=0, help="held-out index of the spoken digit")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    gen = data.Generator(args.seed, "heldout")
    labels = []

    # The colour, size and shape tasks draw the same image for the same index.
    colour = gen.example(args.image, "colour")
    size = gen.example(args.image, "size")
    colour.media[0][1].save(os.path.join(args.out, "shape.png"))
    labels.append({"file": "shape.png", "kind": "image", "question": "What colour is the shape?",
                   "answer": colour.answer})
    labels.append({"file": "shape.png", "kind": "image",
                   "question": "Is the shape large or small?", "answer": size.answer})

    for task, index, name, question in (
            ("tone_pitch", args.tone, "tone.wav", "Is the tone high or low?"),
            ("spoken_digit", args.digit, "digit.wav", "Which number is spoken?")):
        ex = gen.example(index, task)
        data.write_wav(os.path.join(args.out, name), ex.media[0][1])
        labels.append({"file": name, "kind": "audio", "question": question, "answer": ex.answer})

    with open(os.path.join(args.out, "labels.json"), "w", encoding="utf-8") as f:
        json.dump(labels, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "tools.json"), "w", encoding="utf-8") as f:
        json.dump(list(data.TOOLS.values()), f, indent=2)
        f.write("\n")
    for entry in labels:
        print(f"{entry['file']}: {entry['question']} -> {entry['answer']}")


if __name__ == "__main__":
    main()
