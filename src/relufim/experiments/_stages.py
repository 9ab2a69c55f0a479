"""A counter of finished stages for the experiments that report ``progress(done, total)``."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]


def stage_counter(progress: Progress | None, total: int) -> Callable[[], None]:
    """A callable that counts one finished stage per call and reports ``progress(done, total)``.

    With ``progress=None`` it only counts, so a caller need not test for a callback at each stage.

    Examples
    --------
    >>> seen = []
    >>> advance = stage_counter(lambda done, total: seen.append((done, total)), 2)
    >>> advance(); advance(); seen
    [(1, 2), (2, 2)]
    """
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    return advance
