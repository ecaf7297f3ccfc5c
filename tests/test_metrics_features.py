import sys
import warnings

import numpy as np
import pytest
import torch
import torchvision
from safetensors.torch import save_file

from ganzoo.errors import MissingDependencyError, UserError
from ganzoo.metrics.cache import file_sha256
from ganzoo.metrics.features import (
    INCEPTION_FILE,
    FeatureNet,
    InceptionFeatures,
    TorchvisionFeatures,
    build_fid_inception,
    embed,
    match_channels,
)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "ganzoo"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "ganzoo"


@pytest.fixture(scope="module")
def random_inception_file(tmp_path_factory):
    """A randomly initialised FID Inception state dict, as a stand-in for the real download."""
    with torch.device("meta"):
        shapes = build_fid_inception().state_dict()
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, tensor in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.ones(tensor.shape)
        else:
            state[key] = 0.05 * torch.randn(tensor.shape, generator=generator)
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(state, path)
    return path


def load_quietly(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return InceptionFeatures(**kwargs)


def test_missing_inception_weights_say_which_file_to_put_where(empty_caches):
    with pytest.raises(UserError) as error:
        InceptionFeatures()
    message = str(error.value)
    assert "\n" not in message
    assert INCEPTION_FILE in message and str(empty_caches / "inception") in message
    assert "https://" in message


def test_missing_explicit_weights_path(tmp_path):
    with pytest.raises(UserError, match="not found at"):
        InceptionFeatures(weights_path=tmp_path / "nope.pth")


def test_inception_loads_from_the_cache_and_records_the_file_hash(empty_caches, random_inception_file):
    target = empty_caches / "inception" / INCEPTION_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(random_inception_file.read_bytes())
    with pytest.warns(UserWarning, match="not comparable"):
        net = InceptionFeatures()
    assert net.weights_hash == file_sha256(random_inception_file)
    assert net.name == "inception-v3-fid" and "299" in net.resize
    assert isinstance(net, FeatureNet)
    saved = torch.load(random_inception_file, weights_only=True)
    assert torch.equal(net.backbone.Mixed_7c.branch_pool.conv.weight, saved["Mixed_7c.branch_pool.conv.weight"])
    assert torch.equal(net.head.weight, saved["fc.weight"]) and net.head.out_features == 1008
    assert not any(p.requires_grad for p in net.parameters())


def test_inception_rejects_a_file_of_another_network(tmp_path):
    path = tmp_path / "resnet.safetensors"
    save_file(torchvision.models.resnet18().state_dict(), str(path))
    with pytest.raises(UserError, match="does not hold FID Inception weights"):
        InceptionFeatures(weights_path=path)


def test_inception_needs_pytorch_fid(monkeypatch, random_inception_file):
    monkeypatch.setitem(sys.modules, "pytorch_fid", None)
    with pytest.raises(MissingDependencyError, match=r"ganzoo\[metrics\]"):
        InceptionFeatures(weights_path=random_inception_file)


@pytest.mark.slow
def test_inception_features_and_logits(random_inception_file):
    net = load_quietly(weights_path=random_inception_file)
    digits = torch.rand(2, 1, 28, 28) * 2 - 1
    features, logits = net(digits), net.logits(digits)
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.isfinite(features).all()
    assert torch.allclose(logits, features @ net.head.weight.T)


def test_torchvision_features_from_a_tiny_random_network():
    torch.manual_seed(0)
    net = TorchvisionFeatures("resnet18", input_size=32)
    digits = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    features = embed(net, digits, batch_size=3)
    logits = net.logits(digits)
    assert features.shape == (4, 512) and logits.shape == (4, 1000)
    assert torch.allclose(logits, net.head(torch.from_numpy(features).float()), atol=1e-4)
    assert net.weights_hash.startswith("random-init:") and net.resize == "bilinear-32"
    assert net.name == "torchvision-resnet18" and isinstance(net, FeatureNet)
    assert np.allclose(embed(net, digits), features, atol=1e-5)  # batching changes float rounding only


def test_torchvision_features_load_weights_from_a_file(tmp_path):
    path = tmp_path / "resnet18.safetensors"
    save_file(torchvision.models.resnet18().state_dict(), str(path))
    first = TorchvisionFeatures("resnet18", weights_path=path, input_size=32)
    second = TorchvisionFeatures("resnet18", weights_path=path, input_size=32)
    assert first.weights_hash == second.weights_hash == file_sha256(path)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    assert torch.equal(first(images), second(images))


def test_torchvision_errors():
    with pytest.raises(UserError, match="unknown torchvision model 'resnet_nope'"):
        TorchvisionFeatures("resnet_nope")
    with pytest.raises(UserError, match="no linear classifier head"):
        TorchvisionFeatures("squeezenet1_0")
    with pytest.raises(UserError, match="weights file not found"):
        TorchvisionFeatures("resnet18", weights_path="/nonexistent/weights.pth")


def test_match_channels():
    gray = torch.rand(2, 1, 4, 4)
    assert torch.equal(match_channels(gray, 3)[:, 2], gray[:, 0])
    assert torch.allclose(match_channels(gray.expand(-1, 3, -1, -1), 1), gray)
    with pytest.raises(UserError, match="channels"):
        match_channels(torch.rand(2, 4, 4, 4), 3)
    with pytest.raises(UserError, match=r"\(N, C, H, W\)"):
        match_channels(torch.rand(4, 4), 3)


@pytest.fixture(scope="module")
def calibrated_inception_file(tmp_path_factory):
    """A random FID Inception whose features depend on the input: default initialisation, and
    batch-norm statistics taken from one batch of noise (with ``random_inception_file``'s weights
    every image gets the same features, which would hide any difference in preprocessing)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_fid_inception()
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # running statistics = this batch's statistics
        with torch.no_grad():
            net.train()(torch.rand(2, 3, 299, 299) * 2 - 1)
    path = tmp_path_factory.mktemp("inception-calibrated") / INCEPTION_FILE
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_inception_features_equal_pytorch_fids_network_and_resize(calibrated_inception_file, tmp_path, monkeypatch):
    """Same weights, same images: ganzoo's FID features are pytorch-fid's (bilinear resize to 299
    without antialiasing, grayscale repeated to RGB), so its FIDs are comparable with pytorch-fid's."""
    from pytorch_fid.inception import InceptionV3

    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / INCEPTION_FILE).write_bytes(calibrated_inception_file.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # pytorch-fid finds the file, downloads nothing
    reference = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True).eval()
    ours = load_quietly(weights_path=calibrated_inception_file)
    generator = torch.Generator().manual_seed(0)
    # Up from 64 and 28 px (grayscale), and down from 400 px, where antialiasing would show.
    for shape in ((2, 3, 64, 64), (2, 1, 28, 28), (1, 3, 400, 400)):
        images = torch.rand(shape, generator=generator) * 2 - 1
        with torch.no_grad():
            expected = reference((match_channels(images, 3) + 1) / 2)[0].flatten(1)  # pytorch-fid takes [0, 1]
        features = ours(images)
        assert features.std(dim=1).min() > 0.1  # features that vary, so a different resize would show
        assert torch.allclose(features, expected, rtol=1e-4, atol=1e-4)
