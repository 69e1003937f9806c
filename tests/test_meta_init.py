"""Models built on the meta device (every checkpoint load) cost no random numbers, and never import PyTorch's
compiler machinery (``torch._dynamo``, ~0.9 s of a process's first voice load); built anywhere else they start from
exactly the random weights PyTorch's own layers would give."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import torch
from torch import nn

from studio.models.meta_init import embedding, randn


def test_loading_a_voice_stays_off_the_reference_operators(golden, tiny_s2_pth, tmp_path):
    gpt = shutil.copy(golden / "tiny_s1.ckpt", tmp_path / "voice.ckpt")
    sovits = shutil.copy(tiny_s2_pth, tmp_path / "voice.pth")
    code = (
        "import sys\n"
        "from studio.models.text2semantic_checkpoint import load_text2semantic\n"
        "from studio.models.sovits.checkpoint import load_sovits\n"
        "from studio.models.content_encoder import ContentEncoder\n"
        "for _ in range(2):\n"  # the first load writes the weights caches, the second maps them
        f"    load_text2semantic({str(gpt)!r}, cache=True)\n"
        f"    load_sovits({str(sovits)!r}, cache=True)\n"
        f"ContentEncoder({str(golden / 'hf_tiny_hubert')!r})\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo')))\n"
    )
    env = dict(os.environ, STUDIO_CACHE_DIR=str(tmp_path / "cache"), STUDIO_WEIGHTS_CACHE="user")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
    assert len(list((tmp_path / "cache").rglob("*voice*.studio.safetensors"))) == 2, "no weights caches written"


def test_off_the_meta_device_the_initial_weights_are_pytorchs():
    torch.manual_seed(5)
    ours = embedding(17, 6).weight.detach().clone(), randn(3, 4, scale=0.25)
    torch.manual_seed(5)
    theirs = nn.Embedding(17, 6).weight.detach().clone(), torch.randn(3, 4) * 0.25
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    with torch.device("meta"):
        assert embedding(17, 6).weight.is_meta and randn(3, 4, scale=0.25).is_meta
