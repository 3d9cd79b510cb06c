"""Networks: parameter counts, shapes, junyanz equivalence, initialisation, classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from colourmodels.networks import (
    PatchDiscriminator,
    UNetGenerator,
    build_classifier,
    count_parameters,
    init_weights,
)

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


@pytest.fixture(scope="module")
def big_generator() -> UNetGenerator:
    torch.manual_seed(0)
    return init_weights(UNetGenerator())


def test_generator_parameter_count(big_generator):
    assert count_parameters(big_generator) == 54_409_858


def test_discriminator_parameter_count_and_patch_output():
    d = PatchDiscriminator(in_channels=3)
    assert count_parameters(d) == 2_765_633
    with torch.no_grad():
        out = d(torch.randn(2, 3, 256, 256))
    assert out.shape == (2, 1, 30, 30)


def test_classifier_parameter_count_and_output():
    model = build_classifier(6)
    assert count_parameters(model) == 21_281_478
    assert model.conv1.in_channels == 1 and model.conv1.weight.shape == (64, 1, 7, 7)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 6)


@pytest.mark.parametrize("size", [256, 64, 32])
def test_generator_output_shape_and_range(size, big_generator):
    torch.manual_seed(1)
    g = big_generator if size == 256 else init_weights(UNetGenerator(image_size=size))
    assert g.num_downs == {256: 8, 64: 6, 32: 5}[size]
    g.train()
    x = torch.rand(2, 1, size, size) * 2 - 1
    with torch.no_grad():
        y = g(x)
    assert y.shape == (2, 2, size, size)
    assert y.dtype == torch.float32
    assert float(y.min()) >= -1.0 and float(y.max()) <= 1.0
    assert torch.isfinite(y).all()


def _dropout_blocks(g: UNetGenerator) -> list[int]:
    return [i for i, up in enumerate(g.ups) if any(isinstance(m, nn.Dropout) for m in up)]


def test_dropout_only_in_three_inner_up_blocks_at_256(big_generator):
    assert _dropout_blocks(big_generator) == [1, 2, 3]
    assert not any(isinstance(m, nn.Dropout) for m in big_generator.downs.modules())
    for i in (1, 2, 3):
        up = big_generator.ups[i]
        assert isinstance(up[-1], nn.Dropout) and up[-1].p == 0.5
        assert isinstance(up[-2], nn.BatchNorm2d)  # dropout after the norm
        assert up[1].in_channels == 1024 and up[1].out_channels == 512


def test_dropout_at_smaller_sizes():
    assert _dropout_blocks(UNetGenerator(image_size=128, width=4)) == [1, 2]
    assert _dropout_blocks(UNetGenerator(image_size=64, width=4)) == [1]
    assert _dropout_blocks(UNetGenerator(image_size=32, width=4)) == []
    assert _dropout_blocks(UNetGenerator(image_size=256, width=4, dropout=0.0)) == []


def test_generator_structure_matches_spec(big_generator):
    g = big_generator
    widths = [g.downs[i][-1].num_features if i not in (0, 7) else None for i in range(8)]
    assert widths == [None, 128, 256, 512, 512, 512, 512, None]
    assert [type(m) for m in g.downs[0]] == [nn.Conv2d]
    assert [type(m) for m in g.downs[7]] == [nn.LeakyReLU, nn.Conv2d]
    assert [type(m) for m in g.downs[3]] == [nn.LeakyReLU, nn.Conv2d, nn.BatchNorm2d]
    assert [type(m) for m in g.ups[-1]] == [nn.ReLU, nn.ConvTranspose2d, nn.Tanh]
    assert [type(m) for m in g.ups[0]] == [nn.ReLU, nn.ConvTranspose2d, nn.BatchNorm2d]
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert all(
        c.kernel_size == (4, 4) and c.stride == (2, 2) and c.padding == (1, 1) for c in convs
    )
    # Only the outermost transposed conv has a bias (it has no norm after it).
    assert [c.bias is not None for c in convs].count(True) == 1 and g.ups[-1][1].bias is not None
    assert g.downs[0][0].in_channels == 1 and g.ups[-1][1].out_channels == 2


# --- A literal copy of junyanz's recursive UnetSkipConnectionBlock (BatchNorm, dropout), to
# --- check that the flat generator computes exactly the same function.
class _JBlock(nn.Module):
    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False,
                 use_dropout=False):  # fmt: skip
        super().__init__()
        self.outermost = outermost
        input_nc = outer if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner, 4, 2, 1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer)
        if outermost:
            model = [
                downconv,
                sub,
                uprelu,
                nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1),
                nn.Tanh(),
            ]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)
            model = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)
            model = [downrelu, downconv, downnorm, sub, uprelu, upconv, upnorm]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def _junyanz_unet(input_nc, output_nc, num_downs, ngf):
    b = _JBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        b = _JBlock(ngf * 8, ngf * 8, sub=b, use_dropout=True)
    b = _JBlock(ngf * 4, ngf * 8, sub=b)
    b = _JBlock(ngf * 2, ngf * 4, sub=b)
    b = _JBlock(ngf, ngf * 2, sub=b)
    return _JBlock(output_nc, ngf, input_nc=input_nc, sub=b, outermost=True)


@pytest.mark.parametrize("size,width", [(32, 4), (64, 3), (256, 64)])
def test_same_parameters_and_function_as_junyanz(size, width):
    torch.manual_seed(0)
    ours = init_weights(UNetGenerator(1, 2, size, width))
    ref = _junyanz_unet(1, 2, size.bit_length() - 1, width)
    assert count_parameters(ref) == count_parameters(ours)
    # Depth-first registration order of the recursive version is "down path, then up path",
    # the order of the flat one: the state dicts correspond entry by entry.
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_sd.values()] == [v.shape for v in ref_sd.values()]
    if size == 256:
        return  # the count and the shapes are the point at full size; the function is below
    ref.load_state_dict(dict(zip(ref_sd, ours_sd.values())))
    x = torch.rand(3, 1, size, size) * 2 - 1
    for train in (True, False):
        ours.train(train)
        ref.train(train)
        torch.manual_seed(5)
        a = ours(x.clone())
        torch.manual_seed(5)
        b = ref(x.clone())
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_init_statistics(big_generator):
    w = big_generator.downs[4][1].weight  # 512x512x4x4 conv
    assert w.numel() > 4_000_000
    w = w.detach()
    assert abs(float(w.mean())) < 1e-3
    assert float(w.std()) == pytest.approx(0.02, rel=0.01)
    bn = torch.cat(
        [m.weight.detach() for m in big_generator.modules() if isinstance(m, nn.BatchNorm2d)]
    )
    assert float(bn.mean()) == pytest.approx(1.0, abs=2e-3)
    assert float(bn.std()) == pytest.approx(0.02, rel=0.1)
    for m in big_generator.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.count_nonzero(m.bias) == 0
    assert torch.count_nonzero(big_generator.ups[-1][1].bias) == 0
    d = init_weights(PatchDiscriminator())
    biases = [m.bias for m in d.modules() if isinstance(m, nn.Conv2d) and m.bias is not None]
    assert len(biases) == 2 and all(torch.count_nonzero(b) == 0 for b in biases)


@pytest.mark.parametrize("width", [1, 2, 5])
def test_narrow_widths(width):
    g = init_weights(UNetGenerator(image_size=64, width=width))
    d = init_weights(PatchDiscriminator(width=width))
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    y = g(x)
    assert y.shape == (2, 2, 64, 64)
    assert d(torch.cat([x, y], 1)).shape == (2, 1, 6, 6)
    y.mean().backward()  # differentiable end to end


@pytest.mark.parametrize("size", [0, 16, 48, 100, 257, 31, 64.0, "64"])
def test_bad_image_size_raises(size):
    with pytest.raises(ValueError, match="power of two"):
        UNetGenerator(image_size=size)


def test_classifier_local_weights(tmp_path):
    torch.manual_seed(0)
    a = build_classifier(6)
    path = tmp_path / "w.pt"
    torch.save(a.state_dict(), path)
    b = build_classifier(6, weights_path=path)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    torch.save({"state_dict": a.state_dict()}, tmp_path / "wrapped.pt")
    build_classifier(6, weights_path=tmp_path / "wrapped.pt")
    with pytest.raises(ValueError, match="fc.weight"):
        build_classifier(5, weights_path=path)
    with pytest.raises(FileNotFoundError):
        build_classifier(6, weights_path=tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        build_classifier(6, weights_path=tmp_path / "junk.pt")
