"""CUT's pieces on their own: PatchNCE against the paper's formula, the patch sampler F, the
generator's encoder features, and importing generators trained with the reference implementation."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganzoo.api import load_run
from ganzoo.cli.app import main
from ganzoo.errors import UserError
from ganzoo_plugins.cut import REFERENCE_FILE
from ganzoo_plugins.cut.networks import FeatureResnetGenerator, PatchSampler, feature_widths
from ganzoo_plugins.cut.patchnce import patch_nce_loss
from ganzoo_plugins.cyclegan.reference_weights import load_resnet_generator

# --- PatchNCE -----------------------------------------------------------------------------------


def paper_patch_nce(queries, keys, tau):
    """Eq. 3 of Park et al. 2020, one patch at a time: for query v = q_i, positive v+ = k_i and the
    negatives v-_n = k_j (j != i) of the same image,
    l = -log(exp(v.v+/tau) / (exp(v.v+/tau) + sum_n exp(v.v-_n/tau)))."""
    n, patches, _ = queries.shape
    losses = torch.zeros(n, patches, dtype=torch.float64)
    for b in range(n):
        for i in range(patches):
            v = queries[b, i].double()
            positive = math.exp(float(v @ keys[b, i].double()) / tau)
            negatives = sum(math.exp(float(v @ keys[b, j].double()) / tau) for j in range(patches) if j != i)
            losses[b, i] = -math.log(positive / (positive + negatives))
    return losses


def unit(*shape, seed=0):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return x / x.norm(dim=-1, keepdim=True)


@pytest.mark.parametrize("tau", [0.07, 1.0])
def test_patch_nce_equals_the_papers_formula_patch_by_patch(tau):
    queries, keys = unit(2, 7, 5, seed=1), unit(2, 7, 5, seed=2)
    ours = patch_nce_loss(queries, keys, tau)
    assert ours.shape == (2, 7)
    torch.testing.assert_close(ours.double(), paper_patch_nce(queries, keys, tau), atol=1e-5, rtol=1e-5)


def test_patch_nce_by_hand_for_two_orthogonal_patches():
    # q_i = k_i = e_i: the positive scores 1/tau, the one negative 0, so each loss is log(1 + e^(-1/tau)).
    eye = torch.eye(2)[None]
    expected = math.log(1 + math.exp(-1 / 0.5))
    assert torch.allclose(patch_nce_loss(eye, eye, 0.5), torch.full((1, 2), expected))
    # swapped keys: each query now faces its own key as the negative, log(1 + e^(1/tau))
    assert torch.allclose(patch_nce_loss(eye, eye.flip(1), 0.5), torch.full((1, 2), math.log(1 + math.exp(2))))


def test_patch_nce_trains_queries_only_and_negatives_stay_within_an_image():
    queries = unit(2, 4, 3, seed=3).requires_grad_()
    keys = unit(2, 4, 3, seed=4).requires_grad_()
    patch_nce_loss(queries, keys, 0.07).sum().backward()
    assert keys.grad is None and queries.grad.abs().sum() > 0
    # changing the second image's keys leaves the first image's losses as they were
    moved = keys.detach().clone()
    moved[1] = unit(4, 3, seed=5)
    assert torch.equal(patch_nce_loss(queries, keys, 0.07)[0], patch_nce_loss(queries, moved, 0.07)[0])


# --- F and the encoder features -------------------------------------------------------------------


def test_sampler_takes_the_same_locations_of_input_and_output_and_returns_unit_vectors():
    torch.manual_seed(0)
    sampler = PatchSampler([3, 8], nc=16)
    feats = [torch.randn(2, 3, 6, 6), torch.randn(2, 8, 3, 3)]
    out, ids = sampler(feats, num_patches=20)
    assert [tuple(o.shape) for o in out] == [(2, 20, 16), (2, 9, 16)]  # a 3x3 map has only 9 locations
    assert sorted(ids[1].tolist()) == list(range(9))
    for o in out:
        torch.testing.assert_close(o.norm(dim=-1), torch.ones(o.shape[:2]), atol=1e-6, rtol=0)
    again, same_ids = sampler(feats, num_patches=20, patch_ids=ids)
    assert all(torch.equal(a, b) for a, b in zip(ids, same_ids))
    assert all(torch.equal(a, b) for a, b in zip(out, again))
    # location i of image b is the head's projection of feature vector feats[0][b, :, y, x]
    location = int(ids[0][5])
    y, x = divmod(location, 6)
    head = sampler.heads[0](feats[0][1, :, y, x])
    torch.testing.assert_close(out[0][1, 5], head / head.norm(), atol=1e-6, rtol=0)


def test_sampler_gradient_is_finite_when_a_head_outputs_zero():
    sampler = PatchSampler([2], nc=4)
    with torch.no_grad():
        sampler.heads[0][0].bias.fill_(-100)  # every ReLU off: the head maps everything to zero
        sampler.heads[0][2].bias.zero_()
    out, _ = sampler([torch.randn(1, 2, 2, 2, requires_grad=True)], num_patches=4)
    out[0].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in sampler.parameters() if p.grad is not None)


@pytest.mark.parametrize("antialias", [True, False])
def test_encoder_features_are_the_outputs_of_the_named_layers(antialias):
    # 7 blocks: without anti-aliasing layer 16 is then still a block (the encoder is shorter)
    g = FeatureResnetGenerator(3, 3, ngf=4, n_blocks=7, antialias=antialias, antialias_up=antialias).eval()
    x = torch.randn(2, 3, 16, 20)
    feats = g(x, nce_layers=(0, 4, 8, 12, 16))
    expected, h = [], x
    for layer in g.model[:17]:  # as the reference's forward(encode_only=True): in-place ReLUs included
        h = layer(h)
        expected.append(h)
    expected = [expected[i] for i in (0, 4, 8, 12, 16)]
    assert len(feats) == 5 and all(torch.equal(a, b) for a, b in zip(feats, expected))
    assert torch.equal(feats[0], F.pad(x, (3, 3, 3, 3), mode="reflect"))  # layer 0 is the padded image
    assert feature_widths(g, (0, 4, 8, 12, 16), 16) == [3, 8, 16, 16, 16]
    assert g(x).shape == x.shape


# --- The reference's generator, written as taesungp/contrastive-unpaired-translation writes it
# (models/networks.py: numpy binomial filters, padding modules, lists of layers), to check that its
# files load key for key and compute the same function.


def get_filter(filt_size):
    a = {3: np.array([1.0, 2.0, 1.0]), 4: np.array([1.0, 3.0, 3.0, 1.0])}[filt_size]
    filt = torch.Tensor(a[:, None] * a[None, :])
    return filt / torch.sum(filt)


class RefDownsample(nn.Module):
    def __init__(self, channels, filt_size=3, stride=2):
        super().__init__()
        self.pad_sizes = [int(1.0 * (filt_size - 1) / 2), int(np.ceil(1.0 * (filt_size - 1) / 2))] * 2
        self.stride = stride
        self.register_buffer("filt", get_filter(filt_size)[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReflectionPad2d(self.pad_sizes)

    def forward(self, inp):
        return F.conv2d(self.pad(inp), self.filt, stride=self.stride, groups=inp.shape[1])


class RefUpsample(nn.Module):
    def __init__(self, channels, filt_size=4, stride=2):
        super().__init__()
        self.filt_odd = np.mod(filt_size, 2) == 1
        self.pad_size = int((filt_size - 1) / 2)
        self.stride = stride
        filt = get_filter(filt_size) * (stride**2)
        self.register_buffer("filt", filt[None, None, :, :].repeat((channels, 1, 1, 1)))
        self.pad = nn.ReplicationPad2d([1, 1, 1, 1])

    def forward(self, inp):
        ret_val = F.conv_transpose2d(
            self.pad(inp), self.filt, stride=self.stride, padding=1 + self.pad_size, groups=inp.shape[1]
        )[:, :, 1:, 1:]
        return ret_val if self.filt_odd else ret_val[:, :, :-1, :-1]


class RefResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
        conv_block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True), norm(dim)]
        conv_block += [nn.ReLU(True), nn.ReflectionPad2d(1)]
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True), norm(dim)]
        self.conv_block = nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks, no_antialias=False, no_antialias_up=False):
        super().__init__()
        norm = lambda c: nn.InstanceNorm2d(c, affine=False, track_running_stats=False)  # noqa: E731
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True), norm(ngf),
                 nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            if no_antialias:
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                          norm(ngf * mult * 2), nn.ReLU(True)]
            else:
                model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=1, padding=1, bias=True),
                          norm(ngf * mult * 2), nn.ReLU(True), RefDownsample(ngf * mult * 2)]
        model += [RefResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for i in range(2):
            mult = 2 ** (2 - i)
            if no_antialias_up:
                model += [nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=2, padding=1,
                                             output_padding=1, bias=True), norm(int(ngf * mult / 2)), nn.ReLU(True)]
            else:
                model += [RefUpsample(ngf * mult),
                          nn.Conv2d(ngf * mult, int(ngf * mult / 2), kernel_size=3, stride=1, padding=1, bias=True),
                          norm(int(ngf * mult / 2)), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def reference_generator(ngf=8, n_blocks=4, **layout):
    torch.manual_seed(0)
    net = RefResnetGenerator(3, 3, ngf, n_blocks, **layout).eval()
    with torch.no_grad():  # nonzero biases: a dropped or misplaced bias would change the output
        for param in net.parameters():
            param.normal_(0, 0.1)
    return net


@pytest.mark.parametrize("no_antialias,no_antialias_up", [(False, False), (True, False), (False, True), (True, True)])
def test_every_reference_layout_loads_strictly_and_computes_the_same(tmp_path, no_antialias, no_antialias_up):
    reference = reference_generator(no_antialias=no_antialias, no_antialias_up=no_antialias_up)
    path = tmp_path / "latest_net_G.pth"
    torch.save(reference.state_dict(), path)
    net, layout = load_resnet_generator(path, FeatureResnetGenerator, REFERENCE_FILE)
    assert layout == {"input_nc": 3, "output_nc": 3, "ngf": 8, "n_blocks": 4,
                      "antialias": not no_antialias, "antialias_up": not no_antialias_up}
    x = torch.rand(2, 3, 24, 36) * 2 - 1
    with torch.no_grad():
        assert (net.eval()(x) - reference(x)).abs().max() <= 1e-5


def test_import_turns_a_reference_file_into_a_run_and_onnx_with_parity(tmp_path, capsys):
    from ganzoo_export.runtime import GanzooModel

    reference = reference_generator(ngf=8, n_blocks=5)
    weights = tmp_path / "latest_net_G.pth"
    torch.save({f"module.{k}": v for k, v in reference.state_dict().items()}, weights)  # as DataParallel saves

    with pytest.raises(SystemExit) as done:
        main(["import", "cut", str(weights), "--out", str(tmp_path / "run")])
    assert done.value.code in (0, None)
    assert "cut-AtoB.onnx" in capsys.readouterr().out

    run = load_run(tmp_path / "run")
    assert (run.spec.model.ngf, run.spec.model.n_blocks, run.spec.model.antialias) == (8, 5, True)
    model = GanzooModel(tmp_path / "run" / "exports" / "cut-AtoB.onnx", providers=["CPUExecutionProvider"])
    assert (model.metadata.direction, model.metadata.size_multiple) == ("AtoB", 4)
    for shape in ((2, 3, 32, 32), (1, 3, 36, 52)):
        x = torch.rand(shape) * 2 - 1
        with torch.no_grad():
            expected = reference(x)
            assert (run.nets["G"](x) - expected).abs().max() <= 1e-5
        # onnxruntime's kernels round differently from PyTorch's: 1e-4 is the exporter's own bound
        # (about 1e-5 is typical here, for weights of std 0.1)
        assert np.abs(model.run_raw(source=x.numpy())["image"] - expected.numpy()).max() <= 1e-4
    with pytest.raises(UserError, match="ganzoo translate"):
        run.sample(1)


def test_import_of_a_file_of_another_shape_fails_with_one_line(tmp_path, capsys):
    weights = tmp_path / "latest_net_D.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 4)).state_dict(), weights)
    with pytest.raises(SystemExit) as done:
        main(["import", "cut", str(weights), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error:") and "latest_net_G.pth" in err
    assert not (tmp_path / "run").exists()


def test_import_names_a_layout_mismatch_in_one_line(tmp_path):
    state = reference_generator().state_dict()
    state["model.12.conv_block.1.weight"] = torch.zeros(64, 64, 3, 3)  # a block twice as wide
    torch.save(state, tmp_path / "latest_net_G.pth")
    with pytest.raises(UserError, match=r"model\.12\.conv_block\.1\.weight has shape \(64, 64, 3, 3\)") as error:
        load_resnet_generator(tmp_path / "latest_net_G.pth", FeatureResnetGenerator, REFERENCE_FILE)
    assert "\n" not in str(error.value)


def test_cyclegan_import_points_a_cut_file_to_cut(tmp_path, capsys):
    torch.save(reference_generator().state_dict(), tmp_path / "latest_net_G.pth")
    with pytest.raises(SystemExit) as done:
        main(["import", "cyclegan", str(tmp_path / "latest_net_G.pth"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1 and "ganzoo import cut" in err
