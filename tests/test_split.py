"""Test splitting: balanced shards on hand-built, demo and generated histories; printed figures."""

import random

import pytest

from webapp import demo
from webapp import split
from webapp.extensions import db
from webapp.models import TestInstance


def spread(totals):
    """The longest shard's expected time over the mean shard's."""
    mean = sum(totals) / len(totals)
    return max(totals) / mean


def test_balance_worked_example():
    """8, 5, 4, 3, 2 s in two shards: LPT gives 8+3 and 5+4+2 (11 s each); untimed tests go lightest first."""
    tests = [(key, "s", key) for key in "abcdefg"]
    durations = {"a": 8.0, "b": 5.0, "c": 4.0, "d": 3.0, "e": 2.0}
    lists, totals = split.balance(tests, durations, 2)
    assert totals == [11.0, 11.0]
    assert [[test[0] for test in shard] for shard in lists] == [["a", "d", "f"], ["b", "c", "e", "g"]]


def test_untimed_tests_spread_evenly():
    """Do seven tests without history go 3-2-2 over three shards?"""
    tests = [(str(n), "s", str(n)) for n in range(7)]
    lists, totals = split.balance(tests, {}, 3)
    assert [len(shard) for shard in lists] == [3, 2, 2]
    assert totals == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("shards", [2, 4, 8])
def test_generated_skewed_history_within_ten_percent(shards):
    """2,000 tests with log-normal (skewed) durations: is the longest shard within 10 % of the mean?"""
    rng = random.Random(16)
    tests = [(f"k{n}", "suite", f"test_{n}") for n in range(2000)]
    durations = {key: rng.lognormvariate(0, 1.5) for key, _, _ in tests}
    _, totals = split.balance(tests, durations, shards)
    figure = spread(totals)
    print(
        f"generated 2,000 tests, {shards} shards: longest {max(totals):.1f}s, mean "
        f"{sum(totals) / shards:.1f}s, ratio {figure:.4f}"
    )
    assert figure <= 1.10


@pytest.mark.parametrize("shards", [2, 4])
def test_demo_history_within_ten_percent(sqlite_app, shards):
    """On the demo data's largest instance, is the longest shard within 10 % of the mean?"""
    with sqlite_app.app_context():
        demo.load(7)
        db.session.commit()
        figures = []
        for instance in db.session.scalars(db.select(TestInstance)):
            found = split.split_tests(instance.id, shards)
            totals = [shard["expected_duration"] for shard in found["results"]]
            figures.append((found["tests"], spread(totals)))
            print(
                f"demo {instance.name}: {found['tests']} tests, {shards} shards, longest/mean "
                f"{spread(totals):.4f}"
            )
    assert all(figure <= 1.10 for _, figure in figures)
    assert all(tests > 0 for tests, _ in figures)
