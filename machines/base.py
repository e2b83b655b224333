"""The project base class for every hip3 state machine.

python-statemachine's `StateChart` defaults are wrong for money-handling code (see
docs/statemachine.md#defaults): they swallow exceptions raised in callbacks, silently ignore
events that have no transition, and run `on_enter` for internal self-transitions. `HipChart`
flips all four options so that bugs surface, unexpected events raise `TransitionNotAllowed`, and
readers never observe an empty configuration.

Machines are pure and synchronous: no I/O, no asyncio, no clock reads. Time arrives inside
events as `now_ms`. Side effects are described by command objects appended to `outbox`; the
runtime executes them. A machine that must ignore an event in some state says so with an
explicit internal self-transition (see `stay`), never by relaxing the base options.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from statemachine import State, StateChart
from statemachine.transition_list import TransitionList

from .engine import FlatChartEngine


class HipChart(StateChart):
    """Abstract base (no states). Subclasses declare states, events and callbacks."""

    catch_errors_as_events = False
    allow_event_without_transition = False
    enable_self_transition_entries = False
    atomic_configuration_update = True

    # Payload names the library would silently replace or trip over (see
    # docs/statemachine.md#payload-names), and `key`, which collides with an internal parameter
    # of the callback registry.
    RESERVED_PAYLOAD_NAMES: ClassVar[frozenset[str]] = frozenset(
        {"state", "source", "target", "model", "machine", "transition", "event_data", "key"}
    )
    # Per machine: public payload name -> the name the callbacks use (to dodge reserved names).
    payload_aliases: ClassVar[dict[str, str]] = {}
    # Per machine: public event name -> declared event id (to dodge forbidden event names).
    event_aliases: ClassVar[dict[str, str]] = {}

    def __init__(self, *, outbox: list | None = None, **kwargs: Any) -> None:
        # Set before super().__init__(): the initial state is entered inside it and its
        # callbacks may already emit.
        self.outbox: list = outbox if outbox is not None else []
        super().__init__(**kwargs)

    def _get_engine(self) -> Any:
        # The library picks its engine here; flat charts get the one that skips the SCXML
        # machinery they cannot use (machines/engine.py).
        engine = None if self._callbacks.has_async_callbacks else FlatChartEngine.for_chart(self)
        return engine if engine is not None else super()._get_engine()

    def send(self, event: str, *args: Any, **kwargs: Any) -> Any:
        """`StateChart.send` with aliases applied and reserved payload names refused.

        Always deliver events through `send` (not `sm.event(...)`), so the aliases apply.
        """
        event = self.event_aliases.get(event, event)
        for public, internal in self.payload_aliases.items():
            if public in kwargs:
                kwargs[internal] = kwargs.pop(public)
        clash = self.RESERVED_PAYLOAD_NAMES.intersection(kwargs)
        if clash:
            raise ValueError(
                f"{type(self).__name__}.send({event!r}): reserved payload name(s) "
                f"{sorted(clash)}; the state-machine library would replace them"
            )
        return super().send(event, *args, **kwargs)

    def emit(self, cmd: object) -> None:
        self.outbox.append(cmd)

    @property
    def state(self) -> str:
        """Id of the current state (all hip3 machines are flat)."""
        # The model's field as `current_state_value` reads it, without its two property hops:
        # the runtime asks this on every frame and every tick.
        return str(getattr(self.model, self.state_field, None))

    @property
    def is_final(self) -> bool:
        # Computed from the configuration, not `is_terminated`, which is wrong for a machine
        # restored into a final state.
        return any(s.final for s in self.configuration)


def stay(*states: State, on: str | None = None, cond: str | None = None) -> TransitionList:
    """Internal self-transitions for `states`: the event is accepted and changes nothing but
    what `on` records. This is how a machine documents an event it deliberately ignores."""
    if not states:
        raise ValueError("stay() needs at least one state")
    kwargs: dict[str, Any] = {"internal": True}
    if on is not None:
        kwargs["on"] = on
    if cond is not None:
        kwargs["cond"] = cond
    transitions = states[0].to.itself(**kwargs)
    for s in states[1:]:
        transitions = transitions | s.to.itself(**kwargs)
    return transitions


def parse_positive_decimal(value: object, what: str) -> Decimal:
    """Exact, strictly positive decimal from a wire string (floats refused: they are not exact)."""
    if isinstance(value, float | bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"{what} must be a decimal string, got {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"{what} is not a decimal number: {value!r}") from exc
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{what} must be a finite number > 0, got {value!r}")
    return number


def require_non_negative_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be an int >= 0, got {value!r}")
    return value


def require_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value
