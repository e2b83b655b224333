"""Leverage per market, set once at start: `[[markets]] leverage` (or `margin.leverage` for
every market), cross margin where the asset's `marginMode` allows it (and `margin.cross` asks
for it), isolated everywhere else.

After discovery, on a live connection whose account check passed, each market with a
configured leverage is asked `activeAssetData` (the account's current setting on it); only a
setting that differs is changed with `updateLeverage`, so a restart does not send the action
again. READY-TRADING waits until every setting is confirmed (`Ready.unsettled`), so nothing
trades on a leverage the operator did not ask for; a refusal (or a leverage above the
market's maxLeverage) therefore ends the run before any entry, with one line naming the
market, the setting and the reason.

Facts (docs/exchange/actions.md#updateleverage, docs/exchange/hip3.md#margin-modes): `updateLeverage {asset, isCross, leverage}` with an integer
leverage from 1 to the asset's maxLeverage; `isCross` must be false when the asset's
`marginMode` is `strictIsolated` or `noCross` (`normal` or absent allows cross);
`activeAssetData {user, coin}` answers `leverage: {type: cross|isolated, value}`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hip3.market.state import MarketSpec
from hip3.protocol.actions import update_leverage_action
from hip3.runtime.common import FatalError, log
from hip3.runtime.post_owners import SettingPost

# marginMode values under which an asset may be traded with cross margin
CROSS_ALLOWED = frozenset({"", "normal"})


def margin_setting(spec: MarketSpec, leverage: int, *, prefer_cross: bool) -> tuple[bool, int]:
    """(is_cross, leverage) to set on the market."""
    return prefer_cross and spec.margin_mode in CROSS_ALLOWED, leverage


def describe(setting: tuple[bool, int]) -> str:
    return f"{'cross' if setting[0] else 'isolated'} {setting[1]}x"


class LeverageSetter:
    def __init__(
        self,
        *,
        wanted: dict[str, int],
        prefer_cross: bool,
        specs: dict[str, MarketSpec],
        unsettled: set[str],
        retired: set[str],
        ask: Any,
        wire: Any,
        conn: Any,
        user: str | None,
        counters: Any,
    ) -> None:
        self.pending = {c: v for c, v in wanted.items() if v}
        self.prefer_cross = prefer_cross
        self.specs = specs
        # markets whose setting is not confirmed yet: READY-TRADING waits for them (shared
        # with Ready)
        self.unsettled = unsettled
        self.retired = retired
        self.ask = ask  # the reconciler's checked info request
        self.wire = wire
        self.conn = conn
        self.user = user
        self.counters = counters
        self.in_flight: set[str] = set()
        self.settings: dict[str, tuple[bool, int]] = {}  # coin -> confirmed (is_cross, value)
        unsettled.update(self.pending)

    def want(self, coin: str, value: int) -> None:
        """A market that joined mid-run: its leverage is set like the others' at start."""
        if value and coin not in self.settings:
            self.pending[coin] = value
            self.unsettled.add(coin)

    def tick(self, now: int) -> None:
        """Ask about every market still waiting, once the account may be traded."""
        if not self.pending or self.conn.state != "live" or not self.wire.signer_verified:
            return
        for coin, value in list(self.pending.items()):
            spec = self.specs.get(coin)
            if coin in self.in_flight or spec is None or coin in self.retired:
                continue
            if value > spec.max_leverage:
                raise FatalError(
                    f"leverage {value} for {coin} is above its maxLeverage {spec.max_leverage}: "
                    "lower its [[markets]] leverage or margin.leverage"
                )
            self.in_flight.add(coin)
            if not self.ask(
                {"type": "activeAssetData", "user": self.user, "coin": coin},
                f"leverage:{coin}",
                on_answer=partial(self._current, coin),
                on_failure=partial(self._lost, coin),
            ):
                self.in_flight.discard(coin)

    def _current(self, coin: str, data: Any, now: int) -> None:
        spec = self.specs[coin]
        want = margin_setting(spec, self.pending[coin], prefer_cross=self.prefer_cross)
        lev = data["leverage"]
        if ((lev["type"] == "cross"), lev["value"]) == want:
            self._confirmed(coin, want, sent=False)
            return
        owner = SettingPost(partial(self._answered, coin, want), partial(self._lost, coin))
        action = update_leverage_action(asset=spec.asset, is_cross=want[0], leverage=want[1])
        if self.wire.post_action(action, kind="updateLeverage", owner=owner) is None:
            self.in_flight.discard(coin)  # no room on the wire: the next tick asks again

    def _answered(self, coin: str, want: tuple[bool, int], error: str | None, now: int) -> None:
        if error is None:
            self._confirmed(coin, want, sent=True)
            return
        self.counters["leverage_refused"] += 1
        raise FatalError(
            f"updateLeverage refused for {coin} ({describe(want)}, asset "
            f"{self.specs[coin].asset}): {' '.join(error.split())[:200]}"
        )

    def _lost(self, coin: str, reason: str, now: int) -> None:
        self.in_flight.discard(coin)  # unknown outcome: the next tick reads the setting again

    def _confirmed(self, coin: str, want: tuple[bool, int], *, sent: bool) -> None:
        self.pending.pop(coin, None)
        self.in_flight.discard(coin)
        self.settings[coin] = want
        self.unsettled.discard(coin)
        self.counters["leverage_set" if sent else "leverage_already_set"] += 1
        log.info("%s: leverage %s (%s)", coin, describe(want), "set" if sent else "already set")
