import pytest

from pipeline.config import load_config
from pipeline.data.actors import ActorMatcher


@pytest.fixture(scope="module")
def matcher():
    return ActorMatcher(load_config("configs/base.yaml").task)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Macron's plan was discussed.", ["macron"]),
        ("Macron\u2019s plan was discussed.", ["macron"]),
        ("THE FRENCH PRESIDENT spoke.", ["macron"]),
        ("The French leader met Zelenskiy in Kyiv.", ["macron", "zelensky", "ukraine_gov"]),
        ("Kremlin spokesman Dmitry Peskov said no.", ["kremlin"]),
        ("The Elysee said talks would go on.", ["macron"]),
        ("Putinism is not a person.", []),
        ("A neutral observer in Europe.", []),
        ("", []),
    ],
)
def test_alias_matching(matcher, text, expected):
    assert matcher.actors_in(text) == expected


def test_longest_alias_wins_and_spans_are_exact(matcher):
    text = "Russian President Vladimir Putin arrived."
    mentions = matcher.mentions(text)
    assert [(m.actor, text[m.start : m.end]) for m in mentions] == [
        ("putin", "Russian President"),
        ("putin", "Vladimir Putin"),
    ]


def test_alias_across_a_line_break(matcher):
    assert matcher.actors_in("the French\npresident said") == ["macron"]
