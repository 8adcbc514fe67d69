"""Timing a page through the Flask test client: the server's own time, with no network in between."""

import time


def time_get(client, path, repeat):
    """GET ``path`` once to warm up, then ``repeat`` times; return (milliseconds of each, last response).

    Any answer but 200 ends the benchmark: a fast error page is not a fast page.
    """
    client.get(path)
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}: {response.data[:300]!r}")
    return timings, response
