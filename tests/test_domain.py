"""The domain's own rules: clipping, elapsed time, times, and that the models use its counters."""

from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from webapp import domain
from webapp.models import CountersMixin


def test_counters_are_the_mixins_columns():
    """Does the counter list name exactly the counter columns every suite and build has?"""
    columns = [name for name, value in vars(CountersMixin).items() if hasattr(value, "column")]
    assert tuple(columns) == domain.COUNTERS


@pytest.mark.parametrize("size", [domain.MESSAGE_LIMIT + 1, domain.MESSAGE_LIMIT + 100, 10**6])
def test_clip_keeps_head_and_tail_within_the_limit(size):
    """Is a long text cut to at most its limit, keeping its start and end and saying how much went?"""
    text = "H" + "x" * (size - 2) + "T"
    clipped = domain.clip(text, domain.MESSAGE_LIMIT)
    head, marker, tail = clipped.partition("\n[... ")
    cut = int(tail.split(" ", 1)[0])
    tail = tail.split(" characters truncated by Greenbar ...]\n", 1)[1]
    assert len(clipped) <= domain.MESSAGE_LIMIT
    assert head.startswith("H") and tail.endswith("T")
    assert len(head) + cut + len(tail) == size


def test_clip_leaves_short_text_and_none_alone():
    """Is text within its limit (or missing) stored as given?"""
    text = "y" * domain.MESSAGE_LIMIT
    assert domain.clip(text, domain.MESSAGE_LIMIT) is text
    assert domain.clip(None, domain.MESSAGE_LIMIT) is None


def test_elapsed_needs_both_times_in_order():
    """Is elapsed time the seconds between two times, and unknown when one is missing or reversed?"""
    start = datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert domain.elapsed(start, start + timedelta(seconds=90.5)) == 90.5
    assert domain.elapsed(start, None) is None
    assert domain.elapsed(None, start) is None
    assert domain.elapsed(start + timedelta(seconds=1), start) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01 12:00:00", datetime(2024, 5, 1, 12, tzinfo=timezone.utc)),
        ("2024-05-01T12:00:00.5+02:00", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=timezone.utc)),
    ],
)
def test_parse_iso_reads_the_documented_forms(text, expected):
    """Are the API's time forms read as UTC?"""
    assert domain.parse_iso(text) == expected


@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00", "9999-12-31T23:59:59", "2024-05-01T12:00:00+99:00", "2024-02-30T00:00:00"]
)
def test_parse_iso_refuses_times_outside_the_range(text):
    """Are years outside 1970-2999, offsets beyond a day and unreal dates refused?"""
    with pytest.raises(ValueError, match="ISO 8601|not a real date"):
        domain.parse_iso(text)


@pytest.mark.parametrize(
    ("number", "noun", "plural", "text"),
    [
        (0, "failure", None, "0 failures"),
        (1, "failure", None, "1 failure"),
        (2, "cause", None, "2 causes"),
        (1, "quarantined test", None, "1 quarantined test"),
        (3, "child", "children", "3 children"),
    ],
)
def test_in_words_puts_the_noun_in_the_counts_number(number, noun, plural, text):
    """Is a count of one singular, and any other count plural (the given plural when irregular)?"""
    assert domain.in_words(number, noun, plural) == text
