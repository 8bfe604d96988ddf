"""The apertium backend (optional: Debian's apertium-eng-spa): Spanish rows translated, the rest failed."""

from __future__ import annotations

import shutil

import pytest
from relctl_core.errors import InputError

from relctl_translator.backends import ApertiumBackend, make_backend


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium-eng-spa is not installed (optional backend)")
def test_spanish_is_translated_line_for_line_and_other_languages_fail() -> None:
    backend = make_backend("apertium", None, None)
    texts = ["funda de silicona para iphone 13", "coque iphone", "zapatillas para mujer", "mesa de madera"]
    got = backend.translate(texts, ["es", "fr", "es", "es"])
    assert got[1] is None  # French: not this backend's language pair
    assert "silicone" in got[0].lower() and "iphone 13" in got[0].lower()
    assert "woman" in got[2].lower() or "women" in got[2].lower()
    assert "table" in got[3].lower()


def test_without_apertium_the_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(InputError, match="apt-get install apertium-eng-spa"):
        ApertiumBackend()
