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


@pytest.mark.parametrize(
    "returned, expected_message",
    [
        (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).reshape(1), "returned shape (1,), expected ()"),
        (lambda lg, lb: [torch.nn.functional.cross_entropy(lg, lb).item()], "returned a list, expected a torch.Tensor"),
        (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).round().long(), "returned dtype torch.int64"),
        (lambda lg, lb: torch.nn.functional.cross_entropy(lg, lb).to("meta"), "returned a tensor on meta"),
    ],
)
def test_wrong_shape_type_dtype_device_are_plain(returned, expected_message):
    result = run_check(EXERCISES["cross_entropy"], returned)
    assert result.status == "failed" and expected_message in result.message


def test_unknown_mistake_shows_where_without_the_reference():
    exercise = EXERCISES["conv_output_size"]  # no probe: a mistake no rung or probe explains
    result = run_check(exercise, lambda *args: exercise.reference(*args) + 2)
    assert result.status == "failed" and result.mistake is None and result.localised is None
    assert result.message == "on a 5x5 convolution with padding 2 on 32, expected 32, got 34"
    assert "floor" not in result.message and "look at" not in result.message


def test_a_number_where_a_number_is_expected():
    result = run_check(EXERCISES["top_k_accuracy"], lambda lg, lb, k=1: "high")
    assert "returned a str, expected a number" in result.message


def test_endless_loop_is_stopped_with_a_message():
    def top_k_accuracy(logits, labels, k=1):
        while True:
            pass

    result = run_check(EXERCISES["top_k_accuracy"], top_k_accuracy, seconds=0.5)
    assert result.status == "failed" and result.message.startswith("stopped after 0.5 s")


def test_modifying_an_input_in_place_is_named_and_harms_no_other_case():
    calls = []

    def top_k_accuracy(logits, labels, k=1):
        calls.append(logits.clone())
        logits.mul_(2)  # same ranking, but it writes into the caller's tensor
        return (logits.topk(k, dim=1).indices == labels.unsqueeze(1)).any(dim=1).float().mean().item()

    result = run_check(EXERCISES["top_k_accuracy"], top_k_accuracy)
    assert result.status == "failed" and result.mistake == "in_place"
    assert "changed its input `logits` in place" in result.message
    case = EXERCISES["top_k_accuracy"].cases()[0]
    assert torch.equal(calls[0], case.args[0])  # it got a copy: the case itself was untouched


def test_attention_dividing_q_in_place_is_named():
    def attention(q, k, v, mask=None):
        q /= q.shape[-1] ** 0.5  # right values, but the caller's q is now scaled
        scores = q @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return scores.softmax(-1) @ v

    result = run_check(EXERCISES["attention"], attention)
    assert result.mistake == "in_place" and "`q`" in result.message


def test_a_float64_result_fails_a_float32_reference():
    result = run_check(EXERCISES["cross_entropy"], lambda lg, lb: torch.nn.functional.cross_entropy(lg.double(), lb))
    assert result.status == "failed" and "returned dtype torch.float64, expected torch.float32" in result.message


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


# Fourteen wrong attentions as students write them (issue 14's trial), each written out here in
# the student's own way, not taken from the catalogue: every one must be rejected, most named.
def _scores(q, k, mask, fill=float("-inf")):
    s = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    return s if mask is None else s.masked_fill(~mask, fill)


WRONG_ATTENTIONS = {
    "exp over sum": lambda q, k, v, mask=None: (
        (torch.exp(_scores(q, k, mask)) / torch.exp(_scores(q, k, mask)).sum(-1, keepdim=True)) @ v
    ),
    "exp over global sum": lambda q, k, v, mask=None: (
        (torch.exp(_scores(q, k, mask)) / torch.exp(_scores(q, k, mask)).sum()) @ v
    ),
    "no scaling": lambda q, k, v, mask=None: (_scores(q, k, mask) * q.shape[-1] ** 0.5).softmax(-1) @ v,
    "divided by d": lambda q, k, v, mask=None: (_scores(q, k, mask) / q.shape[-1] ** 0.5).softmax(-1) @ v,
    "softmax over queries": lambda q, k, v, mask=None: _scores(q, k, mask).softmax(-2) @ v,
    "mask ignored": lambda q, k, v, mask=None: _scores(q, k, None).softmax(-1) @ v,
    "mask inverted": lambda q, k, v, mask=None: _scores(q, k, None if mask is None else ~mask).softmax(-1) @ v,
    "mask filled with 0": lambda q, k, v, mask=None: _scores(q, k, mask, 0.0).softmax(-1) @ v,
    "mask after softmax": lambda q, k, v, mask=None: (
        (_scores(q, k, None).softmax(-1) * (1 if mask is None else mask)) @ v
    ),
    "sqrt of value size": lambda q, k, v, mask=None: (
        (_scores(q, k, mask) * q.shape[-1] ** 0.5 / v.shape[-1] ** 0.5).softmax(-1) @ v
    ),
    "sigmoid": lambda q, k, v, mask=None: torch.sigmoid(_scores(q, k, mask)) @ v,
    "weights returned": lambda q, k, v, mask=None: _scores(q, k, mask).softmax(-1),
    "scale after softmax": lambda q, k, v, mask=None: (
        (_scores(q, k, mask) * q.shape[-1] ** 0.5).softmax(-1) / q.shape[-1] ** 0.5 @ v
    ),
    "k not transposed": lambda q, k, v, mask=None: (q @ k / q.shape[-1] ** 0.5).softmax(-1) @ v,
}


def test_wrong_attentions_as_students_write_them_are_rejected_and_named():
    results = {name: run_check(EXERCISES["attention"], fn) for name, fn in WRONG_ATTENTIONS.items()}
    assert all(r.status == "failed" for r in results.values()), [n for n, r in results.items() if r.passed]
    unnamed = [n for n, r in results.items() if r.mistake is None]
    assert not unnamed, {n: results[n].message for n in unnamed}


def test_merge_heads_with_view_after_transpose_is_named():
    def merge_heads(x):
        b, h, t, d = x.shape
        return x.transpose(1, 2).view(b, t, h * d)  # fine on a transposed view, raises on attention's output

    result = run_check(EXERCISES["merge_heads"], merge_heads)
    assert result.mistake == "view_after_transpose" and ".reshape()" in result.message


# The "Test yourself" questions: answer values with a variant per student -----------------------------

from backbones.exercises import VALUE_EXERCISES  # noqa: E402
from backbones.exercises.core import run_value_check  # noqa: E402

IDS = [f"student-{i}" for i in range(40)]
VALUE_MISTAKES = [(name, key) for name, exercise in VALUE_EXERCISES.items() for key in exercise.mistakes]


@pytest.mark.parametrize("name", VALUE_EXERCISES)
def test_each_question_s_answer_passes_and_variants_differ(name):
    exercise = VALUE_EXERCISES[name]
    for student in IDS[:10]:
        assert run_value_check(exercise, student, exercise.answer(**exercise.variant(student))).passed
    assert len({repr(exercise.variant(s)) for s in IDS[:10]}) >= 3, "too few variants"
    assert exercise.section.startswith("chapter "), "every question names the section that teaches it"


@pytest.mark.parametrize("name, key", VALUE_MISTAKES, ids=[f"{n}-{k}" for n, k in VALUE_MISTAKES])
def test_each_question_s_mistake_is_named(name, key):
    """For most students the catalogued wrong answer is named (for a few variants a mistake can
    give the right number, e.g. no projection when the stride is 1: those are accepted)."""
    exercise = VALUE_EXERCISES[name]
    named = 0
    for student in IDS:
        parameters = exercise.variant(student)
        result = run_value_check(exercise, student, exercise.mistakes[key].wrong(**parameters))
        if result.mistake == key:
            named += 1
            message = " ".join(result.message.split())  # the message is wrapped to fit the page
            assert exercise.mistakes[key].hint in message and "Revisit chapter" in message
    assert named >= len(IDS) // 3, f"named for only {named} of {len(IDS)} students"


def test_a_choice_shows_every_option_once_and_a_wrong_letter_explains_itself():
    question = VALUE_EXERCISES["why_sqrt_d"]
    text = question.ask("alice")
    assert all(f"  {letter}. " in text for letter in "ABCDE")
    order = question.variant("alice")["order"]
    wrong = "ABCDE"[order.index("sum_to_one")]
    result = run_value_check(question, "alice", wrong.lower() + " ")  # "b " is B
    assert result.mistake == "sum_to_one" and "at any scale" in " ".join(result.message.split())
    assert "order=" not in result.message  # the message does not name the options' keys


def test_question_answers_agree_with_the_library():
    """The answers are not a second formula to trust: each is checked against the library."""
    from backbones.exercises import exam
    from backbones.exercises.attention import causal_mask
    from backbones.models.vit import patchify

    for student in IDS[:12]:
        m = exam.MHA_PARAMS.variant(student)
        layer = torch.nn.MultiheadAttention(m["width"], m["heads"])
        assert exam.MHA_PARAMS.answer(**m) == sum(t.numel() for t in layer.parameters())
        one_head = torch.nn.MultiheadAttention(m["width"], 1)  # the heads split the width: no new weights
        assert exam.MHA_PARAMS.answer(**m) == sum(t.numel() for t in one_head.parameters())
        c = exam.CAUSAL_MASKED.variant(student)
        assert exam.CAUSAL_MASKED.answer(**c) == int((~causal_mask(c["tokens"])).sum())
        v = exam.VIT_TOKENS.variant(student)
        patches = patchify(torch.zeros(1, 3, v["image_size"], v["image_size"]), v["patch_size"])
        assert exam.VIT_TOKENS.answer(**v) == patches.shape[1] + 1
        a = exam.ATTENTION_OUTPUT.variant(student)
        q, k, v_ = (torch.tensor(a[m], dtype=torch.float64) for m in "QKV")
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v_)
        assert exam.ATTENTION_OUTPUT.answer(**a) == pytest.approx(out[0, 0].item())
        g = exam.CHAIN.variant(student)["local_gradients"]
        x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        plain, skip = x, x
        for slope in g:  # linear layers of the given slopes, with and without the identity
            plain = slope * plain
            skip = skip + slope * skip
        d_plain = torch.autograd.grad(plain, x, retain_graph=True)[0].item()
        d_skip = torch.autograd.grad(skip, x)[0].item()
        assert exam.CHAIN.answer(g) == pytest.approx((d_plain, d_skip))


def test_ask_prints_the_variant_and_returns_its_numbers(capsys):
    q = bb.exercises.ask("vit_tokens", "alice")
    assert q == VALUE_EXERCISES["vit_tokens"].variant("alice")
    assert f"{q['image_size']}x{q['image_size']}" in capsys.readouterr().out
    for empty in ("", "  ", None, 1234567):  # a student notebook starts with STUDENT_ID = "": it stops here
        with pytest.raises(bb.exercises.MissingStudentId, match='fill in STUDENT_ID = "..." at the top'):
            bb.exercises.ask("vit_tokens", empty)
    with pytest.raises(bb.exercises.MissingStudentId, match="which questions you get"):
        bb.exercises.mock_test("")
    with pytest.raises(KeyError, match="no question named"):
        bb.exercises.ask("nope", "alice")


# The registry: an exercise is declared once, in its topic module ------------------------------------


def test_every_declared_exercise_has_its_derived_check_and_nothing_else_does():
    from backbones import exercises

    checks = {n for n in exercises.__all__ if n.startswith("check_")}
    assert checks == {f"check_{name}" for name in exercises.REGISTRY}
    for name, exercise in exercises.REGISTRY.items():
        check = getattr(exercises, f"check_{name}")
        assert check.__name__ == f"check_{name}" and check.__doc__
        assert exercises.graded(name)[0] is exercise


def test_a_declaration_in_a_topic_module_is_all_a_new_exercise_needs(capsys):
    """What a new contributor writes: one Exercise in a topic module. The registry and its check
    follow from it (here a throwaway module stands for the topic module)."""
    import types

    from backbones import exercises
    from backbones.exercises.core import Case, Exercise, Mistake

    topic = types.ModuleType("topic")
    topic.DOUBLE = Exercise(
        name="double",
        task="twice x",
        reference=lambda x: 2 * x,
        cases=lambda: [Case("one number", (3,))],
        mistakes={"square": Mistake("twice, not squared", lambda x: x * x)},
    )
    registry = exercises._declared((topic,))
    assert list(registry) == ["double"]
    check = exercises._check_of(registry["double"])
    check(lambda x: x + x)
    check(lambda x: x**3)
    assert check.__name__ == "check_double"
    out = capsys.readouterr().out
    assert "✓ double: correct on all 1 cases" in out and "✗ double: on one number, expected 6, got 27" in out
    with pytest.raises(ValueError, match="two exercises are named 'double'"):
        other = types.ModuleType("other")
        other.TWICE = Exercise(name="double", task="", reference=abs, cases=list, mistakes={})
        exercises._declared((topic, other))
    with pytest.raises(ValueError, match="kind must be one of"):
        Exercise(name="x", task="", reference=abs, cases=list, mistakes={}, kind="method")


# What the engine catches beyond wrong values (issue 27: crashes, side effects, state) --------------


def _shape_exercise():
    from backbones.exercises.core import Case, Exercise, Mistake

    def reference(x, w):
        return x * w[:, None]

    return Exercise(
        name="scale_rows",
        task="scale each row of x by its weight",
        reference=reference,
        cases=lambda: [
            Case("3 rows", (torch.ones(3, 4), torch.arange(3.0))),
            Case("5 rows", (torch.ones(5, 2), torch.arange(5.0))),
        ],
        mistakes={"broadcast": Mistake("put the weights on the rows: w[:, None]", lambda x, w: x * w)},
    )


def test_a_crash_is_named_only_when_a_catalogued_mistake_crashes_the_same_way():
    from backbones.exercises.core import run_check

    exercise = _shape_exercise()
    same = run_check(exercise, lambda x, w: x * w)  # the catalogued broadcast error, itself
    assert same.mistake == "broadcast" and same.raised == "RuntimeError"
    other = run_check(exercise, lambda x, w: x @ w)  # a RuntimeError of another kind: a matmul's shapes
    assert other.mistake is None and other.raised == "RuntimeError"
    assert "put the weights on the rows" not in other.message and "your function raised RuntimeError" in other.message


def _model_exercise():
    from backbones.exercises.core import Case, Exercise

    def reference(model, x):
        with torch.no_grad():
            return model(x)

    def cases():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5), torch.nn.Linear(4, 2)).eval()
        return [Case("a batch of 3", (model, torch.randn(3, 4))), Case("one input", (model, torch.randn(1, 4)))]

    return Exercise(name="apply", task="apply the model", reference=reference, cases=cases, mistakes={})


def test_a_model_left_in_training_mode_or_with_hooks_is_named():
    from backbones.exercises.core import run_check

    exercise = _model_exercise()

    def leaves_dropout_on(model, x):
        model.train()
        with torch.no_grad():
            out = model.eval()(x)
        model[1].train()
        return out

    result = run_check(exercise, leaves_dropout_on)
    assert result.mistake == "side_effect" and "`model.1` in training mode" in result.message

    def leaves_a_hook(model, x):
        seen = []
        model[0].register_forward_hook(lambda m, a, out: seen.append(out))
        with torch.no_grad():
            return model(x)

    result = run_check(exercise, leaves_a_hook)
    assert result.mistake == "side_effect" and "1 hook(s) registered on `model.0`" in result.message
    assert "handle.remove()" in result.message

    def tidy(model, x):
        was_training = model.training
        handle = model[0].register_forward_hook(lambda *_: None)
        try:
            with torch.no_grad():
                return model.eval()(x)
        finally:
            handle.remove()
            model.train(was_training)

    assert run_check(exercise, tidy).passed


def test_an_answer_that_depends_on_an_earlier_call_is_named():
    from backbones.exercises.core import Case, Exercise, calls, run_check

    exercise = Exercise(
        name="double",
        task="twice x",
        reference=lambda x: 2 * x,
        cases=lambda: [Case(f"{n} numbers", (torch.arange(float(n)),)) for n in (2, 3, 4)],
        mistakes={},
    )
    order = [c.label for c in calls(exercise.cases())]
    assert order == ["2 numbers", "3 numbers", "4 numbers", "3 numbers", "2 numbers", "4 numbers"]
    assert all(a != b for a, b in zip(order[3:], order[2:]))  # each repeat follows another case

    seen = []

    def remembers(x):  # a running total kept between calls
        seen.append(x.sum())
        return 2 * x + (len(seen) > 3) * 1.0

    result = run_check(exercise, remembers)
    assert result.mistake == "state" and "called again after 4 numbers" in result.message
    assert "the first call was right" in result.message


def test_calling_what_the_exercise_asks_you_to_write_fails_however_it_is_reached():
    import torch.nn.functional as F
    from torch.nn.functional import scaled_dot_product_attention as renamed

    from backbones.exercises.core import run_check

    exercise = EXERCISES["attention"]

    def aliased(q, k, v, mask=None):
        return renamed(q, k, v, attn_mask=mask)

    def through_getattr(q, k, v, mask=None):
        name = "_".join(("scaled", "dot", "product", "attention"))  # as a string built at run time
        return getattr(F, name)(q, k, v, attn_mask=mask)

    def through_the_library(q, k, v, mask=None):
        return bb.layers.attention.scaled_dot_product_attention(q, k, v, mask=mask)

    for student in (aliased, through_getattr, through_the_library):
        result = run_check(exercise, student)
        assert result.mistake == "forbidden_call", (student.__name__, result.message)
        assert "which this exercise asks you to write" in result.message
    assert "`F.scaled_dot_product_attention`" in run_check(exercise, aliased).message


@pytest.mark.parametrize(
    "name, shortcut",
    [
        ("sgns_loss", "lambda centre, context, negatives: bb.word2vec.sgns_loss(centre, context, negatives)"),
        ("attention_rollout", "lambda attention: bb.models.vit.attention_rollout(list(attention))"),
        ("patch_tokens", "None"),
    ],
)
def test_the_books_own_functions_are_forbidden_where_they_are_the_exercise(name, shortcut):
    exercise = EXERCISES[name]
    assert exercise.forbidden, name
    assert "Write it yourself: a call to" in getattr(bb.exercises, f"check_{name}").__doc__  # said before checked
    for dotted in exercise.forbidden:  # every declared name resolves, so a call to it is seen
        from backbones.exercises._child import _resolve

        assert _resolve(dotted) is not None, dotted
    if shortcut != "None":
        result = run_check(exercise, eval(shortcut))  # noqa: S307 - the test's own code
        assert result.mistake == "forbidden_call", result.message


def test_every_master_solution_calls_nothing_its_exercise_forbids():
    """The chapters' own solutions, read from the notebooks as the grader reads a submission,
    pass their checks with the forbidden calls watched: the rule rejects shortcuts, not the
    solution the book teaches."""
    from pathlib import Path

    from backbones.book import chapter_notebooks, load_notebook
    from backbones.exercises import graded
    from backbones.exercises.reading import checks_in, definitions

    root = Path(__file__).resolve().parents[1]
    seen = set()
    for master in chapter_notebooks(root):
        nb = load_notebook(master)
        checks = checks_in(nb)
        source, _, broken = definitions(nb, graded={function for _, function in checks})
        assert not broken, (master.name, broken)
        namespace: dict = {}
        exec(compile(source, master.name, "exec"), namespace)  # noqa: S102 - the book's own code
        for check, function in checks:
            exercise, kind = graded(check)
            if kind == "value" or not exercise.forbidden:
                continue
            result = run_check(exercise, namespace[function])
            assert result.passed, (master.name, check, result.message)
            seen.add(exercise.name)
    assert seen == {name for name, exercise in EXERCISES.items() if exercise.forbidden}


def test_every_exercise_is_a_ladder_whose_rungs_say_what_they_add():
    """The cases run from the simplest up, each later rung saying what it adds and where to look
    (issue 27, item 1); rungs() refuses a ladder with a rung left unexplained."""
    from backbones.exercises.core import Case, rungs

    for name, exercise in EXERCISES.items():
        cases = exercise.cases()
        assert not cases[0].adds and all(c.adds for c in cases[1:]), name
    with pytest.raises(ValueError, match="3 cases need 2 descriptions"):
        rungs([Case("a"), Case("b"), Case("c")], "only one")


@pytest.mark.parametrize(
    "name, student, rung, look",
    [
        (  # the square-input assumption: right until a map is not square
            "squeeze_excitation",
            "lambda x, w1, b1, w2, b2: x * torch.sigmoid(torch.relu(x.reshape(*x.shape[:2], x.shape[2] ** 2)"
            ".mean(-1) @ w1.T + b1) @ w2.T + b2)[:, :, None, None]",
            "maps that are not square",
            "not a pool of size H or a reshape to H * H",
        ),
        (  # excludes b and c but not a: right until the query words are each other's neighbours
            "analogy_solver",
            "lambda v, a, b, c: (lambda u: (lambda s: s.index_put_((torch.arange(len(a)), b), torch.tensor(-1e9))"
            ".index_put_((torch.arange(len(a)), c), torch.tensor(-1e9)).argmax(1))((u[b] - u[a] + u[c]) @ u.T))"
            "(v / v.norm(dim=1, keepdim=True))",
            "query words are each other's neighbours",
            "a, b and c, all three",
        ),
        (  # a size fixed to the first case's: right until a case has another
            "causal_mask",
            "lambda t: torch.tril(torch.ones(5, 5, dtype=torch.bool))[:t, :t]",
            "12 tokens",
            "anything fixed to 5",
        ),
    ],
)
def test_a_failure_past_the_first_rung_names_the_rung_and_where_to_look(name, student, rung, look):
    result = run_check(EXERCISES[name], eval(student))  # noqa: S307 - the test's own code
    assert result.status == "failed" and result.localised == "rung", result.message
    assert "right on the" in result.message and rung in result.message and look in result.message


@pytest.mark.parametrize(
    "name, student, diagnosis",
    [
        (
            "attention",
            "lambda q, k, v, mask=None: (q @ k.transpose(-2, -1) / (2 * q.shape[-1] ** 0.5)).masked_fill("
            "~mask if mask is not None else torch.zeros((), dtype=torch.bool), float('-inf')).softmax(-1) @ v",
            "your scores are scaled by 0.1768",
        ),
        (
            "attention",
            "lambda q, k, v, mask=None: (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill("
            "~mask if mask is not None else torch.zeros((), dtype=torch.bool), -1.0).softmax(-1) @ v",
            "masked keys still get weight",
        ),
        (
            "cross_entropy",
            "lambda logits, labels: (1 - logits.softmax(1)[torch.arange(len(labels)), labels]).mean()",
            "not 1 - p(label)",
        ),
        (
            "squeeze_excitation",
            "lambda x, w1, b1, w2, b2: x * torch.relu(torch.relu(x.mean((2, 3)) @ w1.T + b1) @ w2.T + b2)"
            "[:, :, None, None]",
            "your gates are not between 0 and 1",
        ),
        (
            "squeeze_excitation",
            "lambda x, w1, b1, w2, b2: x * torch.sigmoid(torch.relu(x.mean(3).amax(2) @ w1.T + b1) @ w2.T + b2)"
            "[:, :, None, None]",
            "look at the squeeze",
        ),
        (
            "patch_tokens",
            "lambda im, p, cls: torch.cat([cls.expand(len(im), 1, -1), im.reshape(len(im), im.shape[1], "
            "im.shape[2] // p, p, im.shape[3] // p, p).permute(0, 2, 4, 3, 1, 5).flatten(3).flatten(1, 2)], 1)",
            "inside a patch your values are in another order",
        ),
    ],
)
def test_a_probe_names_the_family_of_a_mistake_the_catalogue_does_not_hold(name, student, diagnosis):
    """Probes: inputs built so that the output shows the family (v the identity shows attention's
    weights; pixels that hold their addresses show where a token's values came from)."""
    result = run_check(EXERCISES[name], eval(student))  # noqa: S307 - the test's own code
    assert result.status == "failed" and result.mistake is None and result.localised == "probe", result.message
    assert diagnosis in result.message


def test_the_probes_find_nothing_in_the_references():
    from backbones.exercises.core import _fresh

    for name, exercise in EXERCISES.items():
        for probe in exercise.probes():
            got = []
            for case in probe.cases:
                args, kwargs = _fresh(case)
                got.append(exercise.on_case(exercise.reference)(*args, **kwargs))
            assert probe.diagnose(got, got) is None, (name, probe.label)


def test_the_borderline_returns_are_told_what_to_return():
    """A list where the task says a pair, the (output, weights) tuple nn.MultiheadAttention returns,
    and a float64 result: each told plainly what to return (issue 27)."""
    reference = EXERCISES["multi_head_attention"].reference
    as_torch = run_check(EXERCISES["multi_head_attention"], lambda *a, mask=None: (reference(*a, mask=mask), None))
    assert "expected a torch.Tensor: if it is (output, weights)" in as_torch.message
    pair = run_check(EXERCISES["jacobian_products"], lambda J: list(EXERCISES["jacobian_products"].reference(J)))
    assert "returned a list, expected a tuple of 2: return (..., ...), not [...]" in pair.message
    wide = run_check(
        EXERCISES["attention"], lambda q, k, v, mask=None: EXERCISES["attention"].reference(q, k, v, mask).double()
    )
    assert "returned dtype torch.float64, expected torch.float32: keep the inputs' dtype" in wide.message


def test_the_norm_order_question_s_numbers_are_what_the_blocks_compute():
    """Question "pre-norm and post-norm": with a branch that outputs zeros, the book's EncoderBlock
    returns x when pre-norm and LN(x) when post-norm, the numbers the right option states."""
    from backbones.models.transformer import EncoderBlock

    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    for norm_first, expected in ((True, [1.0, 2.0, 3.0]), (False, [-1.2247, 0.0, 1.2247])):
        block = EncoderBlock(embed_dim=3, num_heads=1, mlp_ratio=1, norm_first=norm_first).eval()
        with torch.no_grad():
            for linear in (block.attention.W_o, block.mlp[2]):  # both branches output zeros
                linear.weight.zero_()
                linear.bias.zero_()
            out = block(x)
        assert torch.allclose(out[0, 0], torch.tensor(expected), atol=1e-3), (norm_first, out)
    from backbones.exercises import exam

    assert (
        "[1, 2, 3]" in exam.NORM_ORDER.options["right"][0] and "-1.22, 0, 1.22" in exam.NORM_ORDER.options["right"][0]
    )


def test_each_competency_is_examined_by_at_least_four_questions():
    from backbones.exercises import VALUE_EXERCISES, exam

    assert set(exam.COMPETENCIES) == {
        "vanishing gradients and ResNet",
        "self-attention and Transformers",
        "the Vision Transformer",
    }
    assert all(len(questions) >= 4 for questions in exam.COMPETENCIES.values())
    listed = [q for questions in exam.COMPETENCIES.values() for q in questions]
    assert sorted(listed) == sorted(VALUE_EXERCISES)  # each question under exactly one competency


def test_the_right_option_is_not_given_away_by_its_length():
    """Over all choice questions, the right option is the longest in at most a third of them (a
    student who picks the longest option does not pass), and the shortest in at most a third."""
    from backbones.exercises import VALUE_EXERCISES

    choices = [q for q in VALUE_EXERCISES.values() if q.options is not None]
    assert len(choices) >= 6
    longest = shortest = 0
    for question in choices:
        lengths = {key: len(text) for key, (text, _) in question.options.items()}
        right = next(key for key, (_, why) in question.options.items() if why is None)
        longest += lengths[right] == max(lengths.values())
        shortest += lengths[right] == min(lengths.values())
    assert longest <= len(choices) / 3, longest
    assert shortest <= len(choices) / 3, shortest


def test_the_explanations_show_the_answer_and_every_wrong_option_for_the_book_s_id_only(capsys):
    import backbones as bb
    from backbones.exercises import VALUE_EXERCISES

    for name, question in VALUE_EXERCISES.items():
        bb.exercises.explain(name, "instructor")
        shown = " ".join(capsys.readouterr().out.split())
        assert f"Answer: {question.answer(**question.variant('instructor'))}" in shown, name
        for mistake in question.mistakes.values():
            assert " ".join(mistake.hint.split()) in shown, (name, mistake.hint)
        bb.exercises.explain(name, "alice")
        hidden = capsys.readouterr().out
        assert "Answer:" not in hidden and f"check_{name}" in hidden


def test_the_mock_test_draws_ten_questions_across_the_competencies_and_sums_them_up():
    from backbones.exercises.exam import COMPETENCIES, VALUE_EXERCISES, mock_draw, summary_text

    draws = {student: mock_draw(student) for student in IDS}
    assert all(len(d) == 10 and len(set(d)) == 10 for d in draws.values())
    assert all(all(sum(q in g for q in d) >= 3 for g in COMPETENCIES.values()) for d in draws.values())
    assert mock_draw(IDS[0]) == draws[IDS[0]] and len({tuple(d) for d in draws.values()}) > len(IDS) // 2
    missed = {q: q != "why_sqrt_d" for q in COMPETENCIES["self-attention and Transformers"][:3]}
    assert summary_text(missed) == (
        f"self-attention and Transformers 2/3: revisit {VALUE_EXERCISES['why_sqrt_d'].section}"
    )
