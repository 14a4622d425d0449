"""``$batch`` encoding: bodies encoded once (the size the pacer counts is the size sent)."""

from __future__ import annotations

import json

import pytest

from mmsd.graph.batch import BatchItem, encode_batch, encode_body

ITEMS = [
    BatchItem("get", "/users/u/events/e1?$select=changeKey", operation="get_event"),
    BatchItem(
        "PATCH",
        "/users/u/events/e2",
        body={"body": {"contentType": "html", "content": '<p>\u00e9\u4f1a \U0001f600 "q"</p>'}},
        headers={"If-Match": 'W/"ck"'},
        operation="patch_event",
    ),
    BatchItem("POST", "/users/u/x", body={}, headers={"content-type": "application/json"}),
]


def test_pre_encoded_bodies_give_the_same_batch() -> None:
    pairs = [(str(i), item) for i, item in enumerate(ITEMS)]
    bodies = [encode_body(item) for item in ITEMS]
    assert bodies[0] is None
    assert bodies[1] is not None and "\u4f1a".encode() in bodies[1]  # UTF-8, not \\u escapes
    encoded = encode_batch(pairs, bodies)
    assert encoded == encode_batch(pairs)
    assert json.loads(encoded) == {
        "requests": [
            {"id": "0", "method": "GET", "url": "/users/u/events/e1?$select=changeKey"},
            {
                "id": "1",
                "method": "PATCH",
                "url": "/users/u/events/e2",
                "headers": {"If-Match": 'W/"ck"', "Content-Type": "application/json"},
                "body": ITEMS[1].body,
            },
            {
                "id": "2",
                "method": "POST",
                "url": "/users/u/x",
                "headers": {"content-type": "application/json"},
                "body": {},
            },
        ]
    }
    # The size the pacer counts is the size of the body bytes that go out.
    assert bodies[1] in encoded


def test_bodies_must_match_items() -> None:
    with pytest.raises(ValueError):
        encode_batch([("0", ITEMS[0])], [])
