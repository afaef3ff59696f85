"""Unit tests of nnopt.grading's trusted side, in this process (no kernel, no reference process):
the tolerance and dtype rule, trajectory comparison, the record format, the judge, and the
diagnosis of the known wrong variants."""
from __future__ import annotations

import numpy as np
import pytest

from nnopt.grading import checks, compare, record, reference, variants
from nnopt.grading.outcome import Verdict
from nnopt.grading.spec import Spec, bind, canonical
from nnopt.grading.verdict import judge

F64, F32 = compare.tolerance("float64"), compare.tolerance("float32")


def sequence_spec(ref: str, hp: dict, x0=(1.0, -1.0), grads=((0.5, -2.0), (1.0, 1.0), (-0.3, 0.2)),
                  dtype: str = "float64") -> Spec:
    """The spec a test cell's ``check_sequence(Answer, ref, hp, x0, grads, dtype)`` records."""
    return bind(checks.check_sequence, "sequence", (None, ref, hp, list(x0), [list(g) for g in grads], dtype), {})[1]


def trajectory_spec(ref: str, hp: dict, surface: str = "quadratic", steps: int = 30) -> Spec:
    return bind(checks.check_trajectory, "trajectory", (None, ref, hp, surface, steps), {})[1]


def path_record(spec: Spec, points, dtype: str = "float64") -> dict:
    return record.make(spec, {"path": record.encode(np.asarray(points, dtype=float)), "dtype": dtype})


# ----------------------------------------------------------------- tolerance and dtype
@pytest.mark.parametrize("tol", [F64, F32], ids=["float64", "float32"])
def test_the_tolerance_is_atol_plus_rtol_times_the_expected_value(tol):
    e = np.array([0.0, 1.0, -250.0])
    edge = tol.atol + tol.rtol * np.abs(e)
    assert tol.close(e + 0.99 * edge, e).all()
    assert not tol.close(e + 1.01 * edge, e).any()
    assert not tol.close(e - 1.01 * edge, e).any()


def test_non_finite_values_agree_only_with_the_same_failure():
    mine = np.array([np.nan, np.inf, -np.inf, np.nan, np.inf, 1.0, 1.0])
    ref = np.array([np.nan, np.inf, -np.inf, 1.0, -np.inf, np.nan, np.inf])
    assert F64.close(mine, ref).tolist() == [True, True, True, False, False, False, False]


def test_float32_rounding_fails_float64_inputs_and_passes_float32_inputs():
    e = np.array([0.123456789012345, -3.14159265358979, 2.718281828459045e-3])
    rounded = e.astype(np.float32).astype(np.float64)
    assert not F64.close(rounded, e).all()
    assert F32.close(rounded, e).all()
    # the same float64 algebra in another order (folded bias correction) passes at float64
    s, r, b1, b2, t, eps = 0.3, 0.04, 0.9, 0.999, 3, 1e-8
    boxed = (s / (1 - b1 ** t)) / np.sqrt(r / (1 - b2 ** t) + eps)
    folded = s * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) / np.sqrt(r + eps * (1 - b2 ** t))
    assert boxed != folded and F64.close(folded, boxed)


def test_an_unknown_dtype_is_refused_and_messages_state_the_rule():
    with pytest.raises(ValueError, match=r"Invalid dtype: 'float16' \(expected one of"):
        compare.tolerance("float16")
    text = F64.describe("float32")
    assert "float64 inputs" in text and "1e-12 + 1e-09*|expected|" in text and "your results are float32" in text


# ----------------------------------------------------------------- trajectories
def _points(*rows):
    return [np.array(r, dtype=float) for r in rows]


@pytest.mark.parametrize("mine, ref, expected", [
    (_points([0, 0], [1, 1]), _points([0, 0], [1, 1]), None),
    (_points([0, 0], [1, 2]), _points([0, 0], [1, 1]), 1),
    (_points([1, 0], [1, 1]), _points([0, 0], [1, 1]), 0),
    (_points([0, 0]), _points([0, 0], [1, 1]), 1),                    # stops early
    (_points([0, 0], [1, 1], [2, 2]), _points([0, 0], [1, 1]), 2),    # goes on
    (_points([0, 0], [np.nan, 5]), _points([0, 0], [2e6, 0]), None),  # both diverge, any way
    (_points([0, 0], [np.inf, 0]), _points([0, 0], [1, 1]), 1),       # only yours diverges
    (_points([0, 0], [1, 1]), _points([0, 0], [1, 1, 1]), 1),         # another shape
])
def test_the_first_difference_of_two_trajectories(mine, ref, expected):
    assert compare.first_difference(mine, ref, F64) == expected
    assert compare.agree(mine, ref, F64) == (expected is None)


def test_path_messages_say_where_and_how_the_trajectories_part():
    ref = _points([0, 0], [1, 1], [2, 2])
    ctx = lambda k: f"  context of step {k}\n"  # noqa: E731
    ok, msg = compare.explain_paths("L", _points([0, 0], [1, 1], [2, 3]), ref, F64, ctx)
    assert not ok and "step 2 differs" in msg and "context of step 2" in msg
    assert "theta = [1., 1.]" in msg and "expected after step 2: [2., 2.]" in msg and "[2., 3.]" in msg
    assert "does not start at x0" in compare.explain_paths("L", _points([9, 9]), ref, F64, ctx)[1]
    assert "stops after 1 steps" in compare.explain_paths("L", ref[:2], ref, F64, ctx)[1]
    ok, msg = compare.explain_paths("L", ref, ref, F64, ctx)
    assert ok and msg == "L: all 2 steps agree with the reference"


# ----------------------------------------------------------------- the record format
def test_records_keep_shapes_and_refuse_oversized_or_garbage_payloads(monkeypatch):
    value = np.arange(6.0).reshape(2, 3)
    assert record.decode(record.encode(value)).tolist() == value.tolist()
    assert record.encode(np.float32(0.5)) == 0.5 and record.decode(record.encode(2.0)).shape == ()
    monkeypatch.setattr(record, "MAX_NUMBERS", 5)
    with pytest.raises(ValueError, match="more than 5 numbers"):
        record.decode(record.encode(value))
    for bad in (None, "1.0", [[1.0, None]]):
        with pytest.raises(ValueError, match="Invalid a recorded value"):
            record.decode(bad)


def test_a_record_round_trips_and_its_error_text_is_bounded():
    spec = Spec("schedule", {"reference": "inverse_time", "kwargs": {"lr0": 0.5, "k": 0.1}, "ts": [0, 1]}, "why")
    rec = record.make(spec, {"values": [0.5, 0.5 / 1.1]})
    assert rec["v"] == record.VERSION and rec["spec"] == spec.to_json()
    parsed, answer, error = record.parse(rec)
    assert parsed == spec and answer == {"values": [0.5, 0.5 / 1.1]} and error is None
    long = record.make(spec, error="x" * (record.MAX_TEXT + 100))
    assert record.parse(long)[2] == "x" * record.MAX_TEXT


@pytest.mark.parametrize("payload, needle", [
    ("a string", "expected a dict with v=1"),
    ({"v": 2, "spec": {}}, "expected a dict with v=1"),
    ({"v": 1, "spec": {"kind": "schedule"}}, "Invalid check"),
    ({"v": 1, "spec": {"kind": "schedule", "args": {}}}, "no answer and no error"),
    ({"v": 1, "spec": {"kind": "schedule", "args": {}}, "answer": [1.0]}, "no answer and no error"),
])
def test_malformed_records_are_refused_with_the_reason(payload, needle):
    with pytest.raises(ValueError, match=needle):
        record.parse(payload)
    verdict = judge(payload)
    assert not verdict.ok and not verdict.grader_error and "malformed record" in verdict.message


def test_only_display_outputs_with_the_mimetype_are_records():
    rec = {"v": 1}
    outputs = [
        {"output_type": "display_data", "data": {record.MIMETYPE: rec, "text/plain": "x"}},
        {"output_type": "execute_result", "data": {record.MIMETYPE: rec}},
        {"output_type": "stream", "name": "stdout", "text": record.MIMETYPE},
        {"output_type": "display_data", "data": {"text/plain": "recorded for grading"}},
        {"output_type": "error", "data": {record.MIMETYPE: rec}},
        "not an output", {"output_type": "display_data", "data": "garbage"},
    ]
    assert record.in_outputs(outputs) == [rec, rec]


def test_record_mode_is_only_the_exact_setting(monkeypatch):
    for value, expected in (("record", True), ("RECORD", False), ("", False)):
        monkeypatch.setenv("NNOPT_GRADING_MODE", value)
        assert record.recording_only() is expected


# ----------------------------------------------------------------- a spec is literal data
def test_a_specs_key_ignores_its_wording_and_argument_order():
    a = Spec.from_json({"kind": "k", "args": {"b": 1, "a": [1, 2]}, "why": "one"})
    b = Spec.from_json({"kind": "k", "args": {"a": (1, 2), "b": 1}, "why": "two"})
    assert a.key() == b.key() and a != b
    assert canonical(range(3)) == [0, 1, 2]
    with pytest.raises(ValueError, match="Invalid argument: nan"):
        canonical(float("nan"))
    with pytest.raises(ValueError, match=r"Invalid argument 'x0' of check_sequence: a ndarray"):
        bind(checks.check_sequence, "sequence", (None, "sgd", {"lr": 0.1}, np.zeros(2), [[1.0, 1.0]]), {})


# ----------------------------------------------------------------- the judge
def test_the_judge_passes_the_reference_numbers_and_a_verdict_round_trips():
    spec = sequence_spec("adam", {"lr": 0.01})
    verdict = judge(path_record(spec, reference.path(spec.args)), expected=spec)
    assert verdict.ok and verdict.bugs == [] and "all 3 steps agree" in verdict.message
    assert Verdict.from_json(verdict.to_json()) == verdict


def test_the_judge_checks_the_record_against_the_trusted_spec():
    spec = sequence_spec("adam", {"lr": 0.01})
    easier = sequence_spec("adam", {"lr": 0.0})          # a forged spec: nothing moves
    rec = path_record(easier, reference.path(easier.args))
    assert judge(rec).ok
    verdict = judge(rec, expected=spec)
    assert not verdict.ok and "the record is for another check than adam(lr=0.01)" in verdict.message
    worded = Spec(spec.kind, spec.args, "the trusted wording")
    wrong = path_record(spec, np.zeros((4, 2)))
    assert "the trusted wording" in judge(wrong, expected=worded).message


def test_an_error_record_or_malformed_answer_scores_zero_and_an_unknown_check_is_a_grader_error():
    spec = sequence_spec("momentum", {"lr": 0.1})
    verdict = judge(record.make(spec, error="your code raised NotImplementedError: todo"))
    assert not verdict.ok and not verdict.grader_error
    assert verdict.message == f"{spec.describe()}: your code raised NotImplementedError: todo"
    for answer in ({}, {"path": [1.0, 2.0]}, {"path": [[1.0, -1.0, 0.0]]}, {"path": [["one", 2.0]]}):
        verdict = judge(record.make(spec, answer))
        assert not verdict.ok and not verdict.grader_error
        assert "the recorded answer is malformed" in verdict.message and "scores 0" in verdict.message
    verdict = judge(record.make(Spec("no_such_check", {}), {}))
    assert not verdict.ok and verdict.grader_error and "unknown check 'no_such_check'" in verdict.message


def test_float32_answers_to_float64_checks_fail_and_to_float32_checks_pass():
    spec = sequence_spec("momentum", {"lr": 0.1, "momentum": 0.9})
    exact = reference.path(spec.args)
    verdict = judge(path_record(spec, exact, dtype="float32"))
    assert not verdict.ok and "float32 arrays for float64 inputs" in verdict.message
    spec32 = sequence_spec("momentum", {"lr": 0.1, "momentum": 0.9}, dtype="float32")
    run32 = reference.path(spec32.args, variants.rule("momentum", spec32.args["hp"]))
    assert all(p.dtype == np.float32 for p in run32)
    assert judge(path_record(spec32, run32, dtype="float32")).ok


def test_a_wrong_answer_that_matches_no_variant_names_no_bug_but_states_the_tolerance():
    spec = sequence_spec("adam", {"lr": 0.01})
    points = np.array(reference.path(spec.args))
    points[2:] += 1e-3
    verdict = judge(path_record(spec, points))
    assert not verdict.ok and verdict.bugs == [] and "Diagnosis" not in verdict.message
    assert "step 2 differs" in verdict.message and "compared for float64 inputs" in verdict.message
    assert "your results are float64" in verdict.message


# ----------------------------------------------------------------- diagnosis: every optimizer variant
#: (variant, reference, hyperparameters) of a check where the variant differs from the reference
OPTIMIZER_CASES = [
    ("momentum_no_velocity", "momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum_sign", "momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum_dampening", "momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum_torch_form", "momentum", {"lr": {"schedule": "exponential", "lr0": 0.05, "k": 0.1}, "momentum": 0.9}),
    ("schedule_from_1", "momentum", {"lr": {"schedule": "exponential", "lr0": 0.05, "k": 0.1}, "momentum": 0.9}),
    ("schedule_frozen", "sgd", {"lr": {"schedule": "exponential", "lr0": 0.05, "k": 0.1}}),
    ("nesterov_classical", "nesterov", {"lr": 0.05, "momentum": 0.9}),
    ("nesterov_no_gradient_term", "nesterov", {"lr": 0.05, "momentum": 0.9}),
    ("adagrad_eps_inside", "adagrad", {"lr": 0.1, "eps": 1e-2}),
    ("adagrad_no_accumulation", "adagrad", {"lr": 0.1}),
    ("rmsprop_eps_outside", "rmsprop", {"lr": 0.01, "eps": 1e-2}),
    ("rmsprop_no_one_minus_rho", "rmsprop", {"lr": 0.01}),
    ("adam_no_bias_correction", "adam", {"lr": 0.01}),
    ("adam_t_plus_one", "adam", {"lr": 0.01}),
    ("adam_t_zero", "adam", {"lr": 0.01}),
    ("adam_eps_outside", "adam", {"lr": 0.01, "eps": 1e-2}),
    ("adamw_coupled", "adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("adamw_decay_without_lr", "adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("float32", "momentum", {"lr": 0.05, "momentum": 0.9}),
]


@pytest.mark.parametrize("key, ref, hp", OPTIMIZER_CASES, ids=[c[0] for c in OPTIMIZER_CASES])
def test_an_answer_made_by_a_variant_is_diagnosed_as_that_variant_only(key, ref, hp):
    spec = trajectory_spec(ref, hp)
    mine = reference.path(spec.args, variants.rule(ref, spec.args["hp"], key))
    verdict = judge(path_record(spec, mine, dtype="float32" if key == "float32" else "float64"))
    assert not verdict.ok and verdict.bugs == [key], verdict.message
    name = reference.NAMES[ref]
    assert f'Diagnosis: your {name} matches "{variants.BY_KEY[key].label}"' in verdict.message
    assert variants.BY_KEY[key].hint in verdict.message and "compared for float64 inputs" in verdict.message


def test_the_optimizer_cases_cover_every_optimizer_variant_and_the_rules_are_right_without_a_bug():
    from nnopt.grading import variants_beyond
    lab4 = {row[0] for row in variants_beyond.TABLE}          # Lab 4's: tests/test_lab4.py
    optimizer_keys = {v.key for v in variants.VARIANTS if set(v.references) & set(reference.NAMES) - {
        "inverse_time", "clip_by_global_norm"}} - lab4
    assert {k for k, *_ in OPTIMIZER_CASES} == optimizer_keys
    for _, ref, hp in OPTIMIZER_CASES:
        spec = trajectory_spec(ref, hp)
        assert compare.agree(reference.path(spec.args, variants.rule(ref, spec.args["hp"])),
                             reference.path(spec.args), F64), ref


def test_a_variant_that_the_check_cannot_tell_apart_is_not_named():
    # with a constant lr a frozen schedule is the right answer: it must not be blamed
    spec = trajectory_spec("sgd", {"lr": 0.05})
    assert "schedule_frozen" not in {v.key for v in variants.applicable("sgd", spec.args)}
    verdict = judge(path_record(spec, reference.path(spec.args)))
    assert verdict.ok and verdict.bugs == []


# ----------------------------------------------------------------- diagnosis: schedules and clipping
def _schedule_spec() -> Spec:
    return bind(checks.check_schedule, "schedule", (None, "inverse_time", {"lr0": 0.5, "k": 0.1}, range(5)), {})[1]


@pytest.mark.parametrize("key", ["schedule_from_1", "schedule_precedence"])
def test_schedule_bugs_are_named(key):
    spec = _schedule_spec()
    values = variants.schedule(key, spec.args["kwargs"], spec.args["ts"])
    verdict = judge(record.make(spec, {"values": record.encode(values)}))
    assert not verdict.ok and verdict.bugs == [key] and variants.BY_KEY[key].label in verdict.message
    assert "(the first step is t=0)" in verdict.message


def test_a_schedule_is_judged_value_by_value():
    spec = _schedule_spec()
    good = reference.schedule_values(spec.args)
    assert judge(record.make(spec, {"values": record.encode(good)})).ok
    short = judge(record.make(spec, {"values": record.encode(good[:3])}))
    assert not short.ok and "3 values for 5 values of t" in short.message


def _clipping_spec(cases) -> Spec:
    return bind(checks.check_clipping, "clipping", (None, "clip_by_global_norm", cases), {})[1]


def _clip_results(fn, spec: Spec) -> list:
    out = []
    for case in spec.args["cases"]:
        clipped, norm = fn(*reference.case_arrays(case, "float64"))
        out.append({"clipped": [record.encode(c) for c in clipped], "norm": record.encode(norm)})
    return out


CLIP_CASES = [[[[3.0, 4.0], [0.0]], 1.0], [[[3.0], [4.0]], 4.0], [[[0.3, 0.4]], 1.0]]


@pytest.mark.parametrize("key", ["clip_norm_after", "clip_per_array", "clip_always"])
def test_clipping_bugs_are_named(key):
    spec = _clipping_spec(CLIP_CASES)
    results = _clip_results(lambda arrays, m: (lambda c, n: (c, n if n is not None else 5.0))(
        *variants.clipping(key, arrays, m)), spec)
    verdict = judge(record.make(spec, {"results": results, "modified": False, "dtype": "float64"}))
    assert not verdict.ok and key in verdict.bugs and variants.BY_KEY[key].label in verdict.message


def test_clipping_is_judged_case_by_case_and_a_modified_input_is_named():
    spec = _clipping_spec(CLIP_CASES)
    good = _clip_results(lambda arrays, m: reference.clipping_case("clip_by_global_norm",
                                                                   [[a.tolist() for a in arrays], m], "float64"), spec)
    assert judge(record.make(spec, {"results": good, "modified": False, "dtype": "float64"})).ok
    verdict = judge(record.make(spec, {"results": good, "modified": True, "dtype": "float64"}))
    assert not verdict.ok and verdict.bugs == ["clip_in_place"] and "modified its input" in verdict.message
    verdict = judge(record.make(spec, {"results": good[:2], "modified": False, "dtype": "float64"}))
    assert not verdict.ok and "expected 3 results" in verdict.message
