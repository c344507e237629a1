"""Inter-annotator agreement: Cohen's kappa over (unit, actor, target), a missing label counted as none."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.cli import main
from pipeline.config import TaskConfig, load_config
from pipeline.data.agreement import agreement, agreement_files, format_agreement
from pipeline.data.corpus import CorpusError, parse_corpus
from tests.conftest import write_jsonl

TASK = TaskConfig.model_validate(
    {
        "actors": [{"id": "a1", "name": "Actor One"}, {"id": "a2", "name": "Actor Two"}],
        "targets": [
            {"id": "t1", "name": "T1", "wording": "target one"},
            {"id": "t2", "name": "T2", "wording": "target two"},
            {"id": "t3", "name": "T3", "wording": "target three"},  # labelled by no one
        ],
    }
)


def unit(uid, labels=(), furniture=False):
    return {
        "id": uid,
        "text": f"text of {uid}",
        "furniture": furniture,
        "labels": [{"actor": a, "target": t, "label": lab} for a, t, lab in labels],
    }


# Two annotators on five units. u3 is furniture for A only (left out, listed); u4 is furniture for both.
# A pair one side did not label counts as none for that side: (u2, a2, t2) for B, (u5, a1, t1) for A.
CORPUS_A = [
    unit("u1", [("a1", "t1", "favor"), ("a1", "t2", "none")]),
    unit("u2", [("a1", "t1", "against"), ("a2", "t1", "none"), ("a2", "t2", "favor")]),
    unit("u3", furniture=True),
    unit("u4", furniture=True),
    unit("u5", [("a2", "t2", "against")]),
]
CORPUS_B = [
    unit("u1", [("a1", "t1", "favor"), ("a1", "t2", "favor")]),
    unit("u2", [("a1", "t1", "against"), ("a2", "t1", "none")]),
    unit("u3", [("a1", "t1", "favor")]),
    unit("u4", furniture=True),
    unit("u5", [("a1", "t1", "none")]),
]
# The items in sorted (unit, actor, target) order, with each side's label.
ITEMS = [
    (("u1", "a1", "t1"), "favor", "favor"),
    (("u1", "a1", "t2"), "none", "favor"),
    (("u2", "a1", "t1"), "against", "against"),
    (("u2", "a2", "t1"), "none", "none"),
    (("u2", "a2", "t2"), "favor", "none"),
    (("u5", "a1", "t1"), "none", "none"),
    (("u5", "a2", "t2"), "against", "none"),
]


@pytest.fixture
def files(tmp_path):
    return write_jsonl(tmp_path / "a.jsonl", CORPUS_A), write_jsonl(tmp_path / "b.jsonl", CORPUS_B)


def records(path):
    recs, issues = parse_corpus(path, TASK)
    assert issues == []
    return recs


def test_kappa_over_unit_actor_target_with_missing_as_none(files):
    result = agreement(records(files[0]), records(files[1]), TASK)
    ya = [x for _, x, _ in ITEMS]
    yb = [y for _, _, y in ITEMS]
    assert result.n_items == 7  # u3's label is not an item: A called the unit furniture
    assert result.observed == pytest.approx(4 / 7)
    assert result.kappa == pytest.approx(cohen_kappa_score(ya, yb))
    # By hand: p_o = 4/7; marginals A (favor 2, against 2, none 3), B (favor 2, against 1, none 4);
    # p_e = (2*2 + 2*1 + 3*4) / 49 = 18/49; kappa = (28/49 - 18/49) / (31/49).
    assert result.kappa == pytest.approx(10 / 31)
    assert result.furniture_disagreements == ["u3"]
    assert result.disagreements == [(*k, x, y) for k, x, y in ITEMS if x != y]
    assert result.disagreements == [
        ("u1", "a1", "t2", "none", "favor"),
        ("u2", "a2", "t2", "favor", "none"),
        ("u5", "a2", "t2", "against", "none"),
    ]


def test_kappa_by_target(files):
    result = agreement(records(files[0]), records(files[1]), TASK)
    # t3 has no item and gets no figure; t1 agrees throughout; t2 disagrees on all three items.
    assert list(result.kappa_by_target) == ["t1", "t2"]
    for target, kappa in result.kappa_by_target.items():
        idx = [i for i, (k, _, _) in enumerate(ITEMS) if k[2] == target]
        expected = cohen_kappa_score([ITEMS[i][1] for i in idx], [ITEMS[i][2] for i in idx])
        assert kappa == pytest.approx(expected), target
    assert result.kappa_by_target["t1"] == pytest.approx(1.0)
    # t2: p_o = 0; A (none, favor, against), B (favor, none, none): p_e = (1*1 + 1*2) / 9 = 1/3.
    assert result.kappa_by_target["t2"] == pytest.approx(-0.5)


def test_agreement_is_symmetric_up_to_the_sides(files):
    ab = agreement(records(files[0]), records(files[1]), TASK)
    ba = agreement(records(files[1]), records(files[0]), TASK)
    assert ba.kappa == pytest.approx(ab.kappa) and ba.kappa_by_target == pytest.approx(ab.kappa_by_target)
    assert ba.disagreements == [(u, a, t, y, x) for u, a, t, x, y in ab.disagreements]
    assert ba.furniture_disagreements == ab.furniture_disagreements


def test_files_and_format(files):
    result = agreement_files(str(files[0]), str(files[1]), TASK)
    assert result == agreement(records(files[0]), records(files[1]), TASK)
    assert format_agreement(result).splitlines() == [
        "items: 7  observed agreement: 0.571  Cohen's kappa: 0.323",
        "kappa by target: t1 1.000, t2 -0.500",
        "items either annotator labelled with a stance: 5, of which 2 agreed (0.40)",  # by hand from ITEMS
        "furniture disagreements: 1",
        "label disagreements: 3",
        "  A=none B=favor: 1",
        "  A=favor B=none: 1",
        "  A=against B=none: 1",
        "  u1 a1 t2: A=none B=favor",
        "  u2 a2 t2: A=favor B=none",
        "  u5 a2 t2: A=against B=none",
    ]


def test_files_of_different_units_are_refused(tmp_path, files):
    fewer = write_jsonl(tmp_path / "fewer.jsonl", CORPUS_B[:-1])
    with pytest.raises(ValueError, match=r"the two files cover different units \(e.g. \['u5'\]\)"):
        agreement_files(str(files[0]), str(fewer), TASK)


def test_an_invalid_file_raises_its_issues(tmp_path, files):
    bad = write_jsonl(tmp_path / "bad.jsonl", [*CORPUS_B[:-1], unit("u5", [("a1", "t1", "maybe")])])
    with pytest.raises(CorpusError, match=rf"{re.escape(str(bad))}:5: labels\[0\]\.label: expected one of"):
        agreement_files(str(files[0]), str(bad), TASK)


def test_cli_reports_an_invalid_file(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "text": "t", "labels": [{"actor": "nobody"}]}])
    assert main(["agreement", str(bad), str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{bad}:1: labels[0].actor: expected one of" in err


# ------------------------------------------------------------------ the seed corpus, against AGREEMENT.md

SEED_A = "seeds/agreement/annotator1_first_pass.jsonl"
SEED_B = "seeds/agreement/annotator2.jsonl"


def agreement_md() -> str:
    return Path("seeds/AGREEMENT.md").read_text(encoding="utf-8")


def md_figure(pattern: str) -> str:
    match = re.search(pattern, agreement_md(), re.MULTILINE)
    assert match, f"seeds/AGREEMENT.md no longer states {pattern!r}"
    return match.group(1)


def test_cli_on_the_seed_files_matches_agreement_md():
    kappa = md_figure(r"^\| \*\*Cohen's kappa\*\* \| \*\*([\d.]+)\*\* \|")
    n_items = md_figure(r"^\| \(sentence, actor, target\) items \| (\d+) \|")
    observed = md_figure(r"^\| observed agreement \| ([\d.]+) \|")
    by_target = md_figure(r"^\| kappa by target \| (.+?) \|")
    assert (kappa, n_items) == ("0.915", "567")  # the figures the issue quotes

    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "agreement", SEED_A, SEED_B], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"items: {n_items}  observed agreement: {observed}  Cohen's kappa: {kappa}"
    assert lines[1] == f"kappa by target: {by_target}"
    # AGREEMENT.md: "items either annotator labelled favor/against | 78, of which 67 agreed (0.86)"
    assert lines[2] == "items either annotator labelled with a stance: 78, of which 67 agreed (0.86)"
    assert lines[3] == "furniture disagreements: 0"  # "the annotators agreed on every furniture flag"
    n_adjudicated = int(md_figure(r"^## Adjudication \((\d+) disagreements\)"))
    assert lines[4] == f"label disagreements: {n_adjudicated}"


def test_seed_disagreements_are_the_adjudicated_ones():
    task = load_config("configs/base.yaml").task
    result = agreement_files(SEED_A, SEED_B, task)
    # Rows like "| 000-014 | macron, negotiations | favor | none | none | ...": unit, actor, target, A, B.
    rows = re.findall(r"^\| (\d{3})-(\d{3}) \| (\w+), (\w+) \| (\w+) \| (\w+) \|", agreement_md(), re.MULTILINE)
    table = [(f"{doc}-{idx}", actor, target, a, b) for doc, idx, actor, target, a, b in rows]
    short = {u: f"{u.split('_')[0]}-{u.rsplit('-', 1)[1]}" for u, *_ in result.disagreements}  # 000_8e3b...-014
    found = [(short[u], actor, t, a, b) for u, actor, t, a, b in result.disagreements]
    assert len(table) == 11 and sorted(found) == sorted(table)


def test_seed_units_and_stance_bearing_items_match_agreement_md():
    task = load_config("configs/base.yaml").task
    (a, issues_a), (b, issues_b) = parse_corpus(SEED_A, task), parse_corpus(SEED_B, task)
    assert issues_a == issues_b == []
    ra, rb = {r.id: r for r in a}, {r.id: r for r in b}
    n_furniture = sum(r.furniture for r in ra.values())
    assert md_figure(r"^\| units \| (\d+) \(") == str(len(ra)) == str(len(rb))
    assert md_figure(r"^\| units \| \d+ \((\d+) furniture") == str(n_furniture)
    items: dict[tuple[str, str, str], list[str]] = {}
    for side, recs in enumerate((ra, rb)):
        for rec in recs.values():
            for lab in rec.labels:
                items.setdefault((rec.id, lab.actor, lab.target), ["none", "none"])[side] = lab.label
    stance = [pair for pair in items.values() if set(pair) & {"favor", "against"}]
    agreed = [pair for pair in stance if pair[0] == pair[1]]
    stated = md_figure(r"^\| items either annotator labelled favor/against \| (\d+, of which \d+ agreed \([\d.]+\)) \|")
    assert stated == f"{len(stance)}, of which {len(agreed)} agreed ({len(agreed) / len(stance):.2f})"
    assert (len(stance), len(agreed)) == (78, 67)
