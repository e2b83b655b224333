"""Post correlation: which post an error-channel text names."""

from __future__ import annotations

import pytest

from hip3.transport.posts import post_id_in_error


@pytest.mark.parametrize(
    ("text", "post_id"),
    [
        ("too many pending post requests id=1234", 1234),
        ("id=7 rejected", 7),
        ("no id here", None),
        ("uuid=12", None),  # not the word id
        ("id=" + "9" * 5000, None),  # no post of ours; int() of it would raise
        ("id=" + "9" * 19, None),
        ("id=123456789012345678", 123456789012345678),
    ],
)
def test_the_post_id_an_error_text_names(text: str, post_id: int | None) -> None:
    assert post_id_in_error(text) == post_id
