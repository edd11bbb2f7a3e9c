"""`threshold` and `detection_filter` state, keyed by rule and tracked entity, on packet time.

Semantics follow Suricata's rule thresholds:
- limit N/T: at most N alerts per T-second window;
- threshold N/T: one alert each time N matches accumulate within a window;
- both N/T: one alert per window, once N matches have been seen in it;
- detection_filter N/T: every match after the first N within the window alerts.
A window opens with the first match and closes T seconds later. The table is bounded
(oldest entries dropped); by_flow state lives in the flow itself and dies with it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from signatures.rules.model import Threshold

FLOW_KEY = "rules.thresholds"


class ThresholdTable:
    """Decides whether a matching rule alerts. `now` is the packet's timestamp."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[Any, ...], list[float]] = OrderedDict()
        self.dropped = 0

    def _track_key(self, t: Threshold, src: bytes, dst: bytes) -> tuple[Any, ...]:
        if t.track == "by_src":
            return (src,)
        if t.track == "by_dst":
            return (dst,)
        if t.track == "by_both":
            return (src, dst)
        return ()

    def allow(
        self,
        rule_key: tuple[int, int],
        t: Threshold,
        now: float,
        src: bytes,
        dst: bytes,
        flow_ext: dict[str, Any] | None,
    ) -> bool:
        """Count one match of the rule; True when it should produce an alert."""
        key = (rule_key, t.kind, *self._track_key(t, src, dst))
        if t.track == "by_flow":
            if flow_ext is None:
                return True
            store: dict[tuple[Any, ...], list[float]] = flow_ext.setdefault(FLOW_KEY, {})
            state = store.get(key)
            if state is None:
                state = store[key] = [now, 0.0, 0.0]
        else:
            entries = self.entries
            state = entries.get(key)
            if state is None:
                if len(entries) >= self.max_entries:
                    entries.popitem(last=False)
                    self.dropped += 1
                state = entries[key] = [now, 0.0, 0.0]
            else:
                entries.move_to_end(key)
        return _step(state, t, now)


def _step(state: list[float], t: Threshold, now: float) -> bool:
    """state = [window start, matches in window, alerts in window]."""
    if now - state[0] > t.seconds:
        state[0], state[1], state[2] = now, 0.0, 0.0
    state[1] += 1
    kind = t.kind
    if kind == "limit":
        if state[2] < t.count:
            state[2] += 1
            return True
        return False
    if kind == "threshold":
        if state[1] >= t.count:
            state[1] = 0.0
            return True
        return False
    if kind == "both":
        if state[1] >= t.count and state[2] == 0:
            state[2] = 1.0
            return True
        return False
    return state[1] > t.count
