"""The default dispatcher runs the full strategy: detector, per-market gates, the HIP-3 fee
table fed by userFees, and the ParamChange gate fed by every epoch's discovery."""

from __future__ import annotations

import inspect
from dataclasses import fields, replace
from decimal import Decimal

from hip3.machines import commands as C

from hip3.runtime.assembly import Runtime
from hip3.strategy.basic import BasicDetector
from hip3.strategy.detector import Detector

from .fakes import Harness


def test_default_detector_is_the_full_one_with_its_gates_and_specs():
    h = Harness(detector={"kind": "full"})
    d = h.d
    assert isinstance(d.detector, Detector)
    assert set(d.gates) == set(d.coins)
    h.start()
    h.bring_up()
    assert d.ready.trading()
    # the detector reads the very dict discovery fills: asset ids and lots are known to it
    assert d.specs and all(c in d.specs for c in d.coins)
    assert d.executor.specs is d.specs


def test_basic_detector_on_request():
    assert isinstance(Harness(detector={"kind": "basic"}).d.detector, BasicDetector)


def test_user_fee_rates_from_reconciliation_set_the_fee_model():
    h = Harness(detector={"kind": "full"})
    h.start()
    h.bring_up()
    coin = h.d.coins[0]
    # fake exchange: userCrossRate 0.00045 (4.5 bps), dex fee scale 1.0 -> HIP-3 pays 2x
    assert h.d.fees(coin) == Decimal("9.0")


def test_changed_parameters_at_rediscovery_block_the_market():
    h = Harness(detector={"kind": "full"})
    h.start()
    h.bring_up()
    coin = h.d.coins[0]
    gate = h.d.gates[coin]
    assert not gate.param_changed
    changed = {
        c: replace(s, sz_decimals=s.sz_decimals + 1) if c == coin else s
        for c, s in h.d.specs.items()
    }
    h.d.reconciler.apply_specs(changed)
    assert gate.param_changed
    assert not h.d.gates[h.d.coins[1]].param_changed
    assert h.d.specs[coin].sz_decimals == changed[coin].sz_decimals


def test_every_command_a_machine_can_emit_has_a_component_that_runs_it():
    # a command without a runner would be found only when a machine first emits it, at run
    # time, as an internal error that trips the HardStop
    d = Harness().d
    declared = {
        obj
        for _name, obj in vars(C).items()
        if inspect.isclass(obj) and obj.__module__ == C.__name__
    }
    assert len(declared) >= 19
    assert set(d.command_runners) == declared
    for run in d.command_runners.values():
        assert run.__self__ in (d.epoch, d.reconciler, d.flattening, d.safety, d)


def test_the_dispatcher_exposes_everything_the_assembly_builds_under_its_own_name():
    # status, metrics, the summary, the dashboard and the backtest read the components from
    # the dispatcher; a component added to the assembly but not copied would be missed there
    d = Harness().d
    missing = [f.name for f in fields(Runtime) if not hasattr(d, f.name)]
    assert missing == []
