from pathlib import Path

import pytest

from pipeline.data.segment import is_furniture, segment


def texts(text: str) -> list[str]:
    return [s.text for s in segment(text, "doc")]


def test_offsets_index_the_original_text_and_ids_are_stable():
    text = "First one here.  Second one.\n\n\nThird, after blank lines."
    sents = segment(text, "d1")
    assert [s.text for s in sents] == ["First one here.", "Second one.", "Third, after blank lines."]
    assert all(text[s.start : s.end] == s.text for s in sents)
    assert [s.id for s in sents] == ["d1-000", "d1-001", "d1-002"]
    assert [s.paragraph for s in sents] == [0, 0, 1]
    assert [s.id for s in segment(text, "d1")] == [s.id for s in sents]


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Macron met Dr. Smith in Paris.",
        "The invasion began on Feb. 24 and went on.",
        "He flew to Washington, D.C., on Monday.",
        "Aid from the U.S. Congress arrived.",
        "The U.S. State Department said so.",
        "President John F. Kennedy spoke.",
        "He said ... and then left.",
        "The 2% figure was $1.3 billion.",
    ],
)
def test_abbreviations_initials_and_numbers_do_not_split(text):
    assert texts(text) == [text]


def test_acronym_at_sentence_end_splits_before_a_new_sentence():
    text = "He traded letters with the U.S. Moscow then sent its demands. It was the U.S. The end."
    assert texts(text) == [
        "He traded letters with the U.S.",
        "Moscow then sent its demands.",
        "It was the U.S.",
        "The end.",
    ]


def test_quote_spanning_sentences_stays_with_its_attribution():
    text = (
        "Macron replied: \u201cI tell you that at some point it will be necessary. "
        "That's why I refused maximalist positions.\u201d Then he left."
    )
    assert texts(text) == [
        "Macron replied: \u201cI tell you that at some point it will be necessary. "
        "That's why I refused maximalist positions.\u201d",
        "Then he left.",
    ]


def test_straight_and_mixed_quotes_and_attribution_after_the_quote():
    text = '"We are not ready. We will not cede land," he said. "Never." Zelensky added nothing.'
    assert texts(text) == ['"We are not ready. We will not cede land," he said.', '"Never."', "Zelensky added nothing."]
    mixed = '"Macron suggested concessions,\u201d Zelensky said. \u201cWe are not ready.\u201d'
    assert texts(mixed) == ['"Macron suggested concessions,\u201d Zelensky said.', "\u201cWe are not ready.\u201d"]


def test_unclosed_quote_is_closed_at_the_paragraph_end():
    text = "\u201cFirst paragraph of a long quote. Still quoting.\n\nA new paragraph. Second sentence."
    assert texts(text) == [
        "\u201cFirst paragraph of a long quote. Still quoting.",
        "A new paragraph.",
        "Second sentence.",
    ]


def test_single_line_breaks_split_headlines_but_join_wrapped_lines():
    text = "A Headline Without Period\nThe body starts here and\ncontinues on a wrapped line."
    assert texts(text) == ["A Headline Without Period", "The body starts here and\ncontinues on a wrapped line."]


@pytest.mark.parametrize(
    "line",
    [
        "Sign up for our free weekly newsletter",
        "Read more",
        "(Pool photo by Thibault Camus)",
        "Ukrainian President Volodymyr Zelensky, left, and French President Emmanuel Macron.",
        "Shutterstock/Gints Ivuskans",
        "TASS",
        "Support The Moscow Times!",
    ],
)
def test_furniture_is_flagged(line):
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "Macron Says Putin Must 'Return to the Table' for Ukraine Talks",
        "Macron said France would support Ukraine's territorial integrity.",
        "He read the report and said more talks were needed.",
    ],
)
def test_article_text_is_not_furniture(line):
    assert not is_furniture(line)


def test_everything_after_an_outlet_appeal_is_furniture():
    text = "Body sentence one.\n\nSign up for our newsletter\n\nDear readers,\n\nWe need your help."
    flags = [s.furniture for s in segment(text, "d")]
    assert flags == [False, True, True, True]


def test_seed_articles_segment_with_exact_offsets():
    for path in sorted(Path("seeds").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        sents = segment(text, path.stem)
        assert sents, path
        assert all(text[s.start : s.end] == s.text and s.text == s.text.strip() for s in sents)
        # Nothing but whitespace is left between units.
        covered = "".join(text[a.end : b.start] for a, b in zip(sents, sents[1:]))
        assert covered.strip() == ""


def test_a_sign_up_box_mid_article_hides_nothing_after_it():
    body = " ".join(
        f"In paragraph {i}, the reporter wrote that Macron had spoken at length about the prospect of talks."
        for i in range(6)
    )
    text = f"{body}\n\nSign up for our daily newsletter here.\n\n{body}\n"
    units = segment(text, "doc")
    box = [u for u in units if u.text.startswith("Sign up")]
    assert len(box) == 1 and box[0].furniture
    after = [u for u in units if u.start > box[0].end]
    assert after and not any(u.furniture for u in after)
    tail = segment(f"{body}\n\nSign up for our daily newsletter here.\n\nWe rely on readers like you.\n", "doc")
    assert [u.furniture for u in tail][-2:] == [True, True]  # at the end, the rest is the outlet's
