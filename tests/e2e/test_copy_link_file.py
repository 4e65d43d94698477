""""Copy link" with a file loaded says plainly that the tensor is not in the link (issue 27): a link
cannot carry it and the file never leaves the computer. Without a file the note is not there, and
it goes when the file does."""

import numpy as np

from conftest import Watched
from helpers import fill
from tests.support import checkpoints as C

NOT_IN_LINK = "is not in the link: it never leaves this computer"


def test_copy_link_says_the_loaded_tensor_is_not_in_the_link_only_when_one_is_loaded(
        browser, server, tmp_path):
    path = tmp_path / "model.safetensors"
    C.write_safetensors(path, {"w": np.arange(64, dtype=np.float32).reshape(8, 8)})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = Watched(context, server.url).open()
    status = page.locator("#link-status")
    fill(page, values="1, 2, 3", bits="6")
    page.click("#copy-link")
    page.wait_for_selector("#link-status:has-text('Link copied')")
    assert NOT_IN_LINK not in status.inner_text()

    page.set_input_files("#file", str(path))
    page.wait_for_selector("#clear-file:visible")
    page.click("#copy-link")
    page.wait_for_selector(f"#link-status:has-text('{NOT_IN_LINK}')")
    text = status.inner_text()
    assert text.startswith("Link copied.")
    assert "The loaded tensor (model.safetensors) is not in the link" in text
    assert "gets the settings and the typed values." in text
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "bits=6" in copied and "model.safetensors" not in copied

    page.click("#clear-file")  # the note spoke of that file: it goes with it
    assert status.inner_text() == ""
    page.click("#copy-link")
    page.wait_for_selector("#link-status:has-text('Link copied')")
    assert NOT_IN_LINK not in status.inner_text()
    context.close()
