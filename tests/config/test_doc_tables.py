"""The docs' settings tables are the settings table: docs/configuration.md
and docs/envmode.md hold what resqued.config.describe renders from
config/settings.py, so a setting added or changed there shows in the docs
(`make docs` rewrites them)."""

import os

import pytest

from conftest import ROOT
from resqued.config import describe
from resqued.config.settings import SETTINGS

DOCS = {"docs/configuration.md": {"top", "pool"}, "docs/envmode.md": {"env"}}


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("path", sorted(DOCS))
def test_the_docs_tables_are_generated_from_the_settings(path):
    text = read(path)
    assert {m["name"] for m in describe.GENERATED.finditer(text)} == DOCS[path]
    assert describe.fill_generated(text) == text, \
        f"{path}: its tables differ from config/settings.py; run `make docs` and commit the result"


def test_every_setting_is_in_a_table_with_its_type_and_default():
    tables = describe.settings_table("top") + describe.settings_table("pool")
    for setting in SETTINGS:
        assert f"| `{setting.key}` |" in tables
        assert setting.doc_type, f"{setting.key}: no doc_type in config/settings.py"
    env = describe.env_table()
    assert all(f"`{s.env}`" in env for s in SETTINGS if s.env)


def test_limits_without_a_default_say_so():
    pool = describe.settings_table("pool")
    for key in ("max_memory", "max_memory_hard", "max_jobs"):
        row = next(line for line in pool.splitlines() if line.startswith(f"| `{key}` |"))
        assert "none: no limit" in row, row


def test_a_stale_table_is_rewritten(tmp_path):
    stale = "intro\n<!-- generated table: pool -->\n| old |\n<!-- end generated table -->\nafter\n"
    path = tmp_path / "doc.md"
    path.write_text(stale)
    assert describe.main([str(path)]) == 0
    text = path.read_text()
    assert text.startswith("intro\n<!-- generated table: pool -->\n| key | type | default | meaning |")
    assert text.endswith("<!-- end generated table -->\nafter\n")
    assert describe.fill_generated(text) == text
