"""Scoring a mixed-key batch against :class:`~stream_detect.keyed_arrays.KeyedArrays`.

A batch is sorted by key and scanned
(:func:`~stream_detect.segmented.segmented_prefix`) in rounds: a round
settles each key's rows up to its first alert that is learned (what that
alert teaches is worked out for its key alone), and the key's later rows go
to the next round; keys whose sums were unsure are scored on their own by
the learning policy. A key costs no Python work beyond the map unless it
alerts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from stream_detect.detections import Detections
from stream_detect.explanations import Explainer
from stream_detect.keyed_arrays import KeyedArrays
from stream_detect.keyed_foresight import KeyPlan, foresee, taught_rows
from stream_detect.keyed_models import KeyState, pieces
from stream_detect.keyed_teaching import Lessons, learn_lessons, teach_key, wind_down
from stream_detect.learning import LearningPolicy
from stream_detect.prequential import Prefix
from stream_detect.segmented import segmented_prefix

__all__ = ["KeyedBank"]

Array = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.intp]


class KeyedBank(KeyedArrays):
    """Keyed diagonal models as arrays (see :class:`KeyedArrays`), scored a batch at a time.

    Examples
    --------
    >>> from stream_detect.gaussian_model import GaussianModel
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
        cut = pieces(keys, start, stop, self.max_keys)
        if len(cut) > 1 and len(self) <= self.max_keys:
            # Many pieces: their evictions first, then each model's life scored apart.
            from stream_detect.keyed_lives import score_lives

            score_lives(self, policy, X, labels, keys, cut, log_epsilon, out, explain)
            return
        for begin, end in cut:
            distinct, slots, group = self.admit(keys[begin:end])
            rows = begin + np.arange(end - begin)
            self.score_rows(
                policy, X, labels, distinct, slots, group, rows, log_epsilon, out, explain
            )

    def admit(self, piece: list[str]) -> tuple[list[str], IntArray, IntArray]:
        """Give ``piece``'s keys their slots (evicting as the event loop would), mark them seen.

        Returns the piece's distinct keys (by first appearance), their slots,
        and each row's index into them. No key's statistics change but those
        of the new keys, reset to the template's fresh model.
        """
        distinct = list(dict.fromkeys(piece))
        slots = np.array(self._slots_for(distinct), dtype=np.intp)
        self._reset_fresh()
        position = {key: i for i, key in enumerate(distinct)}
        group = np.fromiter(map(position.__getitem__, piece), np.intp, count=len(piece))
        # Recency as the event loop leaves it: by each key's last event.
        _, from_end = np.unique(group[::-1], return_index=True)  # every key of the piece
        self.mark_seen(slots[np.argsort(-from_end, kind="stable")])
        return distinct, slots, group

    def score_rows(
        self,
        policy: LearningPolicy,
        X: Array,
        labels: NDArray[np.int8],
        distinct: list[str],
        slots: IntArray,
        group: IntArray,
        rows: IntArray,
        log_epsilon: float | None,
        out: Detections,
        explain: Explainer | None,
    ) -> None:
        """Score ``rows`` (ascending; ``group`` indexes their keys in ``distinct`` and ``slots``).

        Each key's rows are scored from its slot's statistics, as the event
        loop would, the keys apart from one another (a key's results do not
        depend on which other keys are scored with it).
        """
        # Each round settles every key's rows up to its first learnable alert; the
        # key's later rows are scored in the next round, from what that alert taught.
        # A round scans a key's rows only up to the next alert the last scan of them
        # raised: the rows after it would be scanned again in the round after.
        # Keys with many rows are scanned first under their foreseen alerts instead.
        expected: BoolArray | None = None
        learnable = (labels < 0) | policy.learn_labelled
        threshold = -np.inf if log_epsilon is None else log_epsilon
        plans = foresee(policy, self, X, labels, slots, group, rows, threshold)
        while rows.size:
            scanned = _window(group, expected, learnable[rows])
            later, later_group, later_alert = self._score_round(
                policy,
                X,
                labels,
                distinct,
                slots,
                rows[scanned],
                group[scanned],
                log_epsilon,
                out,
                explain,
                plans,
            )
            plans = {}
            waiting = ~scanned
            old = np.zeros(0, bool) if expected is None else expected[waiting]
            merged = np.concatenate((later, rows[waiting]))
            order = np.argsort(merged, kind="stable")
            rows, group = merged[order], np.concatenate((later_group, group[waiting]))[order]
            expected = np.concatenate((later_alert, old))[order]

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
        plans: dict[int, KeyPlan],
    ) -> tuple[IntArray, IntArray, BoolArray]:
        """Score ``batch_rows`` (in event order; ``all_group`` indexes their keys in ``distinct``).

        The keys in ``plans`` (all of whose rows are in ``batch_rows``) are
        scanned under their plans. Returns the rows left for the next round,
        with their keys' indices and whether this round's scan found them
        alerting (learnable or not).
        """
        present, group = np.unique(all_group, return_inverse=True)
        slots = all_slots[present]
        order = np.argsort(group, kind="stable")
        counts = np.bincount(group, minlength=present.size)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rows = batch_rows[order]
        sorted_X = X[rows]
        learnable = (labels[rows] < 0) | policy.learn_labelled
        taught, teach = sorted_X, learnable
        if plans:
            taught, teach = taught_rows(X, (labels < 0) | policy.learn_labelled, plans)
            taught, teach = taught[rows], teach[rows]
        stats = self.template.stats
        scan = segmented_prefix(
            taught,
            teach,
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
        learned_within: NDArray[np.int64] = np.cumsum(teach, dtype=np.int64) - teach
        learned_before = (
            self.learned[slots][row_key] + learned_within - learned_within[starts][row_key]
        )
        warm = learned_before < policy.min_samples
        threshold = -np.inf if log_epsilon is None else log_epsilon
        score = policy.decide(block, threshold, warm)
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
        # A planned key's rows are right up to the first the plan got wrong.
        planned = np.zeros(present.size, bool)
        for p in np.flatnonzero(np.isin(present, list(plans))).tolist():
            lo, hi = int(starts[p]), int(ends[p])
            wrong = plans[int(present[p])].first_difference(
                policy, sorted_X[lo:hi], learnable[lo:hi], alert[lo:hi], block, lo
            )
            planned[p] = wrong is None
            hit[p] = wrong is not None
            cut[p] = hi if wrong is None else lo + wrong + 1
        hit &= ~scan.unsure
        planned &= ~scan.unsure
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
        learned = np.bincount(row_key, weights=teach, minlength=present.size).astype(np.int64)
        self.learned[kept] += learned[settled]
        calm = settled[~planned[settled]]
        if policy.flagged != "learn":
            wind_down(self, slots[calm], learned[calm])
        # Planned keys (all rows right) and keys cut at an alert: their policy state
        # is worked out from their alerts, row by row.
        lessons = Lessons()
        for g in np.flatnonzero(planned | hit).tolist():
            lo, hi = int(starts[g]), int(cut[g])
            teach_key(
                self,
                policy,
                int(slots[g]),
                sorted_X[lo:hi],
                learnable[lo:hi],
                alert[lo:hi],
                scan,
                block,
                lo,
                lessons,
                settled=bool(planned[g]),
            )
        learn_lessons(self, lessons, sorted_X, scan, block, policy.clip_sigma)
        for g in np.flatnonzero(scan.unsure).tolist():
            slot = int(slots[g])
            state = self[distinct[present[g]]]
            policy.score_and_learn(
                state, X, labels, rows[starts[g] : ends[g]], log_epsilon, out, explain
            )
            self._store(slot, state)
        later = (np.arange(rows.size) >= cut[row_key]) & hit[row_key]
        back = np.argsort(rows[later], kind="stable")
        return rows[later][back], present[row_key[later]][back], alert[later][back]


def _window(group: IntArray, expected: BoolArray | None, learnable: BoolArray) -> BoolArray:
    """The rows a round scans: each key's rows up to its first ``expected`` learnable alert.

    ``group`` holds each row's key (rows in event order); ``expected`` whether
    the last scan that reached a row found it alerting (None: no scan yet, all
    rows). A key without an expected alert has all its rows scanned.

    >>> _window(np.array([0, 1, 0, 0, 1]), np.array([0, 0, 1, 0, 0], bool), np.ones(5, bool))
    array([ True,  True,  True, False,  True])
    """
    if expected is None:
        return np.ones(group.size, bool)
    hits = np.flatnonzero(expected & learnable)
    limit = np.full(int(group.max(initial=-1)) + 1, group.size)
    keys, first = np.unique(group[hits], return_index=True)
    limit[keys] = hits[first]
    scanned: BoolArray = np.arange(group.size) <= limit[group]
    return scanned
