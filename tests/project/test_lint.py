"""The tree stays `ruff check` clean (pyproject.toml holds the rules)."""
import subprocess
import sys

from tests.conftest import REPO


def test_ruff_check_is_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", str(REPO)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_module_edits_sys_path():
    """The project is installed (requirements.txt installs it editable), so nothing patches the import path."""
    offenders = [str(p.relative_to(REPO)) for folder in ("fer_core", "dashboard", "pages", "tests")
                 for p in (REPO / folder).rglob("*.py")
                 if any(f"sys.path.{edit}" in p.read_text() for edit in ("insert", "append"))]
    assert offenders == []
