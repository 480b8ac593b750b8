"""`import edgefit.serve` stays light: torch loads only when a decoder is measured."""

from __future__ import annotations

import subprocess
import sys


def test_import_serve_is_light():
    heavy = "('torch', 'numpy', 'numba', 'onnxruntime')"
    code = f"import sys, edgefit.serve; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
