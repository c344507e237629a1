"""Text normalisation for ``model.input.normalize``.

Standard library only, so tools that run without the pipeline's dependencies
(``research/recipe_ablation.py`` on a bare GPU machine) use the very same function.
"""

from __future__ import annotations

import html
import re

HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
LINK = re.compile(r"\b(?:https?://|www\.)\S+")
SPACE = re.compile(r"\s+")


def normalize_tweet(text: str) -> str:
    """Decode HTML entities, replace @handles and links by placeholders, squeeze whitespace.

    Handles and links carry little stance and, split into word pieces, many tokens.
    """
    text = html.unescape(text)
    text = HANDLE.sub("@user", text)
    text = LINK.sub("http", text)
    return SPACE.sub(" ", text).strip()
