"""The exercise checks: every reference passes, every catalogued mistake is named, and a
student's stub, crash, wrong shape, wrong type or endless loop is reported plainly."""
from __future__ import annotations

import pytest
import torch

import backbones as bb
from backbones.exercises import EXERCISES
from backbones.exercises.core import run_check

MISTAKES = [(name, key) for name, exercise in EXERCISES.items() for key in exercise.mistakes]


@pytest.mark.parametrize("name", EXERCISES)
def test_reference_passes(name):
    exercise = EXERCISES[name]
    result = run_check(exercise, exercise.reference)
    assert result.passed, result.message
    assert f"correct on all {len(exercise.cases())} cases" in result.message


@pytest.mark.parametrize("name", EXERCISES)
def test_catalogue_has_at_least_five_plausible_mistakes(name):
    assert len(EXERCISES[name].mistakes) >= 5


@pytest.mark.parametrize("name, key", MISTAKES, ids=[f"{n}-{k}" for n, k in MISTAKES])
def test_each_mistake_is_named(name, key):
    exercise = EXERCISES[name]
    mistake = exercise.mistakes[key]
    result = run_check(exercise, mistake.wrong)
    assert result.status == "failed"
    assert result.mistake == key, f"expected hint {mistake.hint!r}, got {result.message!r}"
    assert mistake.hint in result.message


def test_cases_include_an_edge_case_of_one():
    for exercise in EXERCISES.values():
        assert any(" one" in case.label or "single" in case.label for case in exercise.cases()), exercise.name


def test_untouched_stub_is_not_implemented_yet():
    def top_k_accuracy(logits, labels, k=1):
        raise NotImplementedError("Exercise: replace this line with your code.")

    result = run_check(EXERCISES["top_k_accuracy"], top_k_accuracy)
    assert result.status == "todo" and result.message.startswith("not implemented yet")
    assert str(result).startswith("→")


def test_students_own_exception_is_reported_as_theirs():
    def cross_entropy(logits, labels):
        probabilities = logits.softmax(dim=1)
        return -probabilities.log()[labels].mean(dim=2)  # their bug

    result = run_check(EXERCISES["cross_entropy"], cross_entropy)
    assert result.status == "failed"
    assert result.message.startswith("your function raised IndexError")
    assert "`return -probabilities.log()[labels].mean(dim=2)  # their bug`" in result.message
    assert "on a batch of 8 with 10 classes" in result.message


@pytest.mark.parametrize("returned, expected_message", [
    (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).reshape(1), "returned shape (1,), expected ()"),
    (lambda lg, lb: [torch.nn.functional.cross_entropy(lg, lb).item()], "returned a list, expected a torch.Tensor"),
    (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).round().long(), "returned dtype torch.int64"),
    (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).to("meta"), "returned a tensor on meta"),
])
def test_wrong_shape_type_dtype_device_are_plain(returned, expected_message):
    result = run_check(EXERCISES["cross_entropy"], returned)
    assert result.status == "failed" and expected_message in result.message


def test_unknown_mistake_shows_where_without_the_reference():
    result = run_check(EXERCISES["cross_entropy"], lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb) + 0.5)
    assert result.status == "failed" and result.mistake is None
    assert result.message.startswith("on a batch of 8 with 10 classes, wrong values: expected")
    assert "log_softmax" not in result.message and "topk" not in result.message


def test_a_number_where_a_number_is_expected():
    result = run_check(EXERCISES["top_k_accuracy"], lambda lg, lb, k=1: "high")
    assert "returned a str, expected a number" in result.message


def test_endless_loop_is_stopped_with_a_message():
    def top_k_accuracy(logits, labels, k=1):
        while True:
            pass

    result = run_check(EXERCISES["top_k_accuracy"], top_k_accuracy, seconds=0.5)
    assert result.status == "failed" and result.message.startswith("stopped after 0.5 s")


def test_modifying_the_input_in_place_harms_nothing():
    def top_k_accuracy(logits, labels, k=1):
        logits.mul_(2)  # same ranking, but it writes into the caller's tensor
        return (logits.topk(k, dim=1).indices == labels.unsqueeze(1)).any(dim=1).float().mean().item()

    assert run_check(EXERCISES["top_k_accuracy"], top_k_accuracy).passed


def test_not_a_function():
    assert "expected a function" in run_check(EXERCISES["top_k_accuracy"], 0.5).message


def test_check_prints_one_result_and_returns_nothing(capsys):
    value = bb.exercises.check_top_k_accuracy(EXERCISES["top_k_accuracy"].reference)
    out = capsys.readouterr().out
    assert value is None
    assert out.startswith("✓ top_k_accuracy: correct on all 5 cases")


def test_not_implemented_inside_torch_is_not_a_stub():
    def causal_mask(length):
        mask = torch.ones(length, length, dtype=torch.bool)
        return mask - mask.triu(diagonal=1)  # torch: "Subtraction ... with two bool tensors is not supported"

    result = run_check(EXERCISES["causal_mask"], causal_mask)
    assert result.status == "failed" and result.message.startswith("your function raised NotImplementedError")
