"""DCGAN: the paper's architecture rules, sizes, and the contract check."""

import pytest
import torch
from torch import nn

from ganzoo.errors import UserError
from ganzoo.plugin import DataInfo
from ganzoo_plugins.dcgan import DCGAN, DCGANConfig, blocks_for


@pytest.mark.parametrize("size, channels", [(16, 1), (32, 3), (64, 1), (128, 3)])
def test_shapes_at_each_size(size, channels):
    nets = DCGAN(DCGANConfig(ngf=8, ndf=8, latent_dim=10), DataInfo(channels=channels, size=size)).build()
    image = nets["G"](torch.randn(2, 10))
    assert image.shape == (2, channels, size, size)
    assert image.abs().max() <= 1  # tanh output
    assert nets["D"](image).shape == (2,)


def test_architecture_follows_the_paper():
    nets = DCGAN(DCGANConfig(), DataInfo(channels=1, size=32)).build()
    g, d = nets["G"], nets["D"]
    for net in (g, d):
        kinds = {type(m) for m in net.modules()}
        assert nn.Linear not in kinds and nn.MaxPool2d not in kinds and nn.AvgPool2d not in kinds
    g_layers, d_layers = list(g.net), list(d.features) + [d.head]
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)  # no BN on G's output
    assert not isinstance(d_layers[1], nn.BatchNorm2d)  # no BN on D's input layer
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert any(isinstance(m, nn.ReLU) for m in g.modules())
    assert all(m.stride == (2, 2) for m in d.features if isinstance(m, nn.Conv2d))
    weights = torch.cat([m.weight.detach().flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert weights.mean().abs() < 2e-3 and weights.std().item() == pytest.approx(0.02, rel=0.05)
    opt = DCGAN(DCGANConfig(), DataInfo(channels=1, size=32)).optimizers()["G"]
    assert opt.lr == 2e-4 and opt.betas == (0.5, 0.999)


def test_rejects_sizes_that_are_not_powers_of_two():
    with pytest.raises(UserError, match="power of two"):
        blocks_for(48)
