"""Backbones: the helper library of the book. Chapters say ``import backbones as bb``.

The public API a chapter needs, in one namespace:

- runtime: :func:`setup`, :func:`get_device`, :func:`get_profile`, :func:`seed_everything`
- data: :func:`load_image_data`, :func:`load_digits`, :func:`load_cifar10`, :func:`load_photo`,
  :func:`load_textures`, :func:`reversal_task`
- training: :func:`fit`, :func:`evaluate`, :class:`History`
- the code and diagrams on the page: :func:`show_source`, :func:`show_diagram`
- figures: :func:`use_style`, :func:`plot_history`, :func:`show_images`, and the chapters' plots in
  ``bb.plots``
- networks: ``bb.models`` (one family a file), ``bb.layers`` (one concept a file); their forward
  passes keep no state, and :func:`record_attention` records attention weights by hooks
- tools of the chapters: ``bb.receptive_field``, ``bb.landscape``, ``bb.experiments``, ``bb.summary``,
  ``bb.scaling`` (compound scaling),
  ``bb.text`` (a pretrained Transformer), ``bb.words`` (word vectors, analogies, bias),
  ``bb.word2vec`` (skip-gram with negative sampling, from scratch), ``bb.pretrained`` (ImageNet weights and metadata),
  ``bb.records`` (the recorded runs and diagrams in ``assets/``)
- explorations: ``bb.explore.show`` puts one on the page (ipywidgets live, precomputed plotly.js
  on the rendered book); ``bb.explorations`` holds the chapters'
- exercises: ``bb.exercises.check_…`` (checks that name the mistake)
"""

from backbones import (
    exercises,
    experiments,
    explorations,
    explore,
    landscape,
    layers,
    models,
    plots,
    pretrained,
    receptive_field,
    records,
    scaling,
    stats,
    summary,
    text,
    word2vec,
    words,
)
from backbones.data import (
    PHOTOS,
    TEXTURES,
    ImageData,
    load_cifar10,
    load_digits,
    load_image_data,
    load_photo,
    load_textures,
    reversal_task,
)
from backbones.display import show_diagram, show_source
from backbones.layers.attention import record_attention
from backbones.plots import (
    plot_attention,
    plot_gradient_flow,
    plot_history,
    plot_loss_surfaces,
    plot_training_loss,
    show_images,
    use_style,
)
from backbones.runtime import Profile, Runtime, get_device, get_profile, seed_everything, setup
from backbones.train import History, Metrics, evaluate, fit

__version__ = "0.1.0"

__all__ = [
    "models",
    "layers",
    "exercises",
    "experiments",
    "explore",
    "explorations",
    "landscape",
    "plots",
    "pretrained",
    "text",
    "receptive_field",
    "summary",
    "records",
    "scaling",
    "stats",
    "words",
    "word2vec",
    "setup",
    "Runtime",
    "Profile",
    "get_device",
    "get_profile",
    "seed_everything",
    "ImageData",
    "PHOTOS",
    "load_image_data",
    "load_digits",
    "load_cifar10",
    "load_photo",
    "reversal_task",
    "TEXTURES",
    "load_textures",
    "fit",
    "evaluate",
    "History",
    "Metrics",
    "use_style",
    "plot_history",
    "show_images",
    "plot_training_loss",
    "plot_loss_surfaces",
    "plot_gradient_flow",
    "plot_attention",
    "show_source",
    "show_diagram",
    "record_attention",
]
