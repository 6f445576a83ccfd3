"""The experiments behind the book's claims, as functions: a chapter runs them and shows the
result, a test runs the same code and checks the claim. One module per chapter:

- ``imagenet``: 02, per-class accuracy over seeds
- ``resnet``: 04, the degradation experiment, gradient flow, the identity path's share
- ``se``: 05, SE against no SE, the gates and their class share, linear probes
- ``attention``: 07, controls for what heads do (names and jobs, "it", association tests)
- ``vit``: 09, ViT against a CNN of its size, attention distance, positions, deletion
- ``recipe``: the one training recipe they share (seed -> build -> loaders -> fit -> evaluate)

and ``backbones.stats`` the statistics the chapters share (WEAT's association test, Spearman).

Every public name is also here, as ``bb.experiments.NAME``, which is how the chapters call them.
"""

from backbones.experiments.attention import (
    COREFERENCE_PAIRS,
    NAME_JOB_TEMPLATES,
    coreference_switch,
    coreference_weights,
    name_job_margins,
    pronoun_job_scores,
)
from backbones.experiments.imagenet import HUMAN_TOP5_ERROR, ILSVRC_WINNERS, Winner, per_class_accuracy
from backbones.experiments.recipe import Trained, adamw_one_cycle, train_recipe
from backbones.experiments.resnet import SCHEDULES, degradation, gradient_flow, identity_path_open, padding_mode
from backbones.experiments.se import (
    excitation_profiles,
    gate_class_share,
    linear_probe,
    pooled_features,
    se_comparison,
    se_gates,
)
from backbones.experiments.vit import (
    Shifted,
    deletion_test,
    matched_cnn,
    mean_attention_distance,
    patch_centres,
    position_similarity,
    position_structure,
    split_train,
    tiny_vit,
    train_one,
    training_subset,
    vit_vs_cnn,
)
from backbones.stats import association_test, effect_size, spearman

__all__ = [
    "per_class_accuracy",
    "ILSVRC_WINNERS",
    "HUMAN_TOP5_ERROR",
    "Winner",
    "SCHEDULES",
    "degradation",
    "gradient_flow",
    "identity_path_open",
    "padding_mode",
    "se_comparison",
    "se_gates",
    "excitation_profiles",
    "gate_class_share",
    "linear_probe",
    "pooled_features",
    "NAME_JOB_TEMPLATES",
    "name_job_margins",
    "pronoun_job_scores",
    "COREFERENCE_PAIRS",
    "coreference_weights",
    "coreference_switch",
    "Shifted",
    "tiny_vit",
    "matched_cnn",
    "split_train",
    "train_one",
    "training_subset",
    "vit_vs_cnn",
    "position_similarity",
    "position_structure",
    "patch_centres",
    "mean_attention_distance",
    "deletion_test",
    "Trained",
    "train_recipe",
    "adamw_one_cycle",
    "association_test",
    "effect_size",
    "spearman",
]
