"""The README and docs/ stay true: every documented `python -m fer_core` flag exists, and the command blocks
marked runnable run, as written, on a tiny synthetic dataset."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fer_core.cli import build_parser, command_parser

from tests.sample_files import face_photo_640x480, jpeg_bytes, write_face_video

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = "<!-- runnable -->"  # put on the line before a ```bash block that this test runs
BLOCK = re.compile(r"(<!-- runnable -->\n)?```bash\n(.*?)```", re.S)


def command_lines(text: str) -> list[tuple[bool, str]]:
    """(runnable?, line) for every `python -m fer_core` line of the bash blocks, comments cut."""
    found = []
    for marker, body in BLOCK.findall(text):
        for line in body.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("python -m fer_core"):
                found.append((bool(marker), line))
    return found


DOCUMENTED = [(path.name, line) for path in DOCS for _, line in command_lines(path.read_text())]


def test_the_docs_document_commands():
    assert len(DOCUMENTED) >= 20 and {"README.md", "cli.md", "training.md"} <= {name for name, _ in DOCUMENTED}


def unknown_flags(line: str) -> tuple[list[str], str]:
    """The flags of a documented command line that its (sub)command does not have, and that command's name."""
    parser = command_parser(build_parser(), [w for w in line.split()[3:] if re.fullmatch(r"[a-z][a-z-]*", w)])
    known = {s for action in parser._actions for s in action.option_strings}
    return [f for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", line) if f not in known], parser.prog


@pytest.mark.parametrize("doc, line", DOCUMENTED, ids=[f"{d}:{i}" for i, (d, _) in enumerate(DOCUMENTED)])
def test_every_documented_flag_exists(doc, line):
    unknown, command = unknown_flags(line)
    assert not unknown, f"{doc}: `{line}` uses {unknown}, which `{command}` does not have"


def test_a_flag_that_does_not_exist_is_caught():
    assert unknown_flags("python -m fer_core data audit --out x.txt --tta") == (["--tta"], "python -m fer_core data audit")
    assert unknown_flags("python -m fer_core bench live [--threads 2]")[0] == []


def test_the_readme_marks_its_use_block_runnable():
    assert sum(marked for marked, _ in command_lines((REPO / "README.md").read_text())) >= 4


@pytest.mark.slow
def test_the_runnable_blocks_run_as_written_on_a_tiny_dataset(tmp_path, make_kaggle_zip):
    """In a fresh folder: photo.jpg and clip.mp4 are a face photo and a short video, the dataset is a tiny
    synthetic FER2013, models/ holds the shipped default, and `runs/RUN` is the run the block trained."""
    (tmp_path / "photo.jpg").write_bytes(jpeg_bytes(face_photo_640x480()))
    write_face_video(tmp_path / "clip.mp4")
    models = tmp_path / "models"
    models.mkdir()
    for name in ("default.pt", "default.json"):
        shutil.copy(REPO / "models" / name, models / name)
    env = {**os.environ, "PYTHONPATH": str(REPO), "FER_DATA": str(make_kaggle_zip()), "FER_MODELS_DIR": str(models),
           "FER_RUNS_DIR": str(tmp_path / "runs"), "FER_CACHE_DIR": str(tmp_path / "cache")}
    lines = [line for path in DOCS for marked, line in command_lines(path.read_text()) if marked]
    assert lines
    for line in lines:
        runs = sorted((tmp_path / "runs").glob("*/best.pt"))
        if "runs/RUN" in line:
            assert runs, f"`{line}` needs a run: the block trains one before it"
            line = line.replace("runs/RUN", str(runs[-1].parent))
        argv = [sys.executable, "-m", "fer_core", *shlex.split(line)[3:]]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"`{line}` failed:\n{done.stderr[-2000:]}"
