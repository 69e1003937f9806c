"""The missing-models check: any complete base version (v2, v2Pro, v2ProPlus) is enough; HuBERT/BERT are shared."""

from __future__ import annotations

from pathlib import Path

from studio import pretrained as layout
from studio.pretrained import PretrainedAssets


def _copy_without(source: Path, target: Path, skip: str) -> Path:
    """The tiny v2ProPlus base folder (its top-level entries symlinked) without the folder ``skip``."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name != skip:
            (target / item.name).symlink_to(item.resolve())
    return target


def test_a_complete_v2proplus_base_alone_is_not_reported_missing(tiny_v2proplus_pretrained):
    assets = PretrainedAssets(tiny_v2proplus_pretrained)
    assert assets.missing()  # the v2 files really are absent: the old check warned here
    assert assets.best_base() == "v2ProPlus"
    assert assets.missing_for_any_base() == []


def test_a_v2proplus_base_without_its_sv_model_names_that_file(tiny_v2proplus_pretrained, tmp_path):
    root = _copy_without(tiny_v2proplus_pretrained, tmp_path / "pre", layout.SV_DIR)
    missing = [f.path for f in PretrainedAssets(root).missing_for_any_base()]
    assert missing == [layout.SV_CKPT]  # the closest base's one gap, not the five v2 files


def test_shared_files_missing_are_reported_even_with_a_base(tiny_v2proplus_pretrained, tmp_path):
    root = _copy_without(tiny_v2proplus_pretrained, tmp_path / "pre", layout.HUBERT_DIR)
    missing = {f.path for f in PretrainedAssets(root).missing_for_any_base()}
    assert missing == {f"{layout.HUBERT_DIR}/{n}" for n in ("config.json", "preprocessor_config.json",
                                                            "pytorch_model.bin")}  # fmt: skip


def test_an_empty_folder_names_the_smallest_complete_set(tmp_path):
    """Nothing at all: the v2 base has the fewest files to fetch (and is plain `studio download`), so those are
    named, and no other version's files besides."""
    missing = {f.path for f in PretrainedAssets(tmp_path).missing_for_any_base()}
    assert missing == {f.path for f in layout.files_for("v2") if f.required}
    assert layout.SOVITS_V2PROPLUS not in missing
