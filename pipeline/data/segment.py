"""Sentence segmentation for news text, with character offsets and page-furniture flags.

Hand-written rather than a library's: the usable segmenters either download models at
run time (nltk's punkt, spaCy) or split inside quotations, and stance needs a quoted
passage kept with its attribution ("... it will be necessary," Macron said). The rules:

* a blank line always ends a unit; a single line break does too, unless the next line
  starts in lower case (a hard-wrapped sentence);
* a unit ends after ``.``, ``!``, ``?`` or ``…`` (plus closing quotes or brackets) when
  whitespace and then an upper-case letter, a digit or an opening quote follow;
* never inside an open double quotation (a multi-sentence quote stays one unit); a quote
  left open is closed at the end of its paragraph, as news style leaves it;
* never after a known abbreviation ("Mr.", "Feb. 24", "Gen.") or an initial ("John F.");
  after a dotted acronym ("U.S.", "D.C.") only where a new sentence clearly starts: the
  next word is a usual sentence opener ("The", "He", ...) or the acronym is a noun
  ("the U.S.") followed by a capitalised word that is not a title or institution.

Every unit keeps its offsets, so ``text[start:end] == sentence.text`` always holds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "gen",
        "sen",
        "rep",
        "gov",
        "lt",
        "col",
        "sgt",
        "capt",
        "maj",
        "adm",
        "cmdr",
        "st",
        "jr",
        "sr",
        "rev",
        "hon",
        "pres",
        "vs",
        "etc",
        "al",
        "approx",
        "dept",
        "est",
        "fig",
        "inc",
        "corp",
        "co",
        "ltd",
        "no",
        "nos",
        "vol",
        "op",
        "ed",
        "eds",
        "pp",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mon",
        "tue",
        "tues",
        "wed",
        "thu",
        "thurs",
        "fri",
        "sat",
        "sun",
    ]
)
OPENERS = frozenset(
    [
        "the",
        "a",
        "an",
        "he",
        "she",
        "it",
        "they",
        "we",
        "i",
        "you",
        "this",
        "that",
        "these",
        "those",
        "there",
        "his",
        "her",
        "its",
        "their",
        "our",
        "my",
        "but",
        "and",
        "so",
        "yet",
        "or",
        "however",
        "meanwhile",
        "still",
        "also",
        "in",
        "on",
        "at",
        "for",
        "after",
        "before",
        "when",
        "while",
        "if",
        "as",
        "although",
        "though",
        "since",
        "because",
        "what",
        "who",
        "why",
        "how",
        "where",
    ]
)
# Words that follow an acronym inside one noun phrase ("the U.S. State Department").
ACRONYM_HEADS = frozenset(
    [
        "president",
        "presidents",
        "secretary",
        "state",
        "senate",
        "congress",
        "house",
        "army",
        "navy",
        "air",
        "marine",
        "marines",
        "department",
        "embassy",
        "ambassador",
        "treasury",
        "government",
        "administration",
        "envoy",
        "envoys",
        "forces",
        "military",
        "defense",
        "defence",
        "officials",
        "official",
        "intelligence",
        "troops",
        "soldiers",
        "special",
        "national",
        "central",
        "supreme",
        "federal",
        "justice",
        "court",
        "capitol",
        "dollar",
        "dollars",
        "economy",
        "ambassador",
    ]
)
OPEN_QUOTES = "“‘«"
CLOSE_QUOTES = "”’»"
CLOSERS = "\"'”’»)]"

_END = re.compile(r"(?:[.!?]+|…)[\"'”’»)\]]*(?=\s)")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.){2,}$")

# Page furniture: appeals, sign-ups, captions, credits, link lines. A heuristic for new
# text; the gold annotations carry a human decision per sentence.
FURNITURE_PATTERNS = [
    r"\bnewsletter\b",
    r"\bsubscribe(rs?)?\b",
    r"\bsign up\b",
    r"^support (us|the [A-Z]\w+)",
    r"\bdonat(e|ion)\b",
    r"\bread more\b",
    r"\bread the (full )?(article|story)\b",
    r"\bprivacy policy\b",
    r"\bremind me later\b",
    r"\b(pool |ap |afp |getty |reuters )?photos? (by|credit|courtesy)\b",
    r"^\(?(photo|image|video|caption)\s*:",
    r",\s*(left|right|center|centre|second from (left|right))\s*[,)]",
    r"^\W*(share|follow us|advertisement|click here)\b",
    r"^[A-Z][\w.-]+/[A-Z][\w .-]+$",  # "Shutterstock/Gints Ivuskans"
]
_FURNITURE = [re.compile(p, re.IGNORECASE) for p in FURNITURE_PATTERNS]
# After one of these, what follows is the outlet's, not the article's. In the document's last
# third that holds to the end (an appeal's own sentences can be long); earlier, the tail ends at
# the first sentence of RESUME_WORDS words or more that is not furniture itself: the box sat in
# the middle of the article, and the article goes on after it.
TAIL_SHARE = 2 / 3
RESUME_WORDS = 15
_TAIL_START = re.compile(r"^(sign up for|a message from|read the (full )?article on)", re.IGNORECASE)


@dataclass(frozen=True)
class Sentence:
    """One unit of text: ``id`` is ``<doc_id>-<index:03d>``; offsets index the document."""

    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    paragraph: int
    furniture: bool

    def to_dict(self) -> dict:
        return asdict(self)


def sentence_id(doc_id: str, index: int) -> str:
    return f"{doc_id}-{index:03d}"


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """Spans of blocks separated by line breaks (see module docstring for the wrap rule)."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"[^\n]+", text):
        start, end = match.span()
        line = text[start:end]
        if not line.strip():
            continue
        gap = text[spans[-1][1] : start] if spans else ""
        continues = spans and gap.count("\n") == 1 and line.lstrip()[:1].islower()
        if continues:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def _quote_open_at(text: str) -> list[bool]:
    """For each character, whether a double quotation is open just after it."""
    state = False
    out = []
    for i, ch in enumerate(text):
        if ch == "“" or ch == "«":
            state = True
        elif ch == "”" or ch == "»":
            state = False
        elif ch == '"':
            prev = text[i - 1] if i else " "
            state = prev.isspace() or prev in "([—–-" if not state else False
        out.append(state)
    return out


def _is_boundary(block: str, dot_end: int, after: int, quote_open: list[bool]) -> bool:
    """Whether the candidate ending at ``dot_end`` (punctuation + closers) ends a sentence."""
    if quote_open[dot_end - 1]:
        return False
    nxt = block[after:].lstrip()
    if not nxt:
        return True
    first = nxt[0]
    if not (first.isupper() or first.isdigit() or first in OPEN_QUOTES or first in "\"'(["):
        return False
    token_match = re.search(r"\S+$", block[:dot_end])
    token = token_match.group(0).rstrip(CLOSERS) if token_match else ""
    if not token.endswith(".") or token.endswith("..") or len(token) < len(token_match.group(0)):
        return True  # "!", "?", an ellipsis, or a period closed by a quote or bracket
    word = token.rstrip(".").lstrip("(\"'“‘[")
    next_word = re.match(r"[\"'“‘(\[]*([\w'’-]+)", nxt)
    next_word = next_word.group(1) if next_word else ""
    opener_follows = next_word.lower() in OPENERS
    if word.lower() in ABBREVIATIONS:
        return False
    if len(word) == 1 and word.isupper():  # an initial, "John F. Kennedy"
        return opener_follows
    if _ACRONYM.search(word + "."):
        if opener_follows:
            return True
        preceded_by_the = re.search(r"\bthe\s+\S+$", block[:dot_end], re.IGNORECASE) is not None
        return preceded_by_the and next_word[:1].isupper() and next_word.lower() not in ACRONYM_HEADS
    return True


def split_block(block: str) -> list[tuple[int, int]]:
    """Sentence spans (start, end) within one paragraph block, whitespace trimmed."""
    quote_open = _quote_open_at(block)
    spans = []
    start = 0
    for match in _END.finditer(block):
        if _is_boundary(block, match.end(), match.end(), quote_open):
            spans.append((start, match.end()))
            start = match.end()
    spans.append((start, len(block)))
    out = []
    for s, e in spans:
        seg = block[s:e]
        if not seg.strip():
            continue
        s += len(seg) - len(seg.lstrip())
        e -= len(seg) - len(seg.rstrip())
        out.append((s, e))
    return out


def is_furniture(text: str) -> bool:
    """Heuristic flag for page furniture (appeals, captions, credits, link lines)."""
    stripped = text.strip().lstrip(">").strip()
    if any(p.search(stripped) for p in _FURNITURE):
        return True
    # A wire-service credit line on its own: "TASS", "AP", "REUTERS".
    return bool(re.fullmatch(r"[A-Z]{2,8}", stripped))


def segment(text: str, doc_id: str) -> list[Sentence]:
    """Split an article into sentences with stable ids and offsets into ``text``."""
    sentences: list[Sentence] = []
    in_tail = final_tail = False
    for p_index, (p_start, p_end) in enumerate(_paragraphs(text)):
        block = text[p_start:p_end]
        for s, e in split_block(block):
            start, end = p_start + s, p_start + e
            unit = text[start:end]
            if _TAIL_START.match(unit.lstrip("> ")):
                in_tail, final_tail = True, start >= TAIL_SHARE * len(text.rstrip())
            elif in_tail and not final_tail and len(unit.split()) >= RESUME_WORDS and not is_furniture(unit):
                in_tail = False
            index = len(sentences)
            sentences.append(
                Sentence(
                    id=sentence_id(doc_id, index),
                    doc_id=doc_id,
                    index=index,
                    start=start,
                    end=end,
                    text=unit,
                    paragraph=p_index,
                    furniture=in_tail or is_furniture(unit),
                )
            )
    return sentences
