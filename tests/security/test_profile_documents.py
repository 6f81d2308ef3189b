"""Hostile profile documents (sent with an upload or a re-transcode): each is
refused as INVALID_ARGUMENT with a reason, before any job exists, and quickly."""

from __future__ import annotations

import time

import pytest

from services.process_svc.profiles import read_profile_document
from services.shared.errors import InvalidArgument

_LAUGHS = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
_RUNG = "{type: video, name: a, height: 360, crf: 23, maxrate: 1M, bufsize: 2M}"

HOSTILE = {
    "billion laughs (aliases)": (_LAUGHS, "aliases"),
    "python object tag": ("!!python/object/apply:os.system ['touch /tmp/pwned']", "not valid YAML"),
    "python name tag in a value": (f"name: x\noutputs: [{_RUNG}]\ndescription: !!python/name:os.system", "not valid"),
    "oversized": ("name: x\n" + "# padding\n" * 8000, "at most 65536"),
    "rendition name with a path": ("name: x\noutputs: [{type: video, name: ../../keys, height: 360, crf: 23, "
                                   "maxrate: 1M, bufsize: 2M}]", "outputs[0].name: must be lower-case letters"),
    "profile name with a path": (f"name: ../x\noutputs: [{_RUNG}]", "profile_document: name: must be lower-case"),
    "not a mapping": ("- just\n- a list", "must be a mapping"),
    "a ladder of 40 rungs (CPU for everyone else)": (
        "name: x\noutputs:\n" + "".join(f"  - {{type: video, name: r{i}, height: 360, crf: 23, maxrate: 1M, "
                                          "bufsize: 2M}\n" for i in range(40)), "at most 8"),
    "unknown key (a typo must not fall back to a default)": (
        "name: x\noutputs: [{type: video, name: a, height: 360, crf: 23, maxrate: 1M, bufsize: 2M, crff: 1}]",
        "outputs[0].crff: unknown key; accepted:"),
}


@pytest.mark.parametrize(("document", "words"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_profile_document_is_refused_with_a_reason(document: str, words: str) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as refused:
        read_profile_document(document)
    assert words in refused.value.message
    assert time.monotonic() - started < 1.0
