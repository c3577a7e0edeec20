"""CTest entry point for the training tests: exit 77 (skipped) with a message when PyTorch,
sentencepiece or the oracle pack is missing, otherwise the unittest result."""

import importlib.util
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    for module, package in (("torch", "python3-torch"), ("numpy", "python3-numpy"),
                            ("PIL", "python3-pil"), ("sentencepiece", "python3-sentencepiece")):
        if importlib.util.find_spec(module) is None:
            print(f"training tests skipped: Python module '{module}' not installed "
                  f"(scripts/setup --training installs {package})")
            return 77
    oracle = os.environ.get("UG_ORACLE_DIR") or os.path.join(HERE, "..", "..", "..", "shared",
                                                             "oracle")
    if not os.path.isdir(os.path.join(oracle, "models", "tiny-a", "hf")):
        print(f"training tests skipped: oracle pack not found at {oracle} (set UG_ORACLE_DIR)")
        return 77
    os.environ["UG_ORACLE_DIR"] = oracle
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch loads the BLAS
    suite = unittest.defaultTestLoader.discover(HERE, pattern="test_*.py")
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
