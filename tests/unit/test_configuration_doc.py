from pathlib import Path

from services.configuration import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_page_lists_every_setting_as_the_code_defines_it() -> None:
    assert DOC.read_text() == render(), \
        "docs/configuration.md is stale: python -m services.configuration > docs/configuration.md"
