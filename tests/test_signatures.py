"""Failure signatures: what they mask, what they keep, and which failures they group."""

import pytest

from webapp.signatures import REMEMBERED_CHARS
from webapp.signatures import normalise
from webapp.signatures import signature_for
from webapp.signatures import signed


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("AssertionError: expected 3 items, got 5", "AssertionError: expected 12 items, got 0"),
        ("<Foo object at 0x7f3a2b1c9d40> is not ready", "<Foo object at 0x55d1e0a3f0b8> is not ready"),
        (
            "order 3f2c9a1b-5d6e-4f70-8a9b-0c1d2e3f4a5b not found",
            "order 00000000-1111-2222-3333-444444444444 not found",
        ),
        ("timeout at 2026-12-04T17:02:31.123Z", "timeout at 2025-01-01T00:00:00+02:00"),
        ("cannot open /tmp/pytest-of-ci/pytest-12/test_x0/data.csv", "cannot open /tmp/tmpab12cd/data.csv"),
        ("ConnectionRefusedError: localhost:8080 refused", "ConnectionRefusedError: localhost:43121 refused"),
        ("SyntaxError at line 12", "SyntaxError at line 480"),
        ("commit deadbeef12 missing", "commit 0badc0de99 missing"),
    ],
)
def test_messages_differing_only_in_volatile_parts_group_together(first, second):
    """Do messages that differ only in numbers, addresses, ids, times, paths or ports share a signature?"""
    assert signature_for(first, None) == signature_for(second, None)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ValueError: bad input 3", "TypeError: bad input 3"),
        ("AssertionError: expected the user to be active", "AssertionError: expected the order to be paid"),
        ("KeyError: 'user'", "KeyError: 'order'"),
    ],
)
def test_different_types_and_texts_do_not_group(first, second):
    """Do different exception types and different assertion texts keep apart?"""
    assert signature_for(first, None)[0] != signature_for(second, None)[0]


def test_normalised_text_keeps_type_and_words():
    """Is the stored text readable: the exception type and words kept, the rest placeholders?"""
    assert (
        normalise("AssertionError: got 42 at 0xdeadbeef1 (line 7)")
        == "AssertionError: got <n> at <hex> (line <n>)"
    )


def test_long_texts_are_masked_like_remembered_short_ones():
    """Is a text too long for the per-process memory masked as a short one is, and a short one the
    same the second time (from memory) as the first?"""
    words = "word " * REMEMBERED_CHARS
    assert normalise(words + "got 42 at 0xdeadbeef1") == words.strip() + " got <n> at <hex>"
    assert [normalise("got 7 at 0x1f") for _ in range(2)] == ["got <n> at <hex>"] * 2


def test_identifiers_with_digits_stay_words():
    """Are digits inside identifiers (Py3Error, test_42) kept, so that distinct names stay distinct?"""
    assert normalise("Py3Error in test_42") == "Py3Error in test_42"


def test_first_lines_of_details_take_part():
    """Do the first lines of the details count, and the later ones not?"""
    details_a = "Traceback (most recent call last):\n  File \"a.py\", line 3, in f\nKeyError: 'x'\nmore 1"
    details_b = "Traceback (most recent call last):\n  File \"a.py\", line 9, in f\nKeyError: 'x'\nmore 2"
    details_c = "Traceback (most recent call last):\n  File \"b.py\", line 9, in g\nKeyError: 'x'"
    assert signature_for("boom", details_a) == signature_for("boom", details_b)
    assert signature_for("boom", details_a) != signature_for("boom", details_c)
    digest, text = signature_for("boom", details_a)
    assert len(digest) == 16
    assert text == "boom\nTraceback (most recent call last):\nFile \"a.py\", line <n>, in f\nKeyError: 'x'"


def test_signed_sets_failing_and_clears_others():
    """Does a failing case get a signature and a passing one none, the rest read from the stored case?"""

    class Stored:
        result_status = "FAILED"
        message = "expected 1"
        details = None

    assert signed({"result_status": "SUCCESS", "message": "x"}) == {
        "result_status": "SUCCESS",
        "message": "x",
        "signature": None,
        "signature_text": None,
    }
    fields = signed({}, Stored())
    assert fields["signature_text"] == "expected <n>"
    assert fields["signature"] == signature_for("expected 7", None)[0]
