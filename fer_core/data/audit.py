"""Data-health audit of FER2013: duplicates, duplicates with different labels, blank images.

FER2013 was scraped from image search, so the same face appears more than once, sometimes in
both Training and PrivateTest (train/test leakage) and sometimes with two different labels.
The audit finds:

- exact duplicates: identical pixels (a hash of the pixel bytes), within and across splits;
- near duplicates: a 64-bit difference hash (dHash) within NEAR_BITS bits, confirmed by pixel
  correlation because aligned faces make many different people's hashes alike;
- label conflicts: duplicate groups whose members carry different labels;
- blank images: near-constant pixels (standard deviation under BLANK_STD).

`exclusion_ids` turns the findings into the list `python -m fer_core train --exclude FILE` reads.
PrivateTest images are never in it, so test accuracy stays comparable with the literature.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..labels import EMOTIONS
from .dataset import FER2013, Split, SPLITS

BLANK_STD = 3.0          # grey levels; real faces are far above, blank frames are near 0
NEAR_BITS = 4            # dHash Hamming distance of a near-duplicate candidate
NEAR_CORRELATION = 0.95  # pixel correlation that confirms a candidate
# Which copy survives when a group spans splits: the later split keeps its image, so a test
# image's copy leaves train (no leakage) and the test set itself stays intact.
SPLIT_RANK = {name: rank for rank, name in enumerate(SPLITS)}


@dataclass
class DuplicateGroup:
    kind: str                 # "exact" or "near"
    ids: list[str]
    splits: list[str]
    labels: list[str]         # emotion names

    @property
    def cross_split(self) -> bool:
        return len(set(self.splits)) > 1

    @property
    def label_conflict(self) -> bool:
        return len(set(self.labels)) > 1

    def split_pair(self) -> str:
        """e.g. 'train+test': which splits the group links."""
        return "+".join(s for s in SPLITS if s in self.splits)


@dataclass
class AuditResult:
    n_images: int
    exact_groups: list[DuplicateGroup]
    near_groups: list[DuplicateGroup]
    blank_ids: list[str]
    blank_splits: list[str]
    seconds: float
    flagged: dict[str, list[str]] = field(default_factory=dict)  # id -> reasons
    exclude: list[str] = field(default_factory=list)              # ids to leave out of training

    def summary(self) -> dict:
        def groups(kind_groups):
            return {
                "groups": len(kind_groups),
                "images": sum(len(g.ids) for g in kind_groups),
                "within_split": sum(not g.cross_split for g in kind_groups),
                "cross_split": sum(g.cross_split for g in kind_groups),
                "label_conflicts": sum(g.label_conflict for g in kind_groups),
                "by_splits": _count(g.split_pair() for g in kind_groups),
            }
        return {"images": self.n_images, "exact": groups(self.exact_groups), "near": groups(self.near_groups),
                "blank": len(self.blank_ids), "flagged": len(self.flagged), "excluded": len(self.exclude),
                "seconds": round(self.seconds, 2)}

    def to_dict(self) -> dict:
        def rows(gs):
            return [{"ids": g.ids, "splits": g.splits, "labels": g.labels} for g in gs]
        return {"summary": self.summary(), "exact_groups": rows(self.exact_groups),
                "near_groups": rows(self.near_groups),
                "blank": [{"id": i, "split": s} for i, s in zip(self.blank_ids, self.blank_splits)],
                "flagged": self.flagged, "exclude": self.exclude}

    def exclude_text(self) -> str:
        """One image id per line: the format of `train --exclude FILE`."""
        return "".join(f"{i}\n" for i in self.exclude)


def audit_dataset(ds: FER2013 | dict[str, Split]) -> AuditResult:
    """Audit a dataset, or a {split name: Split} mapping (e.g. a training run's splits)."""
    start = time.perf_counter()
    parts = ds if isinstance(ds, dict) else ds.splits
    images = np.concatenate([s.images for s in parts.values()]).reshape(-1, 48 * 48)
    labels = np.concatenate([s.labels for s in parts.values()])
    ids = np.concatenate([s.ids for s in parts.values()]).astype(str)
    splits = np.concatenate([np.full(len(s), n) for n, s in parts.items()])

    blank = images.std(axis=1) < BLANK_STD
    exact = _exact_groups(images)
    near_pairs = _near_pairs(images, ~blank)
    near = _near_groups(near_pairs, exact, len(images))

    def group(kind, members):
        members = sorted(members, key=lambda i: (SPLIT_RANK[splits[i]], ids[i]))
        return DuplicateGroup(kind, [ids[i] for i in members], [str(splits[i]) for i in members],
                              [EMOTIONS[labels[i]] for i in members])

    result = AuditResult(
        n_images=len(images),
        exact_groups=[group("exact", g) for g in exact],
        near_groups=[group("near", g) for g in near],
        blank_ids=ids[blank].tolist(),
        blank_splits=splits[blank].tolist(),
        seconds=0.0,
    )
    result.flagged, result.exclude = _flag(result)
    result.seconds = time.perf_counter() - start
    return result


# ----------------------------------------------------------------------------- finding duplicates

def _exact_groups(images: np.ndarray) -> list[list[int]]:
    digests = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in images]
    by_digest: dict[bytes, list[int]] = {}
    for i, d in enumerate(digests):
        by_digest.setdefault(d, []).append(i)
    return [members for members in by_digest.values() if len(members) > 1]


def dhash(images: np.ndarray) -> np.ndarray:
    """64-bit difference hash per image (N, 48*48 or N, 48, 48): is each of 8x9 area means brighter
    than its left neighbour. Invariant to brightness and contrast, robust to JPEG noise."""
    n = len(images)
    images = images.reshape(n * 48, 48).astype(np.float32)
    cols = (images @ _area_weights(48, 9).T).reshape(n, 48, 9)           # two BLAS products
    small = (_area_weights(48, 8) @ cols.transpose(1, 0, 2).reshape(48, n * 9)).reshape(8, n, 9)
    bits = (small[:, :, 1:] > small[:, :, :-1]).transpose(1, 0, 2).reshape(n, 64)
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix averaging each output cell's share of input pixels (area resize)."""
    edges = np.linspace(0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def _near_pairs(images: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(P, 2) index pairs whose dHash differs in at most NEAR_BITS bits and whose pixels correlate.

    Pigeonhole: split the 64 bits into NEAR_BITS + 1 bands; two hashes within NEAR_BITS bits agree
    exactly on at least one band, so candidates only come from equal band values (sorted runs).
    """
    index = np.flatnonzero(usable)
    hashes = dhash(images[index])
    bands = np.array_split(np.arange(64), NEAR_BITS + 1)
    candidates = []
    for band in bands:
        key = hashes & np.uint64(sum(1 << int(63 - b) for b in band))
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        for offset in range(1, len(order)):
            same = np.flatnonzero(sorted_key[offset:] == sorted_key[:-offset])
            if not len(same):
                break  # runs are contiguous: no pair this far apart means none farther
            a, b = order[same], order[same + offset]
            close = np.bitwise_count(hashes[a] ^ hashes[b]) <= NEAR_BITS
            candidates.append(np.minimum(a, b)[close] * len(hashes) + np.maximum(a, b)[close])
    if not candidates:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(candidates))
    pairs = index[np.stack([pairs // len(hashes), pairs % len(hashes)], axis=1)]
    return pairs[_correlation(images[pairs[:, 0]], images[pairs[:, 1]]) >= NEAR_CORRELATION]


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32) - a.mean(axis=1, keepdims=True)
    b = b.astype(np.float32) - b.mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.divide((a * b).sum(axis=1), denom, out=np.zeros(len(a), np.float32), where=denom > 0)


def _near_groups(pairs: np.ndarray, exact: list[list[int]], n: int) -> list[list[int]]:
    """Connected components of near pairs; a component made only of identical images is not 'near'."""
    if not len(pairs):
        return []
    exact_of = {i: k for k, g in enumerate(exact) for i in g}
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    members: dict[int, list[int]] = {}
    for i in np.unique(pairs):
        members.setdefault(int(component[i]), []).append(int(i))
    groups = []
    for g in members.values():
        if len({exact_of.get(i, -1 - i) for i in g}) > 1:
            groups.append(g)
    return groups


# ----------------------------------------------------------------------------- what to leave out

def _flag(result: AuditResult) -> tuple[dict[str, list[str]], list[str]]:
    """Reasons per image, and the training exclusion list.

    Excluded: blank images, every member of a label conflict, and redundant copies (a group keeps
    its first member in the latest split, so a copy of a test image leaves train). Never test images.
    """
    flagged: dict[str, list[str]] = {}
    exclude: set[str] = set()

    def flag(image_id, reason, leave_out):
        flagged.setdefault(image_id, []).append(reason)
        if leave_out:
            exclude.add(image_id)

    for g in result.exact_groups + result.near_groups:
        keeper = max(range(len(g.ids)), key=lambda k: (SPLIT_RANK[g.splits[k]], -k))
        where = "across splits (" + g.split_pair() + ")" if g.cross_split else "within " + g.splits[0]
        for k, (image_id, split) in enumerate(zip(g.ids, g.splits)):
            if g.label_conflict:
                flag(image_id, f"{g.kind} duplicate with different labels ({', '.join(sorted(set(g.labels)))})",
                     split != "test")
            else:
                flag(image_id, f"{g.kind} duplicate {where}", k != keeper and split != "test")
    for image_id, split in zip(result.blank_ids, result.blank_splits):
        flag(image_id, "blank or near-constant image", split != "test")
    return flagged, sorted(exclude)


def _count(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
