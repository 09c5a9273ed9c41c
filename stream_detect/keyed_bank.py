"""Many keys' diagonal Gaussian models as arrays, scored a mixed-key batch at a time.

:class:`KeyedBank` holds what :class:`~stream_detect.keyed_models.KeyedModels`
holds for the diagonal model, but as one row per key of a few arrays: the
weight learned ``n``, the ``mean`` and ``m2`` (``(K, d)``), the events learned
and the learning policy's deviation count; the rare pending alerts sit in a
dict. A key maps to its row (its *slot*) in a dict whose order is recency,
so eviction of the least recently seen key is the one of the event-by-event
loop (see :func:`~stream_detect.keyed_models.pieces`). A batch is sorted by
key and scanned (:func:`~stream_detect.segmented.segmented_prefix`) in
rounds: a round settles each key's rows up to its first alert that is
learned (what that alert teaches is worked out for its key alone), and the
key's later rows go to the next round; keys whose sums were unsure are
scored on their own by the learning policy. A key costs no Python work
beyond the map unless it alerts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream_detect.clipping import clip_towards_mean
from stream_detect.detections import Detections
from stream_detect.keyed_models import KeyState, pieces
from stream_detect.learning import Explainer, LearningPolicy
from stream_detect.models import GaussianModel, ScoreBlock
from stream_detect.segmented import Segments, segmented_prefix
from stream_detect.stats import Prefix
from stream_detect.teaching import RunState, plan_teaching

__all__ = ["KeyedBank"]

Array = NDArray[np.float64]
IntArray = NDArray[np.intp]


class KeyedBank(Mapping[str, KeyState]):
    """Diagonal Gaussian models of the most recently seen keys, at most ``max_keys``, as arrays.

    A read-only mapping from key to a snapshot :class:`KeyState`, least
    recently seen first.

    Parameters
    ----------
    max_keys
        Most models held at once (>= 1).
    template
        The diagonal model every new key starts as (its statistics, floors,
        prior, directions and half-life are every key's).
    initial_learned
        Events a new key counts as learned already.

    Examples
    --------
    >>> from stream_detect.settings import DetectorSettings
    >>> bank = KeyedBank(2, GaussianModel(1, full=False))
    >>> policy = LearningPolicy(DetectorSettings(), min_samples=2, rule="log_p")
    >>> out = Detections.empty(4)
    >>> X = np.array([[1.0], [2.0], [3.0], [5.0]])
    >>> bank.score_and_learn(policy, X, np.full(4, -1, np.int8), ["a", "b", "a", "c"],
    ...                      0, 4, None, out)
    >>> list(bank), bank.evicted, bank["a"].model.stats.mean.tolist(), out.n.tolist()
    (['a', 'c'], 1, [2.0], [0, 0, 1, 0])
    """

    def __init__(self, max_keys: int, template: GaussianModel, *, initial_learned: int = 0) -> None:
        if template.full:
            raise ValueError("a keyed bank holds diagonal models only")
        self.max_keys = max_keys
        self.template = template
        self.initial_learned = initial_learned
        self.evicted = 0
        self.d = template.stats.d
        self._slots: dict[str, int] = {}
        self._free: list[int] = []
        self._fresh: list[int] = []
        self.n = np.zeros(0)
        self.mean = np.zeros((0, self.d))
        self.second = np.zeros((0, self.d))
        self.learned = np.zeros(0, np.int64)
        self.run_length = np.zeros(0, np.int64)
        self.pending: dict[int, list[Array]] = {}

    # ------------------------------------------------------------ the mapping

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[str]:
        """Keys from least to most recently seen."""
        return iter(self._slots)

    def __getitem__(self, key: str) -> KeyState:
        """A snapshot of ``key``'s state (changing it changes nothing here)."""
        slot = self._slots[key]
        model = self._model_at(slot)
        return KeyState(
            model,
            int(self.learned[slot]),
            int(self.run_length[slot]),
            [p.copy() for p in self.pending.get(slot, [])],
        )

    def learned_counts(self) -> NDArray[np.int64]:
        """Events each model has learned, least recently seen key first."""
        live = np.fromiter(self._slots.values(), np.intp, count=len(self._slots))
        counts: NDArray[np.int64] = self.learned[live]
        return counts

    def to_list(self) -> list[dict[str, Any]]:
        """Every key's state, JSON-able, least recently seen first, as :class:`KeyedModels` has it.

        >>> bank = KeyedBank(4, GaussianModel(1, full=False))
        >>> bank.put("a", KeyState(GaussianModel(1, full=False), learned=2))
        >>> bank.to_list()[0]["state"]["stats"]["n"], bank.to_list()[0]["learned"]
        (0.0, 2)
        """
        live = np.fromiter(self._slots.values(), np.intp, count=len(self._slots))
        half_life = self.template.stats.half_life
        rows = zip(
            self._slots,
            live.tolist(),
            self.n[live].tolist(),
            self.mean[live].tolist(),
            self.second[live].tolist(),
            self.learned[live].tolist(),
            self.run_length[live].tolist(),
            strict=True,
        )
        return [
            {
                "key": key,
                "state": {
                    "type": "gaussian",
                    "stats": {
                        "kind": "diagonal",
                        "half_life": half_life,
                        "n": n,
                        "mean": mean,
                        "second": second,
                    },
                },
                "learned": learned,
                "run_length": run_length,
                "pending": [p.tolist() for p in self.pending.get(slot, [])],
            }
            for key, slot, n, mean, second, learned, run_length in rows
        ]

    def clear(self) -> None:
        """Forget every model (the eviction count stays)."""
        self._slots.clear()
        self._free.clear()
        self._fresh.clear()
        self.pending.clear()
        self._resize(0)

    def put(self, key: str, state: KeyState) -> None:
        """Set ``key``'s state (a restored checkpoint), marking it most recently seen."""
        slot = self._slot_for(key)
        self._reset_fresh()
        self._store(slot, state)

    # ---------------------------------------------------------------- scoring

    def score_and_learn(
        self,
        policy: LearningPolicy,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str],
        start: int,
        stop: int,
        log_epsilon: float | None,
        out: Detections,
        explain: Explainer | None = None,
    ) -> None:
        """Score rows ``[start, stop)`` of ``X`` into ``out``, each against its key's model.

        The same results as the learning policy run key by key in the event
        order (see :meth:`LearningPolicy.score_and_learn`).
        """
        for begin, end in pieces(keys, start, stop, self.max_keys):
            self._score_piece(policy, X, labels, keys, begin, end, log_epsilon, out, explain)

    def _score_piece(
        self,
        policy: LearningPolicy,
        X: Array,
        labels: NDArray[np.int8],
        keys: list[str],
        begin: int,
        end: int,
        log_epsilon: float | None,
        out: Detections,
        explain: Explainer | None,
    ) -> None:
        piece = keys[begin:end]
        distinct = list(dict.fromkeys(piece))
        slots = np.array([self._slot_for(key) for key in distinct], dtype=np.intp)
        self._reset_fresh()
        # Recency as the event loop leaves it: by each key's last event.
        for key in reversed(list(dict.fromkeys(reversed(piece)))):
            self._slots[key] = self._slots.pop(key)
        position = {key: i for i, key in enumerate(distinct)}
        group = np.fromiter((position[key] for key in piece), np.intp, count=len(piece))
        rows = begin + np.arange(len(piece))
        # Each round settles every key's rows up to its first learnable alert; the
        # key's later rows are scored in the next round, from what that alert taught.
        while rows.size:
            rows, group = self._score_round(
                policy, X, labels, distinct, slots, rows, group, log_epsilon, out, explain
            )

    def _score_round(
        self,
        policy: LearningPolicy,
        X: Array,
        labels: NDArray[np.int8],
        distinct: list[str],
        all_slots: IntArray,
        batch_rows: IntArray,
        all_group: IntArray,
        log_epsilon: float | None,
        out: Detections,
        explain: Explainer | None,
    ) -> tuple[IntArray, IntArray]:
        """Score ``batch_rows`` (in event order; ``all_group`` indexes their keys in ``distinct``).

        Returns the rows left for the next round, with their keys' indices.
        """
        present, group = np.unique(all_group, return_inverse=True)
        slots = all_slots[present]
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=present.size)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rows = batch_rows[order]
        sorted_X = X[rows]
        learnable = (labels[rows] < 0) | policy.learn_labelled
        stats = self.template.stats
        scan = segmented_prefix(
            sorted_X,
            learnable,
            starts,
            self.n[slots],
            self.mean[slots],
            self.second[slots],
            stats.decay,
            stats.half_life,
        )
        before = Prefix(scan.n, scan.mean, scan.second)
        block = self.template.score_against(sorted_X, before)
        row_key = group[order]
        learned_within: NDArray[np.int64] = np.cumsum(learnable, dtype=np.int64) - learnable
        learned_before = (
            self.learned[slots][row_key] + learned_within - learned_within[starts][row_key]
        )
        warm = learned_before < policy.min_samples
        threshold = -np.inf if log_epsilon is None else log_epsilon
        score = policy.decide(block, threshold)
        alert = ~warm & (score < threshold)
        # A key's scores are right up to its first learnable alert (inclusive): only
        # what that alert teaches is left, and its later rows wait for the next round.
        # Keys whose sums were unsure are scored on their own.
        hits = np.flatnonzero(alert & learnable) if policy.flagged != "learn" else np.zeros(0, int)
        hit_keys, first = np.unique(row_key[hits], return_index=True)
        hit = np.zeros(present.size, bool)
        hit[hit_keys] = True
        ends = starts + counts
        cut = ends.copy()
        cut[hit_keys] = hits[first] + 1
        hit &= ~scan.unsure
        written = (np.arange(rows.size) < cut[row_key]) & ~scan.unsure[row_key]
        done = rows[written]
        out.log_p[done] = block.log_p[written]
        out.score[done], out.log_tail[done] = policy.written_scores(
            block, score, alert, np.flatnonzero(written)
        )
        out.distance_sq[done] = block.distance_sq[written]
        out.log_epsilon[done] = np.nan if log_epsilon is None else log_epsilon
        out.alert[done] = alert[written]
        out.warmup[done] = warm[written]
        out.n[done] = learned_before[written]
        if explain is not None and np.any(alert & written):
            explain(KeyState(self.template), sorted_X, block, alert & written, rows, out)
        settled = np.flatnonzero(~scan.unsure & ~hit)
        kept = slots[settled]
        self.n[kept] = scan.n_after[settled]
        self.mean[kept] = scan.mean_after[settled]
        self.second[kept] = scan.second_after[settled]
        taught = np.bincount(row_key, weights=learnable, minlength=present.size)[settled]
        self.learned[kept] += taught.astype(np.int64)
        if policy.flagged != "learn":
            self._wind_down(kept, taught.astype(np.int64))
        for g in np.flatnonzero(hit).tolist():
            lo, hi = int(starts[g]), int(cut[g])
            self._teach_last(
                policy, int(slots[g]), sorted_X[lo:hi], learnable[lo:hi], scan, block, hi - 1
            )
        for g in np.flatnonzero(scan.unsure).tolist():
            slot = int(slots[g])
            state = self[distinct[present[g]]]
            policy.score_and_learn(
                state, X, labels, rows[starts[g] : ends[g]], log_epsilon, out, explain
            )
            self._store(slot, state)
        later = (np.arange(rows.size) >= cut[row_key]) & hit[row_key]
        back = np.argsort(rows[later], kind="stable")
        return rows[later][back], present[row_key[later]][back]

    def _teach_last(
        self,
        policy: LearningPolicy,
        slot: int,
        X: Array,
        learnable: NDArray[np.bool_],
        scan: Segments,
        block: ScoreBlock,
        last: int,
    ) -> None:
        """Learn a key's rows whose only learnable alert is the last, ``X[-1]`` (row ``last``)."""
        before = self.pending.get(slot, [])
        run = RunState(int(self.run_length[slot]), [-1 - k for k in range(len(before))])
        alert = np.zeros(X.shape[0], bool)
        alert[-1] = True
        plan = plan_teaching(
            run, alert, learnable, flagged=policy.flagged, accept_after=policy.accept_after
        )
        vectors = []
        if plan.learned[-1]:
            assert block.mean is not None
            vectors.append(
                clip_towards_mean(
                    X[-1:],
                    block.mean[last : last + 1],
                    block.distance_sq[last : last + 1],
                    policy.clip_sigma,
                )[0]
                if plan.clipped[-1]
                else X[-1]
            )
        for i in plan.accepted.get(X.shape[0] - 1, ()):
            vectors.append(X[i] if i >= 0 else before[-1 - i])
        stats = self.template.stats.copy()
        stats.n = float(scan.n[last])
        stats.mean = scan.mean[last].copy()
        stats.second = scan.second[last].copy()
        if vectors:
            stats.learn(np.array(vectors))
        self.n[slot], self.mean[slot], self.second[slot] = stats.n, stats.mean, stats.second
        self.learned[slot] += int(np.count_nonzero(learnable[:-1])) + len(vectors)
        self.run_length[slot] = plan.end.run_length
        policy.relearned += plan.end.relearned
        pending = [X[i] if i >= 0 else before[-1 - i] for i in plan.end.pending]
        if pending:
            self.pending[slot] = [np.array(p, dtype=np.float64) for p in pending]
        else:
            self.pending.pop(slot, None)

    def _wind_down(self, slots: IntArray, calm: NDArray[np.int64]) -> None:
        """Lower the deviation count by the calm rows learned; forget pending alerts at 0."""
        ended = slots[(self.run_length[slots] > 0) & (self.run_length[slots] <= calm)]
        self.run_length[slots] = np.maximum(0, self.run_length[slots] - calm)
        for slot in ended.tolist():
            self.pending.pop(slot, None)

    # ----------------------------------------------------------------- slots

    def _slot_for(self, key: str) -> int:
        """``key``'s slot, marked most recently seen; a new slot if it had none.

        A new slot holds a fresh model only after :meth:`_reset_fresh`, which
        resets every slot handed out since in one go.
        """
        slot = self._slots.pop(key, None)
        if slot is not None:
            self._slots[key] = slot
            return slot
        if len(self._slots) >= self.max_keys:
            oldest = next(iter(self._slots))
            self._free.append(self._slots.pop(oldest))
            self.evicted += 1
        if not self._free:
            self._grow()
        slot = self._free.pop()
        self._slots[key] = slot
        self._fresh.append(slot)
        return slot

    def _reset_fresh(self) -> None:
        """Give every slot handed out since the last call the template's fresh model."""
        if not self._fresh:
            return
        fresh = np.array(self._fresh, dtype=np.intp)
        self._fresh.clear()
        stats = self.template.stats
        self.n[fresh] = stats.n
        self.mean[fresh] = stats.mean
        self.second[fresh] = stats.second
        self.learned[fresh] = self.initial_learned
        self.run_length[fresh] = 0
        if self.pending:
            for slot in fresh.tolist():
                self.pending.pop(slot, None)

    def _grow(self) -> None:
        old = self.n.size
        new = min(self.max_keys, max(16, 2 * old))
        self._resize(new)
        self._free.extend(range(new - 1, old - 1, -1))

    def _resize(self, size: int) -> None:
        keep = min(size, self.n.size)

        def resized(array: Any) -> Any:
            out = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
            out[:keep] = array[:keep]
            return out

        self.n, self.mean, self.second = resized(self.n), resized(self.mean), resized(self.second)
        self.learned, self.run_length = resized(self.learned), resized(self.run_length)

    def _model_at(self, slot: int) -> GaussianModel:
        model = self.template.clone_empty()
        stats = model.stats
        stats.n = float(self.n[slot])
        stats.mean = self.mean[slot].copy()
        stats.second = self.second[slot].copy()
        return model

    def _store(self, slot: int, state: KeyState) -> None:
        assert isinstance(state.model, GaussianModel)
        stats = state.model.stats
        self.n[slot] = stats.n
        self.mean[slot] = stats.mean
        self.second[slot] = stats.second
        self.learned[slot] = state.learned
        self.run_length[slot] = state.run_length
        if state.pending:
            self.pending[slot] = [np.asarray(p, dtype=np.float64) for p in state.pending]
        else:
            self.pending.pop(slot, None)
