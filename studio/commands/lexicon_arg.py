"""``--lexicon FILE``: the user's pronunciation list for commands that read text aloud."""

from __future__ import annotations

from pathlib import Path


def add_lexicon_argument(p) -> None:
    p.add_argument(
        "--lexicon",
        type=Path,
        default=None,
        metavar="FILE",
        help="your own pronunciations (lines 'en | word | ARPAbet' or 'zh | 词 | ci2'); "
        "default: pronunciations.txt in the workspace, when there is one",
    )


def resolve_lexicon(lexicon: Path | None, workspace: Path | None):
    """The :class:`UserLexicon` of ``--lexicon`` (must exist) or of the workspace's list (may be absent)."""
    from studio.errors import StudioError
    from studio.services.pronunciations import PronunciationService
    from studio.settings import default_workspace_dir
    from studio.text.user_lexicon import load_lexicon

    if lexicon is not None:
        if not lexicon.is_file():
            raise StudioError(f"The pronunciation list {lexicon} does not exist.")
        return load_lexicon(lexicon)
    return PronunciationService(workspace or default_workspace_dir()).lexicon()
