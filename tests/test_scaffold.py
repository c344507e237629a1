"""`scaffold`: an annotation skeleton for a folder of articles, every sentence with offsets,
page furniture flagged, each mentioned actor labelled none on every target; it validates as is."""

import json
import subprocess
import sys

import pytest

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.data.segment import segment
from pipeline.data.validate import validate

TARGETS = ["concessions", "integrity", "negotiations"]  # configs/tasks/ukraine-war.yaml, in order

# File names sort a_first before b_second; the .md file is not an article.
ARTICLES = {
    "b_second.txt": (
        "French President Emmanuel Macron urged talks with Moscow, Zelensky's office said.\n"
        "The weather in Paris was mild on Monday.\n\n"
        "Emmanuel Macron, left, meets Volodymyr Zelensky in Kyiv.\n\n"
        "Photo by Reuters\n"
    ),
    "a_first.txt": (
        'Putin did not comment. "We will not cede land," the Ukrainian leader said.\n\n'
        "Subscribe to our newsletter for daily Kremlin news.\n"
    ),
    "notes.md": "Macron said nothing here.\n",
}
# id -> (furniture, actors in order of first mention, by their aliases)
EXPECTED = {
    "a_first-000": (False, ["putin"]),
    "a_first-001": (False, ["zelensky"]),  # "the Ukrainian leader"
    "a_first-002": (True, []),  # a sign-up appeal, though it names the Kremlin
    "b_second-000": (False, ["macron", "kremlin", "zelensky"]),  # "French President", "Moscow", "Zelensky's"
    "b_second-001": (False, []),
    "b_second-002": (True, []),  # a caption ("Macron, left, ..."): furniture is never labelled
    "b_second-003": (True, []),  # a photo credit
}


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def scaffold(docs, out, *extra):
    return main(["scaffold", "--config", "configs/base.yaml", "--documents", str(docs), "--output", str(out), *extra])


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_help():
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "scaffold", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "write an annotation skeleton for a folder of articles" in res.stdout
    for option in ("--config", "--documents", "--output", "--overwrite"):
        assert option in res.stdout


def test_output_is_required(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["scaffold"])
    assert exc.value.code == 2 and "--output" in capsys.readouterr().err


def test_every_sentence_with_offsets_furniture_and_none_labels(docs, tmp_path, capsys):
    out = tmp_path / "draft.jsonl"
    assert scaffold(docs, out) == 0
    assert capsys.readouterr().out == f"wrote {len(EXPECTED)} units to {out}\n"
    recs = read(out)
    assert [r["id"] for r in recs] == list(EXPECTED)  # sorted by file, then in reading order
    for rec in recs:
        assert list(rec) == ["id", "doc_id", "start", "end", "text", "furniture", "labels"]
        text = (docs / f"{rec['doc_id']}.txt").read_text(encoding="utf-8")
        assert text[rec["start"] : rec["end"]] == rec["text"], rec["id"]
        furniture, actors = EXPECTED[rec["id"]]
        assert rec["furniture"] is furniture, rec["id"]
        assert rec["labels"] == [{"actor": a, "target": t, "label": "none"} for a in actors for t in TARGETS]
    # The units are the segmenter's sentences, one for one.
    for path in sorted(docs.glob("*.txt")):
        sents = segment(path.read_text(encoding="utf-8"), path.stem)
        mine = [r for r in recs if r["doc_id"] == path.stem]
        assert [(r["id"], r["start"], r["end"], r["furniture"]) for r in mine] == [
            (s.id, s.start, s.end, s.furniture) for s in sents
        ]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_the_skeleton_validates_against_its_articles(docs, tmp_path):
    out = tmp_path / "draft.jsonl"
    assert scaffold(docs, out) == 0
    config = load_config(
        "configs/base.yaml",
        {"data.annotations": str(out), "data.documents": str(docs), "data.metadata": None, "data.extra_train": []},
    )
    assert config.data.complete_labels  # labels complete for every mentioned actor is checked too
    records, issues = validate(config)
    assert [str(i) for i in issues] == []
    assert len(records) == len(EXPECTED)


def test_an_existing_output_is_kept_unless_overwrite(docs, tmp_path, capsys):
    out = tmp_path / "draft.jsonl"
    out.write_text("hand-made annotations\n", encoding="utf-8")
    assert scaffold(docs, out) == 2
    assert capsys.readouterr().err == f"error: {out} exists; pass --overwrite to replace it\n"
    assert out.read_text(encoding="utf-8") == "hand-made annotations\n"

    assert scaffold(docs, out, "--overwrite") == 0
    assert [r["id"] for r in read(out)] == list(EXPECTED)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
