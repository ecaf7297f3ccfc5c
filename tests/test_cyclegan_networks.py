import functools

import pytest
import torch
from torch import nn

from ganzoo.errors import UserError
from ganzoo_plugins.cyclegan.networks import (
    ImagePool,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    init_weights,
    size_multiple,
)
from ganzoo_plugins.cyclegan.reference_weights import load_reference_generator


# --- The reference layout, written out the way junyanz/pytorch-CycleGAN-and-pix2pix builds it
# (list of layers appended in order, norm_layer as a partial), to check key-for-key compatibility.
class ReferenceResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer):
        super().__init__()
        conv_block = [nn.ReflectionPad2d(1)]
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=0), norm_layer(dim)]
        conv_block += [nn.ReLU(True)]
        conv_block += [nn.ReflectionPad2d(1)]
        conv_block += [nn.Conv2d(dim, dim, kernel_size=3, padding=0), norm_layer(dim)]
        self.conv_block = nn.Sequential(*conv_block)

    def forward(self, x):
        return x + self.conv_block(x)


class ReferenceResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, n_blocks):
        super().__init__()
        norm_layer = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0)]
        model += [norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1)]
            model += [norm_layer(ngf * mult * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            model += [ReferenceResnetBlock(ngf * 4, norm_layer)]
        for i in range(2):
            mult = 2 ** (2 - i)
            out = int(ngf * mult / 2)
            model += [
                nn.ConvTranspose2d(
                    ngf * mult, out, kernel_size=3, stride=2, padding=1, output_padding=1
                )
            ]
            model += [norm_layer(out), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0)]
        model += [nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


def reference_generator(ngf=8, n_blocks=3, input_nc=3, output_nc=3):
    torch.manual_seed(0)
    net = ReferenceResnetGenerator(input_nc, output_nc, ngf, n_blocks)
    with torch.no_grad():  # nonzero biases: a dropped or misplaced bias changes the output
        for param in net.parameters():
            param.normal_(0, 0.1)
    return net


# --- Shapes


@pytest.mark.parametrize("height,width", [(32, 32), (40, 48)])
def test_resnet_generator_keeps_input_size(height, width):
    net = init_weights(ResnetGenerator(3, 1, ngf=8, n_blocks=2))
    out = net(torch.randn(2, 3, height, width))
    assert out.shape == (2, 1, height, width)
    assert out.abs().max() <= 1
    assert height % size_multiple(net) == 0 and width % size_multiple(net) == 0


@pytest.mark.parametrize("height,width", [(32, 32), (64, 96)])
def test_unet_generator_keeps_input_size(height, width):
    net = init_weights(UnetGenerator(3, 3, num_downs=5, ngf=4))
    assert size_multiple(net) == 32
    assert net(torch.randn(2, 3, height, width)).shape == (2, 3, height, width)


def test_unet_rejects_too_few_downsamplings():
    with pytest.raises(ValueError, match="num_downs"):
        UnetGenerator(3, 3, num_downs=4)


def test_resnet_generator_matches_reference_key_indices():
    keys = ResnetGenerator(3, 3, ngf=64, n_blocks=9).state_dict().keys()
    assert "model.10.conv_block.1.weight" in keys and "model.18.conv_block.5.bias" in keys
    assert "model.19.weight" in keys and "model.22.weight" in keys  # the two transposed convs
    assert "model.26.weight" in keys and "model.27.weight" not in keys  # output conv, then Tanh
    assert not any("running" in key for key in keys)


def test_patchgan_output_shape():
    net = NLayerDiscriminator(3, ndf=8, n_layers=3)
    # 64 -> 32 -> 16 -> 8 by stride 2, then two stride-1 4x4 convs with padding 1: 8 -> 7 -> 6.
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 1, 6, 6)
    assert net(torch.randn(1, 3, 32, 48)).shape == (1, 1, 2, 4)
    convs = (0, 2, 5, 8, 11)
    assert set(net.state_dict()) == {f"model.{i}.{p}" for i in convs for p in ("weight", "bias")}


def test_init_weights_normal_conv_zero_bias():
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(3, 3, ngf=16, n_blocks=1), gain=0.02)
    weight = net.model[4].weight
    assert abs(weight.std().item() - 0.02) < 0.002
    convs = [module for module in net.modules() if isinstance(module, nn.Conv2d)]
    assert all(conv.bias.abs().sum() == 0 for conv in convs)


# --- Reference import


def test_reference_generator_imports_with_identical_output(tmp_path):
    reference = reference_generator(ngf=8, n_blocks=3, input_nc=3, output_nc=1)
    path = tmp_path / "latest_net_G_A.pth"
    torch.save(reference.state_dict(), path)

    net, info = load_reference_generator(path)

    assert info == {"input_nc": 3, "output_nc": 1, "ngf": 8, "n_blocks": 3}
    x = torch.randn(2, 3, 36, 28)
    with torch.no_grad():
        assert (net(x) - reference(x)).abs().max().item() <= 1e-5


def test_reference_import_strips_dataparallel_prefix_and_norm_statistics(tmp_path):
    reference = reference_generator(ngf=4, n_blocks=2)
    state = {f"module.{key}": value for key, value in reference.state_dict().items()}
    # What a pre-0.4 instance-norm checkpoint carries; the reference drops these on load.
    state["module.model.2.running_mean"] = torch.zeros(4)
    state["module.model.2.running_var"] = torch.ones(4)
    state["module.model.2.num_batches_tracked"] = torch.tensor(7)
    path = tmp_path / "parallel.pth"
    torch.save(state, path)

    net, info = load_reference_generator(path)

    assert info["ngf"] == 4 and info["n_blocks"] == 2
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(net(x), reference(x), atol=1e-5)


def save(tmp_path, obj, name="bad.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def assert_one_line_user_error(path, fragment):
    with pytest.raises(UserError) as caught:
        load_reference_generator(path)
    message = str(caught.value)
    assert "\n" not in message
    assert fragment in message
    assert "resnet_9blocks" in message  # says what was expected


def test_reference_import_rejects_wrong_shape(tmp_path):
    state = reference_generator(ngf=8, n_blocks=2).state_dict()
    state["model.4.weight"] = torch.zeros(16, 8, 5, 5)
    assert_one_line_user_error(save(tmp_path, state), "model.4.weight has shape (16, 8, 5, 5)")


def test_reference_import_rejects_missing_and_extra_keys(tmp_path):
    state = reference_generator(ngf=8, n_blocks=2).state_dict()
    del state["model.4.bias"]
    state["model.99.weight"] = torch.zeros(1)
    expected = "missing model.4.bias, unexpected model.99.weight"
    assert_one_line_user_error(save(tmp_path, state), expected)


def test_reference_import_rejects_unrelated_state_dict(tmp_path):
    state = nn.Sequential(nn.Linear(4, 4)).state_dict()
    assert_one_line_user_error(save(tmp_path, state), "model.1.weight")


def test_reference_import_rejects_unet(tmp_path):
    torch.manual_seed(0)
    state = UnetGenerator(3, 3, num_downs=5, ngf=4).state_dict()
    assert_one_line_user_error(save(tmp_path, state), "U-Net")


def test_reference_import_rejects_non_dict_and_corrupt_files(tmp_path):
    assert_one_line_user_error(save(tmp_path, torch.zeros(3), "tensor.pth"), "holds a Tensor")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"this is not a checkpoint")
    assert_one_line_user_error(corrupt, "cannot read")
    assert_one_line_user_error(tmp_path / "absent.pth", "not found")


def test_reference_import_refuses_pickled_modules(tmp_path):
    # A whole pickled module needs arbitrary code on load; weights_only loading must refuse it.
    assert_one_line_user_error(save(tmp_path, nn.Linear(2, 2), "module.pth"), "not the module")


# --- Image pool


def test_image_pool_returns_inputs_until_full():
    pool = ImagePool(pool_size=4)
    batch = torch.randn(3, 1, 2, 2)
    assert torch.equal(pool.query(batch), batch)
    nxt = torch.randn(1, 1, 2, 2)
    assert torch.equal(pool.query(nxt), nxt)
    assert len(pool.images) == 4
    for _ in range(20):
        assert pool.query(torch.randn(3, 1, 2, 2)).shape == (3, 1, 2, 2)
        assert len(pool.images) == 4


def test_image_pool_mixes_history_once_full():
    torch.manual_seed(0)
    pool = ImagePool(pool_size=2)
    history = torch.zeros(2, 1, 1, 1)
    pool.query(history)
    out = pool.query(torch.ones(200, 1, 1, 1))
    # About half the images are swapped for stored ones; only the two stored zeros differ from
    # the inputs, and each can be handed out once before it is replaced by an input.
    assert (out == 0).sum().item() == 2
    assert (out == 1).sum().item() == 198


def test_image_pool_zero_size_passes_through():
    batch = torch.randn(2, 3, 4, 4)
    assert ImagePool(pool_size=0).query(batch) is batch


def test_image_pool_state_round_trip_reproduces_choices(tmp_path):
    torch.manual_seed(1)
    pool = ImagePool(pool_size=5)
    for _ in range(4):
        pool.query(torch.randn(2, 3, 4, 4))
    path = tmp_path / "pool.pt"
    torch.save(pool.state_dict(), path)
    restored = ImagePool(pool_size=5)
    restored.load_state_dict(torch.load(path, weights_only=True))
    assert len(restored.images) == 5

    batches = [torch.randn(3, 3, 4, 4) for _ in range(6)]
    torch.manual_seed(2)
    original_out = [pool.query(batch) for batch in batches]
    torch.manual_seed(2)
    restored_out = [restored.query(batch) for batch in batches]
    assert all(torch.equal(a, b) for a, b in zip(original_out, restored_out))
    assert any(not torch.equal(out, batch) for out, batch in zip(original_out, batches))


def test_image_pool_state_of_empty_pool_round_trips():
    restored = ImagePool(pool_size=3)
    restored.load_state_dict(ImagePool(pool_size=3).state_dict())
    assert restored.images == []
    with pytest.raises(ValueError, match="pool_size"):
        ImagePool(pool_size=4).load_state_dict(ImagePool(pool_size=3).state_dict())
