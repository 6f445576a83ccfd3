"""The experiments behind the book's claims, as functions: a chapter runs them and shows the
result, a test runs the same code and checks the claim.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from backbones.data import ImageData
from backbones.models.resnet import BasicBlock, CifarResNet
from backbones.models.simple_cnn import SimpleCNN
from backbones.runtime import seed_everything
from backbones.text import weights_to
from backbones.train import History, fit

SCHEDULES = ("one-cycle", "paper")


def degradation(data: ImageData, *, depths: tuple[int, ...] = (20, 56), steps: int = 300, lr: float = 0.05,
                batch_size: int = 64, width: int = 16, seed: int = 0, zero_init_residual: bool = False,
                schedule: str = "one-cycle", device: torch.device | str = "cpu"
                ) -> dict[str, tuple[CifarResNet, History]]:
    """He et al.'s degradation experiment: plain and residual CIFAR nets of each depth, trained
    alike (same seed, initialisation, data order, schedule). Returns ``{"plain-20": (model, history), ...}``.

    Args:
        zero_init_residual: start each residual branch's last BN at zero (Goyal et al. 2017), which
            steadies deep ResNets at high learning rates. He et al. did not; a plain net cannot
            use it (it would cut the signal), so with it the two families are no longer trained alike.
        schedule: ``"one-cycle"`` (SGD, Nesterov momentum 0.9, weight decay 5e-4, one-cycle learning
            rate peaking at ``lr``: what fits a few hundred steps) or ``"paper"`` (He et al.'s: SGD,
            momentum 0.9, weight decay 1e-4, ``lr`` divided by 10 at 50% and 75% of the steps, i.e.
            at 32k and 48k of 64k).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: choose one of {SCHEDULES}")
    runs = {}
    for skip in (False, True):
        for depth in depths:
            name = f"{'ResNet' if skip else 'plain'}-{depth}"
            seed_everything(seed)
            model = CifarResNet(depth=depth, num_classes=data.num_classes,
                                in_channels=data.in_channels, width=width, skip=skip,
                                zero_init_residual=zero_init_residual).to(device)
            train_loader, test_loader = data.loaders(batch_size, seed=seed)
            optimizer, scheduler = None, None  # fit's default: SGD, Nesterov, one-cycle
            if schedule == "paper":
                optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9,
                                            weight_decay=1e-4)
                scheduler = torch.optim.lr_scheduler.MultiStepLR(
                    optimizer, milestones=[steps // 2, steps * 3 // 4], gamma=0.1)
            history = fit(model, train_loader, steps=steps, lr=lr, optimizer=optimizer,
                          scheduler=scheduler, test_loader=test_loader, desc=name)
            runs[name] = (model, history)
    return runs



def per_class_accuracy(data: ImageData, *, seeds: tuple[int, ...] = (0, 1, 2, 3, 4), steps: int = 300,
                       width: int = 16, lr: float = 0.1, device: torch.device | str = "cpu"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The same small CNN trained with several seeds: each seed's test accuracy per class and the
    confusion matrix summed over the seeds. Returns ``(per_class (seeds, classes), confusion)``,
    ``confusion[true, predicted]`` counting test images.

    One run's per-class accuracy rests on a handful of errors per class; the spread over seeds
    says how much of a ranking of classes is noise.
    """
    images, labels = data.tensors(split="test")
    confusion = torch.zeros(data.num_classes, data.num_classes, dtype=torch.long)
    accuracies = []
    for seed in seeds:
        seed_everything(seed)
        model = SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width).to(device)
        fit(model, data.loaders(batch_size=64, seed=seed)[0], steps=steps, lr=lr, desc=f"seed {seed}")
        with torch.no_grad():
            predicted = model.eval()(images.to(device)).argmax(dim=1).cpu()
        seed_confusion = torch.zeros_like(confusion)
        seed_confusion.index_put_((labels, predicted), torch.ones_like(labels), accumulate=True)
        confusion += seed_confusion
        accuracies.append(seed_confusion.diag() / seed_confusion.sum(dim=1))
    return torch.stack(accuracies), confusion

def gradient_flow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                  block_type: type[nn.Module] = BasicBlock) -> list[float]:
    """The norm of the loss gradient at the input of every block, from the input side to the output.

    The ratio of neighbouring values is how much one block scales the gradient on its way back
    (the chain rule's local factor); their product is what reaches the first layer.
    """
    inputs: list[torch.Tensor] = []

    def keep_input(module, args):
        args[0].retain_grad()
        inputs.append(args[0])

    hooks = [m.register_forward_pre_hook(keep_input) for m in model.modules() if isinstance(m, block_type)]
    try:
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(images), labels).backward()
    finally:
        for hook in hooks:
            hook.remove()
    return [x.grad.norm().item() for x in inputs]



@torch.no_grad()
def identity_path_open(model: nn.Module, images: torch.Tensor, *,
                       block_type: type[nn.Module] = BasicBlock) -> list[float]:
    """For every block, the share of its outputs where the ReLU after the addition is open.

    A block of the original ResNet returns ``relu(F(x) + x)``: where the sum is negative the ReLU
    passes no gradient, to the branch *or* to the identity path. So this is the share of units
    through which the identity path carries the gradient back (He et al. 2016b remove the ReLU
    from the path for this reason).
    """
    shares: list[float] = []

    def keep_share(module, args, output) -> None:
        shares.append((output > 0).float().mean().item())

    hooks = [m.register_forward_hook(keep_share) for m in model.modules() if isinstance(m, block_type)]
    try:
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    return shares

# Controls for what attention heads do (the self-attention chapter). Each takes a loaded
# ``backbones.text.TextModel``.

NAME_JOB_TEMPLATES = ("{n1} is {j1} and {n2} is {j2}.",                 # the slide's sentence: name first
                      "{n1} works as a {j1} and {n2} works as a {j2}.",
                      "The {j1} is {n1} and the {j2} is {n2}.")           # the job first: offsets reversed


def name_job_margins(text, *, templates: tuple[str, ...] = NAME_JOB_TEMPLATES,
                     names: tuple[str, str] = ("Karel", "Mario"),
                     jobs: tuple[tuple[str, str], ...] = (("teacher", "plumber"), ("doctor", "farmer"))
                     ) -> tuple[torch.Tensor, list[int]]:
    """For every sentence the templates make (each name pair and job pair, in both orders), how
    much more of each name's attention goes to *its own* job than to the other person's, per head.

    A head that links a person to what is said about them has a positive margin in every sentence,
    whichever job is whose and wherever the job stands; a head that looks a fixed number of tokens
    ahead is positive only in the templates where the own job sits at that offset.

    Returns ``(margins, template_of_row)``: margins ``(rows, layers, heads)``, two rows a sentence.
    """
    cases = []  # (template index, sentence, name, own job, other job)
    for t, template in enumerate(templates):
        for n1, n2 in (names, names[::-1]):
            for pair in jobs:
                for j1, j2 in (pair, pair[::-1]):
                    sentence = template.format(n1=n1, n2=n2, j1=j1, j2=j2)
                    cases += [(t, sentence, n1, j1, j2), (t, sentence, n2, j2, j1)]
    unique = sorted({sentence for _, sentence, *_ in cases})
    attentions = dict(zip(unique, text.attentions(unique)))
    margins, template_of_row = [], []
    for t, sentence, name, own, other in cases:
        weights = weights_to(*attentions[sentence], name, [own, other])  # (layers, heads, 2)
        margins.append(weights[..., 0] - weights[..., 1])
        template_of_row.append(t)
    return torch.stack(margins), template_of_row


def pronoun_job_scores(text, jobs: list[str], *, partners: tuple[str, ...] = ("student", "visitor"),
                       template: str = "The {a} asked the {b} a question. {pronoun} said that the plan was fine."
                       ) -> dict[str, float]:
    """For each job word, how much more attention *she* gives it than *he* does, averaged over all
    layers and heads, over the job in either noun slot and over neutral ``partners`` in the other.
    A score depends on its own word only, so groups of words can be compared by permutation."""
    sentences = {(job, a, b, pronoun): template.format(a=a, b=b, pronoun=pronoun)
                 for job in jobs for partner in partners for a, b in ((job, partner), (partner, job))
                 for pronoun in ("She", "He")}
    attentions = dict(zip(sentences, text.attentions(list(sentences.values()))))
    scores = {}
    for job in jobs:
        differences = [weights_to(*attentions[(j, a, b, "She")], "she", [job]).mean()
                       - weights_to(*attentions[(j, a, b, "He")], "he", [job]).mean()
                       for (j, a, b, pronoun) in sentences if j == job and pronoun == "She"]
        scores[job] = torch.stack(differences).mean().item()
    return scores


def association_test(scores: dict[str, float], group_a: list[str], group_b: list[str], *,
                     max_permutations: int = 20_000, seed: int = 0) -> tuple[float, float]:
    """A WEAT-style test (Caliskan et al. 2017) of whether ``group_a``'s scores exceed ``group_b``'s.

    Returns ``(effect_size, p_value)``: the difference of the group means over the standard
    deviation of all scores, and the one-sided permutation p-value, the share of relabellings of
    the words into groups of the same sizes whose effect is at least as large (exact when there are
    at most ``max_permutations`` relabellings, sampled otherwise).
    """
    words = list(group_a) + list(group_b)
    values = np.array([scores[w] for w in words], dtype=np.float64)
    spread, total, k = values.std(), values.sum(), len(group_a)

    def effect(sum_a: np.ndarray) -> np.ndarray:  # mean of a minus mean of b, over the spread
        return (sum_a / k - (total - sum_a) / (len(words) - k)) / spread

    observed = float(effect(values[:k].sum()))
    if math.comb(len(words), k) <= max_permutations:
        relabellings = np.array(list(itertools.combinations(range(len(words)), k)))
    else:
        rng = np.random.default_rng(seed)
        relabellings = np.array([rng.choice(len(words), k, replace=False) for _ in range(max_permutations)])
    at_least = int((effect(values[relabellings].sum(axis=1)) >= observed - 1e-12).sum())
    return observed, at_least / len(relabellings)


# Winograd-style pairs: one word changes the referent of "it" (Levesque et al. 2012).
# Each: the sentence with a slot, the two candidate referents, and the word that makes "it" the
# first candidate and the one that makes it the second.
COREFERENCE_PAIRS = (
    ("The animal didn't cross the street because it was too {}.", ("animal", "street"), ("tired", "wide")),
    ("The trophy didn't fit in the suitcase because it was too {}.", ("trophy", "suitcase"), ("big", "small")),
    ("The ball broke the window because it was too {}.", ("ball", "window"), ("heavy", "fragile")),
)


def coreference_weights(text, pairs=COREFERENCE_PAIRS) -> torch.Tensor:
    """How much of "it"'s attention goes to each candidate referent, in both sentences of every
    pair: ``(pairs, 2 sentences, layers, heads, 2 candidates)``; in sentence 0 "it" is candidate 0,
    in sentence 1 candidate 1."""
    cases = [(template.format(word), list(candidates)) for template, candidates, words in pairs
             for word in words]
    attentions = text.attentions([sentence for sentence, _ in cases])  # one padded batch
    weights = [weights_to(*attention, "it", candidates) for attention, (_, candidates) in zip(attentions, cases)]
    return torch.stack(weights).view(len(pairs), 2, *weights[0].shape)


def coreference_switch(weights: torch.Tensor) -> torch.Tensor:
    """How far each head moves towards the right referent when one word changes it, per pair:
    ``(pairs, layers, heads)``. Positive: the head prefers candidate 0 more when "it" is candidate 0
    than when "it" is candidate 1. A head that resolves "it" is positive in every pair."""
    preference = weights[..., 0] - weights[..., 1]   # (pairs, 2, layers, heads)
    return preference[:, 0] - preference[:, 1]


# Squeeze-and-Excitation: does it help, and what do its gates do? ------------------------------

def se_comparison(data: ImageData, *, seeds: tuple[int, ...] = (0, 1), depth: int = 8, reduction: int = 4,
                  steps: int = 150, lr: float = 0.05, batch_size: int = 64, device: torch.device | str = "cpu"
                  ) -> dict[str, list[tuple[CifarResNet, float]]]:
    """A CIFAR ResNet with and without SE in every block, trained alike for each seed (same
    initialisation of the shared layers' random stream, data order, schedule). Returns
    ``{"ResNet": [(model, test accuracy), ...], "SE-ResNet": [...]}``, one entry per seed."""
    from backbones.train import evaluate

    runs: dict[str, list[tuple[CifarResNet, float]]] = {"ResNet": [], "SE-ResNet": []}
    for name, se in (("ResNet", None), ("SE-ResNet", reduction)):
        for seed in seeds:
            seed_everything(seed)
            model = CifarResNet(depth=depth, num_classes=data.num_classes, in_channels=data.in_channels,
                                se_reduction=se).to(device)
            train_loader, test_loader = data.loaders(batch_size, seed=seed)
            fit(model, train_loader, steps=steps, lr=lr, desc=f"{name} seed {seed}")
            runs[name].append((model, evaluate(model, test_loader, device=device).accuracy))
    return runs


@torch.no_grad()
def se_gates(model: nn.Module, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every SE block's gates for a batch, in evaluation mode: ``{block name: (B, channels)}``."""
    from backbones.layers.se import SqueezeExcitation

    gates: dict[str, torch.Tensor] = {}
    names = {m: n for n, m in model.named_modules() if isinstance(m, SqueezeExcitation)}

    def record(module, args, output):  # returns None: the output is left as it is
        gates[names[module]] = module.gates(args[0]).flatten(1).cpu()

    hooks = [m.register_forward_hook(record) for m in names]
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return gates


def excitation_profiles(gates: dict[str, torch.Tensor], labels: torch.Tensor, num_classes: int
                        ) -> dict[str, torch.Tensor]:
    """Each block's gates averaged per class: ``{block name: (classes, channels)}``.

    Hu et al.'s figure 6: the mean excitation of each channel over the images of one class.
    """
    one_hot = F.one_hot(labels.cpu(), num_classes).float()           # (B, classes)
    counts = one_hot.sum(dim=0).clamp_min(1).unsqueeze(1)             # (classes, 1)
    return {name: (one_hot.T @ g) / counts for name, g in gates.items()}


def gate_class_share(gates: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """How class-specific each block's gates are: the share of their variance over images that
    lies between the class means (eta squared, averaged over channels; 0: every class gets the
    same gates on average, 1: the class alone sets them)."""
    labels = labels.cpu()
    classes = labels.unique()
    shares = {}
    for name, g in gates.items():                                     # g: (B, C)
        total = g.var(dim=0, unbiased=False)                          # (C,)
        means = torch.stack([g[labels == c].mean(dim=0) for c in classes])       # (K, C)
        weights = torch.stack([(labels == c).float().mean() for c in classes])   # (K,)
        between = (weights[:, None] * (means - g.mean(dim=0)) ** 2).sum(dim=0)   # (C,)
        keep = total > 1e-12  # a gate that never moves says nothing about classes
        shares[name] = float((between[keep] / total[keep]).mean()) if keep.any() else 0.0
    return shares


@torch.no_grad()
def linear_probe(features: torch.Tensor, labels: torch.Tensor, test_features: torch.Tensor,
                 test_labels: torch.Tensor) -> float:
    """Test accuracy of a logistic regression on frozen features (scikit-learn, standardised)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.5))
    probe.fit(features.numpy(), labels.numpy())
    return float(probe.score(test_features.numpy(), test_labels.numpy()))


@torch.no_grad()
def pooled_features(model: nn.Module, images: torch.Tensor, *, batch_size: int = 128) -> torch.Tensor:
    """An EfficientNet's pooled features (before the classifier) for a batch of images: ``(N, D)``."""
    model.eval()
    out = [model.avgpool(model.features(images[i:i + batch_size])).flatten(1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


# The Vision Transformer: does it need more data than a CNN, and what does it learn? -----------

class Shifted:
    """A loader whose images come shifted by up to ``pixels`` in each direction at random
    (zeros come in at the edge): the one augmentation both networks of :func:`vit_vs_cnn` train
    with. Shifts a whole batch at once (per image, per item, costs more than the tiny nets)."""

    def __init__(self, loader, pixels: int = 1, *, seed: int = 0):
        self.loader, self.pixels = loader, pixels
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        p = self.pixels
        for images, labels in self.loader:
            if p:
                height, width = images.shape[-2:]
                padded = F.pad(images, [p] * 4)
                shifts = torch.randint(0, 2 * p + 1, (len(images), 2), generator=self.generator)
                shifted = torch.empty_like(images)
                for dy in range(2 * p + 1):
                    for dx in range(2 * p + 1):
                        chosen = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                        shifted[chosen] = padded[chosen, :, dy:dy + height, dx:dx + width]
                images = shifted
            yield images, labels


def tiny_vit(data: ImageData, *, patch_size: int = 2, embed_dim: int = 32, depth: int = 4,
             num_heads: int = 4, mlp_ratio: int = 2) -> nn.Module:
    """The chapter's small ViT for ``data``'s images (8x8 digits: a 4x4 grid of 2x2 patches)."""
    from backbones.models.vit import ViT

    return ViT(image_size=data.image_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth,
               num_heads=num_heads, mlp_ratio=mlp_ratio, num_classes=data.num_classes,
               channels=data.in_channels)


def matched_cnn(data: ImageData, parameters: int) -> SimpleCNN:
    """The :class:`SimpleCNN` whose parameter count is nearest to ``parameters``."""
    def count(width: int) -> int:
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            net = SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width)
        return sum(p.numel() for p in net.parameters())

    width = min(range(4, 256), key=lambda w: abs(count(w) - parameters))
    return SimpleCNN(in_channels=data.in_channels, num_classes=data.num_classes, width=width)


def split_train(data: ImageData, *, validation: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """A fixed split of the training set's indices into ``(train pool, validation)``: learning
    rates are chosen on the validation part, never on the test set."""
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed)).tolist()
    cut = round(validation * len(order))
    return order[cut:], order[:cut]


def train_one(make_model, data: ImageData, indices: list[int], *, lr: float, seed: int, steps: int,
              batch_size: int = 64, weight_decay: float = 0.05, shift: int = 0,
              evaluate_on=None, device: torch.device | str = "cpu") -> tuple[nn.Module, float]:
    """Train ``make_model()`` on ``data.train[indices]`` (shifted by up to ``shift`` pixels) with
    AdamW and a one-cycle schedule peaking at ``lr``; returns the model and its accuracy on
    ``evaluate_on`` (a dataset; the test set by default)."""
    from torch.utils.data import DataLoader, Subset

    from backbones.train import evaluate

    seed_everything(seed)
    model = make_model().to(device)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(Subset(data.train, indices), batch_size=min(batch_size, len(indices)),
                        shuffle=True, drop_last=True, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, foreach=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    fit(model, Shifted(loader, shift, seed=seed), steps=steps, optimizer=optimizer, scheduler=scheduler, desc=f"lr {lr:g} seed {seed}")
    test = DataLoader(evaluate_on if evaluate_on is not None else data.test, batch_size=256)
    return model, evaluate(model, test, device=device).accuracy


def training_subset(pool: list[int], size: int, seed: int) -> list[int]:
    """``size`` indices of the pool, drawn for this seed: each seed trains on its own subset (and
    order), so the spread over seeds includes which images were drawn."""
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(1000 + seed)).tolist()
    return [pool[i] for i in order[:size]]


def vit_vs_cnn(data: ImageData, *, fractions: tuple[float, ...] = (0.1, 0.3, 1.0),
               seeds: tuple[int, ...] = (0,), lrs: tuple[float, ...] = (1e-3, 3e-3, 1e-2, 3e-2),
               chosen: dict | None = None, steps: int = 300, shift: int = 0,
               device: torch.device | str = "cpu", **vit_shape) -> list[dict]:
    """A small ViT against a CNN of about the same parameter count, trained alike (AdamW,
    one-cycle, ``steps`` steps, batch 64, the same random shifts of up to ``shift`` pixels) on a
    fraction of the training pool.

    For each network and fraction the learning rate is the one of ``lrs`` with the best
    validation accuracy (seed 0; the validation images are never trained on), unless ``chosen``
    gives it (``{(network, fraction): lr}``, e.g. from a recorded sweep). Then every seed trains at
    that rate and is scored on the test set. Returns one row per network, fraction and seed:
    ``network, parameters, fraction, images, lr, seed, accuracy, model``, and on the rows that
    ran the sweep ``validation``, its accuracy for each rate.
    """
    from torch.utils.data import Subset

    vit_parameters = sum(p.numel() for p in tiny_vit(data, **vit_shape).parameters())
    makers = {"ViT": lambda: tiny_vit(data, **vit_shape), "CNN": lambda: matched_cnn(data, vit_parameters)}
    pool, validation = split_train(data)
    rows = []
    for fraction in fractions:
        size = max(round(fraction * len(pool)), 10)
        for network, make in makers.items():
            for seed in seeds:
                indices = training_subset(pool, size, seed)
                sweep = None
                if chosen is not None and (network, fraction) in chosen:
                    lr = chosen[(network, fraction)]
                elif seed == seeds[0]:
                    sweep = {rate: train_one(make, data, indices, lr=rate, seed=seed, steps=steps, shift=shift,
                                             device=device, evaluate_on=Subset(data.train, validation))[1]
                             for rate in lrs}
                    lr = max(sweep, key=sweep.get)
                model, accuracy = train_one(make, data, indices, lr=lr, seed=seed, steps=steps, shift=shift,
                                            device=device)
                rows.append({"network": network, "parameters": sum(p.numel() for p in model.parameters()),
                             "fraction": fraction, "images": size, "lr": lr, "seed": seed,
                             "accuracy": accuracy, "model": model.cpu()})
                if sweep is not None:
                    rows[-1]["validation"] = {str(rate): score for rate, score in sweep.items()}
    return rows


def position_similarity(position: torch.Tensor) -> torch.Tensor:
    """The cosine similarity of a ViT's patch position embeddings ``(1, 1 + N, E)`` (its
    ``position``), ``(N, N)`` in the patch grid's reading order ([CLS] left out):
    Dosovitskiy et al. fig. 7, centre."""
    unit = F.normalize(position.detach()[0, 1:].float().cpu(), dim=-1)
    return unit @ unit.T


def position_structure(position: torch.Tensor) -> float:
    """How much position embeddings ``(1, 1 + N, E)`` follow the 2-D grid: the Spearman
    correlation, over all pairs of patches, between their embeddings' cosine and minus their
    distance on the grid (1: nearer patches always more alike; about 0 for random vectors)."""
    from backbones.words import spearman

    similarity = position_similarity(position)
    grid = math.isqrt(len(similarity))
    centres = patch_centres(grid, 1)
    distance = torch.cdist(centres, centres)
    i, j = torch.triu_indices(len(similarity), len(similarity), offset=1)
    return spearman(similarity[i, j].numpy(), -distance[i, j].numpy())


def patch_centres(grid: int, patch_size: int) -> torch.Tensor:
    """The pixel coordinates ``(N, 2)`` of a ``grid x grid`` patch grid's centres, reading order."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    return (torch.stack([rows.flatten(), cols.flatten()], dim=1).float() + 0.5) * patch_size


def mean_attention_distance(attention: list[torch.Tensor],
                            patch_size: int) -> torch.Tensor:
    """Dosovitskiy et al.'s "attention distance" (fig. 7, right): per layer and
    head, the distance in pixels between a patch and the patches it attends to,
    weighted by the attention and averaged over the patches and the batch.
    ``attention``: per layer ``(B, H, T, T)`` with the [CLS] token first (left out
    here). Returns ``(layers, heads)``."""
    tokens = attention[0].shape[-1] - 1
    grid = math.isqrt(tokens)
    centres = patch_centres(grid, patch_size)
    distance = torch.cdist(centres, centres)                       # (N, N) pixels
    out = []
    for weights in attention:
        a = weights[..., 1:, 1:].float().cpu()                     # patches to patches
        a = a / a.sum(dim=-1, keepdim=True)  # shares of the patch-to-patch attention
        out.append((a * distance).sum(dim=-1).mean(dim=(0, 2)))    # (H,)
    return torch.stack(out)


@torch.no_grad()
def deletion_test(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, scores: torch.Tensor, *,
                  patch_size: int, k: int, fill: float = 0.0, seed: int = 0) -> dict[str, float]:
    """Is a saliency map right about which patches matter? Replace ``k`` patches of each image
    with ``fill`` -- those the map ``scores`` (``(B, N)``) ranks highest, lowest, or ``k`` at
    random -- and return the accuracy left in each case (and with nothing removed)."""
    from backbones.models.vit import patchify, unpatchify

    model.eval()
    height, width = images.shape[-2:]
    generator = torch.Generator().manual_seed(seed)
    choices = {"none": None, "highest": scores.argsort(dim=1, descending=True)[:, :k],
               "lowest": scores.argsort(dim=1)[:, :k],
               "random": torch.stack([torch.randperm(scores.shape[1], generator=generator)[:k]
                                      for _ in range(len(images))])}
    out = {}
    for name, chosen in choices.items():
        patches = patchify(images, patch_size).clone()
        if chosen is not None:
            patches[torch.arange(len(images))[:, None], chosen] = fill
        logits = model(unpatchify(patches, patch_size, height, width))
        out[name] = (logits.argmax(dim=1) == labels).float().mean().item()
    return out
