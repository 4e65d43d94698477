"""The page lists each setting's choices twice (the form's <select> and the link-parameter check
in web/state.js); both must be exactly the engine's, in the engine's order."""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from quantcalc import config, schemes

WEB = Path(__file__).resolve().parents[2] / "web"
ENGINE = {"format": schemes.FORMATS, "mode": config.MODES, "rounding": config.ROUNDINGS,
          "calibration": config.CALIBRATIONS, "granularity": config.GRANULARITIES}


class SelectOptions(HTMLParser):
    def __init__(self):
        super().__init__()
        self.options, self.current = {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "select":
            self.current = self.options.setdefault(attrs.get("name"), [])
        elif tag == "option" and self.current is not None:
            self.current.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag == "select":
            self.current = None


def form_options():
    parser = SelectOptions()
    parser.feed((WEB / "index.html").read_text())
    return parser.options


def link_choices():
    """CHOICES in state.js, an object literal of string arrays, read as JSON."""
    source = (WEB / "state.js").read_text()
    body = re.search(r"const CHOICES = (\{.*?\});", source, re.S).group(1)
    return json.loads(re.sub(r"(\w+):", r'"\1":', body).replace(",\n}", "\n}"))


@pytest.mark.parametrize("setting", sorted(ENGINE))
def test_the_form_and_link_check_offer_the_engines_choices(setting):
    assert tuple(form_options()[setting]) == tuple(ENGINE[setting])
    assert tuple(link_choices()[setting]) == tuple(ENGINE[setting])
