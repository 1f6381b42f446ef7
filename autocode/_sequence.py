"""A read-only sequence whose items are built one at a time on access."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["LazySequence"]


class LazySequence(Sequence):
    """A sequence whose items are built on access by ``_item(i)`` (``0 <= i < len(self)``); negative indices and
    slices (as lists) work as on a list.

    >>> class Squares(LazySequence):
    ...     def __len__(self): return 4
    ...     def _item(self, i): return i * i
    >>> Squares()[-1], Squares()[1:3]
    (9, [1, 4])
    """

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._item(i)

    def _item(self, i: int):
        raise NotImplementedError
