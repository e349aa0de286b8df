"""The exchange of migrants between the islands of a scan, held by the scan driver (no Ray here).

Islands hold nothing in common: an island hands its emigrants back with the result of a running
chunk, the driver keeps them in an :class:`Exchange`, and hands an island its immigrants with its
next chunk (pygmo's archipelago keeps such a "migrants database" too).  An island that is not
running (pending, done, failed, its actor lost) neither sends nor receives: a lost or failed
island's batch is dropped (:meth:`Exchange.forget`; a done island's last batch still reaches the
neighbours that have not had it), nothing ever waits for an island, so a lost island never holds
up the others, and a resumed scan starts with an empty exchange.

Every batch is delivered at most once to each neighbour (``version`` numbers); the immigrants of
one exchange are the new batches of the island's neighbours in island order, of which the island
takes in a seeded choice of ``migrants`` (:meth:`rayflavor.methods.ga.island.PaperIsland.immigrate`).

The same batches feed a scan-wide **archive** of near-valid points (the ``ARCHIVE_SIZE`` best by
their sender's objective sum, one per charge assignment), handed to every island when
``restart_archive > 0`` so that a restarting island can seed its fresh population from it.  The
sender's objective values only rank the archive: whoever takes a point in evaluates it again.

>>> import numpy as np
>>> ex = Exchange("ring", islands=3)
>>> ex.post(0, np.zeros((2, 40)), np.array([1.0, 2.0]))
>>> ex.take(1).shape, ex.take(1) is None, ex.take(2).shape   # each batch once per neighbour
((2, 40), True, (2, 40))
"""

from __future__ import annotations

import numpy as np

from rayflavor.methods.ga.migration import merge_archive, sources
from rayflavor.methods.ga.problem import CHARGES, round_charges

#: points the scan-wide archive keeps (a few populations' worth of restart seeds; small enough to
#: travel with every chunk call: 200 x 40 float64 = 64 kB)
ARCHIVE_SIZE = 200


def _keys(genes: np.ndarray) -> list[bytes]:
    if not len(genes):
        return []
    return [row.tobytes() for row in np.ascontiguousarray(round_charges(genes), dtype=np.int8)]


class Exchange:
    """The driver's migrant database and archive (see the module docstring).

    ``topology``: one of :data:`rayflavor.methods.ga.migration.TOPOLOGIES`; ``islands``: how many
    islands the scan has; ``archive_size``: points the archive keeps (0: no archive)."""

    def __init__(self, topology: str, islands: int, archive_size: int = ARCHIVE_SIZE) -> None:
        self.topology, self.islands, self.archive_size = topology, int(islands), int(archive_size)
        self.version = 0
        self.outbox: dict[int, tuple[int, np.ndarray]] = {}  # island -> (version, genes) of its last batch
        self.taken: dict[int, int] = {}  # island -> highest version it has been handed
        self.archive_X = np.empty((0, 0))
        self.archive_loss = np.empty(0)
        self.archive_keys: list[bytes] = []
        self.archive_version = 0  # changes whenever the archive does
        self.posted = 0  # batches posted
        self.delivered = 0  # points handed to islands

    def post(self, island: int, genes: np.ndarray | None, loss: np.ndarray | None) -> None:
        """Island ``island``'s new emigrant batch (it replaces its previous one); empty: nothing."""
        if genes is None or not len(genes):
            return
        genes = np.asarray(genes, dtype=np.float64)
        genes = genes.reshape(len(genes), -1)
        if genes.shape[1] <= CHARGES.stop:
            raise ValueError(f"emigrants of island {island} have {genes.shape[1]} genes")
        self.version += 1
        self.posted += 1
        self.outbox[island] = (self.version, genes)
        if self.archive_size:
            loss = np.full(len(genes), np.inf) if loss is None else np.asarray(loss, dtype=np.float64)
            X = self.archive_X if len(self.archive_keys) else np.empty((0, genes.shape[1]))
            before = self.archive_keys
            self.archive_X, self.archive_loss, self.archive_keys = merge_archive(
                X, self.archive_loss, self.archive_keys, genes, loss, _keys(genes), self.archive_size)
            if self.archive_keys != before:
                self.archive_version += 1

    def take(self, island: int) -> np.ndarray | None:
        """The batches of ``island``'s neighbours it has not been handed yet, stacked in island
        order (``None``: there are none)."""
        since = self.taken.get(island, 0)
        batches = [self.outbox[j][1] for j in sources(self.topology, self.islands, island, self.outbox)
                   if self.outbox[j][0] > since]
        self.taken[island] = self.version
        if not batches:
            return None
        out = np.concatenate(batches)
        self.delivered += len(out)
        return out

    def archive(self) -> np.ndarray:
        """The archive's gene rows, best first."""
        return self.archive_X if len(self.archive_keys) else np.empty((0, 0))

    def forget(self, island: int) -> None:
        """Island ``island`` stopped running (done, failed, lost, stopped): it sends no more; its
        batches already taken stay taken."""
        self.outbox.pop(island, None)

    def summary(self) -> dict:
        """What ``scan.json`` records of this run's exchange."""
        return {"topology": self.topology, "batches_posted": self.posted, "points_delivered": self.delivered,
                "archive_points": len(self.archive_keys)}


__all__ = ["ARCHIVE_SIZE", "Exchange"]
