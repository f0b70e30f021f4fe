"""Progress bars (tqdm) on long work, silent with ``quiet``."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


class Progress:
    """Makes tqdm bars and status lines on stderr, or nothing at all when ``quiet``."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def bar(self, **kwargs) -> tqdm:
        kwargs.setdefault("dynamic_ncols", True)
        return tqdm(disable=self.quiet, file=sys.stderr, **kwargs)

    def iter(self, items: Iterable[T], desc: str, unit: str = "it") -> Iterator[T]:
        items = list(items)
        with self.bar(total=len(items), desc=desc, unit=unit, leave=False) as bar:
            for item in items:
                yield item
                bar.update(1)

    def write(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message, file=sys.stderr)
