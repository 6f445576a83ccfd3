import pytest
import torch
from torch import nn

import backbones as bb


@pytest.fixture(scope="module")
def digits():
    return bb.load_digits()


def test_fit_learns_the_digits(digits):
    bb.seed_everything(0)
    model = bb.models.SimpleCNN(in_channels=1, num_classes=10, width=16)
    train_loader, test_loader = digits.loaders(64)
    before = bb.evaluate(model, test_loader)
    history = bb.fit(model, train_loader, steps=150, lr=0.1, test_loader=test_loader, evals=3)
    after = history.eval[-1]
    assert before.accuracy < 0.3 and after.accuracy > 0.9
    assert history.final_loss() < 0.5 * history.smoothed_loss()[0]
    assert history.steps == list(range(1, 151)) and len(history.eval) == 3 and history.eval_steps[-1] == 150
    assert max(history.lr) == pytest.approx(0.1, rel=0.05)  # one-cycle peak


def test_fit_is_reproducible(digits):
    def run():
        bb.seed_everything(0)
        model = bb.models.SimpleCNN(in_channels=1, num_classes=10, width=8)
        return bb.fit(model, digits.loaders(32, seed=0)[0], steps=20).loss

    assert run() == run()


def test_summary_line_is_printed(digits, capsys):
    model = bb.models.SimpleCNN(in_channels=1, num_classes=10, width=8)
    bb.fit(model, digits.loaders(32)[0], steps=5, desc="demo")
    out = capsys.readouterr().out
    assert out.startswith("demo: 5 steps in") and "final training loss" in out


def test_own_optimizer_is_used(digits):
    model = bb.models.SimpleCNN(in_channels=1, num_classes=10, width=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = bb.fit(model, digits.loaders(32)[0], steps=5, optimizer=optimizer)
    assert history.lr == [1e-3] * 5


class Unflattened(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 10, 3)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize(
    "model, hint",
    [
        (Unflattened(), "flatten before the last linear layer"),
        (bb.models.SimpleCNN(in_channels=1, num_classes=5), "num_classes=10"),
        (bb.models.SimpleCNN(in_channels=3, num_classes=10), "expects images of shape"),
    ],
)
def test_wrong_model_gets_a_hint(digits, model, hint):
    with pytest.raises(ValueError, match=hint):
        bb.fit(model, digits.loaders(32)[0], steps=3)


def test_diverging_loss_is_reported(digits):
    model = bb.models.SimpleCNN(in_channels=1, num_classes=10, width=8)
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        bb.fit(model, digits.loaders(32)[0], steps=3)


def test_single_image_without_batch_dimension_gets_a_hint():
    model = bb.models.SimpleCNN(in_channels=1, num_classes=10)
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.zeros(1, 8, 8))


@pytest.mark.parametrize("hardware_bf16, expected", [(True, torch.bfloat16), (False, torch.float16)])
def test_mixed_precision_follows_the_gpu(monkeypatch, hardware_bf16, expected):
    """A T4 (Colab's free GPU) has no bfloat16 in hardware: float16 with a gradient scaler there."""
    from backbones.train import amp_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: hardware_bf16)
    assert amp_dtype(torch.device("cuda")) == expected
    assert amp_dtype(torch.device("cpu")) is None


def test_a_loader_with_no_full_batch_is_a_clear_error():
    """Fewer samples than one batch with drop_last: an error, not a loop that never steps."""
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=16, drop_last=True)
    with pytest.raises(ValueError, match="lower batch_size"):
        bb.fit(nn.Linear(4, 2), loader, steps=3)
