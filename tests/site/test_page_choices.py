"""The page's copy of the engine's declarations is generated, never written by hand.

build.py writes schema.js from quantcalc.settings.page_schema(); the page builds its form, its
hidden/disabled states and its link checks from it. These tests compare that generated output
with the engine's declarations, and check that no hand-written copy is left in web/.
"""

import json
import re
from pathlib import Path

import pytest

from quantcalc.schema import registry
from quantcalc.schema import settings
from sitebuild import site

WEB = Path(__file__).resolve().parents[2] / "web"


def generated_schema():
    text = site.schema_module().decode("utf-8")
    body = re.fullmatch(r"//[^\n]*\nexport default (.*);\n", text, re.S).group(1)
    return json.loads(body)


def test_schema_js_is_the_engines_declaration():
    assert generated_schema() == json.loads(json.dumps(settings.page_schema()))


@pytest.mark.parametrize("name", registry.NAMES[1:])
def test_no_format_is_listed_by_hand_in_the_page(name):
    # every format name appears in web/ only through the generated schema.js
    for path in WEB.iterdir():
        if path.suffix in (".js", ".html"):
            assert f'"{name}"' not in path.read_text() and f"value=\"{name}\"" not in \
                path.read_text(), (path.name, name)


def test_no_setting_choices_are_listed_by_hand_in_the_page():
    for path in WEB.iterdir():
        if path.suffix in (".js", ".html"):
            text = path.read_text()
            for value in ("half-away", "toward-zero", "asymmetric", "entropy"):
                assert f'"{value}"' not in text and f"value=\"{value}\"" not in text, \
                    (path.name, value)
