"""FlatChartEngine: the library's sync engine with the steps of a flat chart made short.

python-statemachine's engine is written for full SCXML charts: compound and parallel states,
history, conflicting transitions across regions, eventless transitions and internal events
checked after every step. Every hip3 machine is flat (top-level atomic states only) and uses
`HipChart`'s options, yet it paid for that generality on every event: working out exit and entry
sets, sorting them by document order, checking every transition of the state for an eventless
one, all before and after its own callbacks ran. That machinery made about 40 % of the Python
calls of an order's transitions (bench/machines.py: 2 805 calls per order on the library's
engine, 1 674 on this one; docs/statemachine.md#cost).

For a flat chart with `HipChart`'s options those computations have fixed answers, so this
engine overrides three steps of the library's `SyncEngine` with them:

- choosing a transition: the current state's transitions in declaration order, the first whose
  event matches and whose validators and guards pass (the library's own `_conditions_match`);
- the microstep: `before`, the source's exit callbacks, `on`, the configuration update, the
  target's entry callbacks, `after` — the library's order, run through the library's own
  callback registry and argument building (`_get_args_kwargs`), so callbacks receive exactly what
  the library would give them; an internal self-transition exits and enters nothing, and a group
  with nothing registered is not run (see `_runs`);
- the macrostep after an event: it can only do something if a callback raised an internal
  event or the state has eventless transitions, so otherwise it is skipped.

Everything else (queues, the processing lock, final states, errors, listeners, the initial
entry) is the library's. `FlatChartEngine.for_chart` says which charts qualify; the others keep
the library's engine. tests/machines/test_flat_engine.py drives every hip3 machine through both
engines with the same events and requires the same states, payloads, commands and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from statemachine.engines.sync import SyncEngine
from statemachine.exceptions import InvalidDefinition
from statemachine.orderedset import OrderedSet

if TYPE_CHECKING:
    from statemachine import StateChart
    from statemachine.event_data import TriggerData
    from statemachine.transition import Transition


class ChartLayout:
    """What a flat chart class's steps need, worked out once per class (machines are built
    often): which states have eventless transitions, and per state and event name the
    transitions that event may take, in declaration order."""

    def __init__(self, chart: type[StateChart]) -> None:
        self.states = {s.id: s for s in chart.states_map.values()}
        self.has_eventless = frozenset(
            s.id for s in self.states.values() if any(t.is_eventless for t in s.transitions)
        )
        self._candidates: dict[tuple[str, str], tuple[Transition, ...]] = {}

    def candidates(self, state_id: str, event: str) -> tuple[Transition, ...]:
        """The library's own matching (`Transition.match`, SCXML prefixes included), asked once
        per state and event name: a transition's events never change after the class is built."""
        key = (state_id, event)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = tuple(
                t for t in self.states[state_id].transitions if not t.initial and t.match(event)
            )
        return found


class FlatChartEngine(SyncEngine):
    # Per chart class: its layout, or None when the class does not suit this engine.
    _layouts: ClassVar[dict[type, ChartLayout | None]] = {}

    @classmethod
    def for_chart(cls, sm: StateChart) -> FlatChartEngine | None:
        """This engine for `sm`, or None when its chart needs the library's full engine."""
        chart = type(sm)
        if chart not in cls._layouts:
            cls._layouts[chart] = ChartLayout(chart) if cls._suits(chart) else None
        layout = cls._layouts[chart]
        return None if layout is None else cls(sm, layout)

    @staticmethod
    def _suits(chart: type[StateChart]) -> bool:
        return (
            chart.atomic_configuration_update
            and not chart.enable_self_transition_entries
            and not chart.catch_errors_as_events
            and all(
                s.parent is None and s.is_atomic and not s.is_history
                for s in chart.states_map.values()
            )
        )

    def __init__(self, sm: StateChart, layout: ChartLayout) -> None:
        super().__init__(sm)
        self._layout = layout

    def _current_state_id(self) -> str:
        (state,) = self.sm.configuration
        return state.id

    def _run_macrostep(self) -> bool:
        # Only a state with eventless transitions, or an internal event a callback raised, can
        # make a macrostep do anything.
        if (
            self.internal_queue.is_empty()
            and self._current_state_id() not in self._layout.has_eventless
        ):
            return False
        return super()._run_macrostep()

    def select_transitions(self, trigger_data: TriggerData) -> list[Transition]:
        event = str(trigger_data.event)
        for transition in self._layout.candidates(self._current_state_id(), event):
            if self._conditions_match(transition, trigger_data):
                return [transition]
        return []

    def select_eventless_transitions(self, trigger_data: TriggerData) -> list[Transition]:
        state = self._layout.states[self._current_state_id()]
        for transition in state.transitions:
            if transition.is_eventless and self._conditions_match(transition, trigger_data):
                return [transition]
        return []

    def _runs(self, key: str) -> bool:
        """Whether a callback group must be run. The library builds a group's arguments even when
        nothing is registered under its key (then the call returns nothing); building them has
        no effect of its own unless the chart or a listener has `prepare_event` callbacks, so
        without those an empty group is skipped outright."""
        callbacks = self.sm._callbacks
        return key in callbacks or self.sm.prepare.key in callbacks

    def microstep(self, transitions: list[Transition], trigger_data: TriggerData) -> Any:
        (transition,) = transitions
        self._microstep_count += 1
        sm = self.sm
        callbacks = sm._callbacks
        previous_configuration = sm.configuration
        # A flat chart exits its source and enters its target on every transition with a target
        # except an internal self-transition (enable_self_transition_entries is off).
        moves = bool(transition.targets) and not (transition.internal and transition.is_self)
        try:
            result = []
            if self._runs(transition.before.key):
                result = self._execute_transition_content(
                    transitions, trigger_data, lambda t: t.before.key
                )
            if moves:
                source = transition.source
                self._invoke_manager.cancel_for_state(source)
                if self._runs(source.exit.key):
                    args, kwargs = self._get_args_kwargs(transition, trigger_data, source=source)
                    callbacks.call(source.exit.key, *args, on_error=None, **kwargs)
                new_configuration = OrderedSet([transition.target])
            else:
                new_configuration = OrderedSet(previous_configuration)
            result += self._execute_transition_content(
                transitions,
                trigger_data,
                lambda t: t.on.key,
                on_error=None,
                previous_configuration=previous_configuration,
                new_configuration=new_configuration,
            )
            sm.configuration = new_configuration
            if moves:
                target = transition.target
                on_entry_result = []
                if self._runs(target.enter.key):
                    args, kwargs = self._get_args_kwargs(transition, trigger_data, target=target)
                    on_entry_result = callbacks.call(
                        target.enter.key, *args, on_error=None, **kwargs
                    )
                if target.invoke.key in callbacks:
                    self._invoke_manager.mark_for_invoke(target, trigger_data.kwargs)
                if target.final:
                    self._handle_final_state(target, on_entry_result)
        except InvalidDefinition:
            sm.configuration = previous_configuration
            raise
        except Exception as e:
            sm.configuration = previous_configuration
            self._handle_error(e, trigger_data)
            return None

        try:
            if self._runs(transition.after.key):
                self._execute_transition_content(
                    transitions, trigger_data, lambda t: t.after.key, set_target_as_state=True
                )
        except InvalidDefinition:
            raise
        except Exception as e:
            self._handle_error(e, trigger_data)

        if len(result) == 0:
            return None
        if len(result) == 1:
            return result[0]
        return result
