"""Tiny networks and their ONNX exports, shared by the export, runtime, JavaScript and web tests."""

from __future__ import annotations

import torch
from torch import nn

from ganzoo.export.trace import export_onnx
from ganzoo_export import InputSpec, ModelMetadata

LATENT_DIM = 8
CLASS_NAMES = ["zero", "one", "two"]


class TinyGenerator(nn.Module):
    """z -> 1x16x16 through ConvTranspose + BatchNorm + tanh."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(LATENT_DIM, 8, 4, 1, 0),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 4, 4, 2, 1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.ConvTranspose2d(4, 1, 4, 2, 1),
            nn.Tanh(),
        )
        for layer in self.net:
            if isinstance(layer, nn.BatchNorm2d):  # non-trivial statistics, so folding shows
                layer.running_mean.uniform_(-0.5, 0.5)
                layer.running_var.uniform_(0.5, 2.0)

    def forward(self, z):
        return self.net(z.view(z.shape[0], -1, 1, 1))


class TinyConditionalGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(len(CLASS_NAMES), LATENT_DIM)
        self.generator = TinyGenerator()

    def forward(self, z, label):
        return self.generator(z * self.embed(label))


class TinyTranslator(nn.Module):
    """Fully convolutional, one stride-2 stage, so H and W must be multiples of 2."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(3, 8, 3),
            nn.InstanceNorm2d(8, affine=True),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, 2, 1),
            nn.InstanceNorm2d(8),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 8, 3, 2, 1, output_padding=1),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(8, 3, 3),
            nn.Tanh(),
        )

    def forward(self, image):
        return self.net(image)


class TinyResnetTranslator(nn.Module):
    """CycleGAN's shape in miniature: 7x7 reflect-padded ends, two stride-2 stages, a residual block
    with reflection padding in the middle; below 8 px the middle block's padding cannot run."""

    def __init__(self, channels: int = 3, width: int = 8):
        super().__init__()
        self.down = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(channels, width, 7), nn.InstanceNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(),
        )
        self.block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(width, width, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(width, width, 3, 2, 1, output_padding=1), nn.ReLU(),
            nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh(),
        )

    def forward(self, image):
        features = self.down(image)
        return self.up(features + self.block(features))


BATCH_AXES = {"z": {0: "batch"}, "image": {0: "batch"}}
IMAGE_AXES = {0: "batch", 2: "height", 3: "width"}


def generator_metadata(**changes) -> ModelMetadata:
    fields = dict(
        plugin="dcgan",
        plugin_version="0.1.0",
        ganzoo_version="0.1.0",
        task="generate",
        inputs=[InputSpec("z", "latent", ("batch", LATENT_DIM))],
        channels=1,
        latent_dim=LATENT_DIM,
        height=16,
        width=16,
        resolution=16,
        extra={"dataset": "digits"},
    )
    fields.update(changes)
    return ModelMetadata(**fields)


def conditional_metadata() -> ModelMetadata:
    return generator_metadata(
        plugin="cgan",
        inputs=[
            InputSpec("z", "latent", ("batch", LATENT_DIM)),
            InputSpec("label", "label", ("batch",)),
        ],
        class_names=CLASS_NAMES,
    )


def translator_metadata(**changes) -> ModelMetadata:
    fields = dict(
        plugin="cyclegan",
        plugin_version="0.1.0",
        ganzoo_version="0.1.0",
        task="translate",
        inputs=[InputSpec("image", "image", ("batch", 3, "height", "width"))],
        channels=3,
        direction="AtoB",
        size_multiple=2,
    )
    fields.update(changes)
    return ModelMetadata(**fields)


BATCH_AXES = {"z": {0: "batch"}, "image": {0: "batch"}}


def export_generator(module, path, **options):
    """The tiny generator's export, parity-checked at batch 1 and 5 besides the example's 2."""
    return export_onnx(
        module,
        (torch.randn(2, LATENT_DIM),),
        path,
        input_names=["z"],
        dynamic_axes=BATCH_AXES,
        metadata=generator_metadata(),
        parity_inputs=[(torch.randn(1, LATENT_DIM),), (torch.randn(5, LATENT_DIM),)],
        **options,
    )


def export_conditional(module, path, **options):
    return export_onnx(
        module,
        (torch.randn(3, LATENT_DIM), torch.tensor([0, 1, 2])),
        path,
        input_names=["z", "label"],
        dynamic_axes={**BATCH_AXES, "label": {0: "batch"}},
        metadata=conditional_metadata(),
        parity_inputs=[(torch.randn(5, LATENT_DIM), torch.tensor([2, 2, 1, 0, 1]))],
        **options,
    )


def export_translator(module, path, metadata=None, parity_inputs=None, **options):
    return export_onnx(
        module,
        (torch.randn(1, 3, 16, 16),),
        path,
        input_names=["image"],
        dynamic_axes={"image": IMAGE_AXES},
        output_names=["translated"],
        metadata=metadata or translator_metadata(),
        parity_inputs=parity_inputs or [(torch.randn(2, 3, 24, 32),), (torch.randn(1, 3, 10, 6),)],
        **options,
    )


def export_resnet_translator(module, path, **options):
    """Sizes as the card of a real export states them: multiple 4, smallest 8, tiles of 32."""
    metadata = translator_metadata(size_multiple=4, min_size=8, max_size=32)
    parity = [(torch.randn(2, 3, 8, 12),), (torch.randn(1, 3, 40, 36),)]
    return export_translator(module, path, metadata, parity, **options)


def export_tiny_models(folder, seed: int = 0):
    """generator.onnx, conditional.onnx (classes zero, one, two) and translator.onnx (ResNet-like) in ``folder``."""
    torch.manual_seed(seed)
    export_generator(TinyGenerator(), folder / "generator.onnx")
    export_conditional(TinyConditionalGenerator(), folder / "conditional.onnx")
    export_resnet_translator(TinyResnetTranslator(), folder / "translator.onnx")
    return folder
