"""Backbones, one family a file, each proven against its reference in the tests."""

from backbones.models.alexnet import AlexNet, alexnet
from backbones.models.efficientnet import EfficientNet, efficientnet_b0, efficientnet_lite0, efficientnet_v2_s
from backbones.models.mlp import SigmoidMLP
from backbones.models.resnet import (
    BasicBlock,
    Bottleneck,
    CifarResNet,
    PreActBlock,
    ResNet,
    cifar_resnet,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
    resnet152,
)
from backbones.models.simple_cnn import SimpleCNN
from backbones.models.transformer import EncoderBlock, SinusoidalPositionalEncoding, TransformerEncoder
from backbones.models.vgg import VGG, vgg11, vgg13, vgg16, vgg19
from backbones.models.vit import PatchEmbedding, ViT  # the factory: bb.models.vit.vit(name)

__all__ = [
    "SimpleCNN",
    "SigmoidMLP",
    "AlexNet",
    "alexnet",
    "VGG",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
    "BasicBlock",
    "PreActBlock",
    "Bottleneck",
    "ResNet",
    "CifarResNet",
    "cifar_resnet",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "SinusoidalPositionalEncoding",
    "EncoderBlock",
    "TransformerEncoder",
    "EfficientNet",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "efficientnet_lite0",
    "ViT",
    "PatchEmbedding",
]
