"""Pix2PixStep against a hand-written computation of the method's formulas (CPU)."""

from __future__ import annotations

import copy

import pytest
import torch

from colourmodels.networks import PatchDiscriminator, UNetGenerator, init_weights
from colourmodels.training import PerformanceOptions, Pix2PixStep

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def _nets(size: int = 32, width: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    g = init_weights(UNetGenerator(1, 2, size, width))
    d = init_weights(PatchDiscriminator(3, width))
    return g, d


def _batch(n: int = 4, size: int = 32, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    luma = torch.rand(n, 1, size, size, generator=gen) * 2 - 1
    chroma = (torch.rand(n, 2, size, size, generator=gen) * 2 - 1) * 0.5
    return luma, chroma


def _bce_by_hand(logits: torch.Tensor, target: int) -> torch.Tensor:
    # -mean[t log s(x) + (1 - t) log(1 - s(x))], written out with the sigmoid.
    p = torch.sigmoid(logits.double())
    return -(torch.log(p) if target == 1 else torch.log1p(-p)).mean()


def test_step_losses_match_hand_computation():
    g, d = _nets()
    g_ref, d_ref = copy.deepcopy(g), copy.deepcopy(d)
    luma, chroma = _batch()
    step = Pix2PixStep(g, d, device="cpu")
    losses = step.step(luma, chroma)
    assert set(losses) == {"d_loss", "g_gan", "g_l1", "g_total"}
    assert all(v.dim() == 0 and not v.requires_grad for v in losses.values())

    # Reference: the same two updates, written out by hand.
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    fake = g_ref(luma)
    pred_fake = d_ref(torch.cat([luma, fake.detach()], 1))
    pred_real = d_ref(torch.cat([luma, chroma], 1))
    assert pred_real.shape == (4, 1, 2, 2)
    d_loss = 0.5 * (_bce_by_hand(pred_real, 1) + _bce_by_hand(pred_fake, 0))
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    pred = d_ref(torch.cat([luma, fake], 1))  # D after its update
    g_gan = _bce_by_hand(pred, 1)
    g_l1 = 100.0 * (fake.double() - chroma.double()).abs().mean()
    opt_g.zero_grad()
    (g_gan + g_l1).backward()
    opt_g.step()

    torch.testing.assert_close(losses["d_loss"].double(), d_loss.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["g_gan"].double(), g_gan.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses["g_l1"].double(), g_l1.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(losses["g_total"], losses["g_gan"] + losses["g_l1"])
    # The weights after the step equal the reference's (both optimisers stepped once).
    for a, b in zip(g.parameters(), g_ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(d.parameters(), d_ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # D's BatchNorm running stats saw fake, real, fake (three forwards), as in junyanz.
    bn = next(m for m in d.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert int(bn.num_batches_tracked) == 3
    # D's parameters are trainable again after the step.
    assert all(p.requires_grad for p in d.parameters())


def test_d_loss_is_at_log2_for_uninformative_discriminator():
    # A discriminator that always outputs logit 0 gives BCE = log 2 for both terms.
    g, _ = _nets()

    class Zero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return self.w * x[:, :1, :4, :4]

    luma, chroma = _batch()
    step = Pix2PixStep(g, Zero(), device="cpu")
    losses = step.step(luma, chroma)
    log2 = torch.log(torch.tensor(2.0))
    torch.testing.assert_close(losses["d_loss"], log2)
    torch.testing.assert_close(losses["g_gan"], log2)


def test_evaluate_uses_eval_mode_and_changes_nothing():
    g, d = _nets(size=64)  # one dropout block at 64 px
    step = Pix2PixStep(g, d, device="cpu", lambda_l1=10.0)
    luma, chroma = _batch(size=64)
    step.step(luma, chroma)
    before = {k: v.clone() for k, v in g.state_dict().items()}
    a = step.evaluate(luma, chroma)
    b = step.evaluate(luma, chroma)
    assert set(a) == {"gan", "l1", "total"}
    for k in a:
        assert torch.equal(a[k], b[k])  # deterministic: no dropout, running BN stats
    assert g.training and d.training  # modes restored
    for k, v in g.state_dict().items():
        assert torch.equal(v, before[k])
    g.eval()
    d.eval()
    with torch.no_grad():
        fake = g(luma)
        pred = d(torch.cat([luma, fake], 1))
    torch.testing.assert_close(a["gan"].double(), _bce_by_hand(pred, 1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a["l1"], 10.0 * (fake - chroma).abs().mean())
    torch.testing.assert_close(a["total"], a["gan"] + a["l1"])


def test_state_dict_round_trip_continues_identically():
    luma, chroma = _batch()
    g1, d1 = _nets()
    s1 = Pix2PixStep(g1, d1, device="cpu")
    s1.step(luma, chroma)
    g2, d2 = copy.deepcopy(g1), copy.deepcopy(d1)
    s2 = Pix2PixStep(g2, d2, device="cpu")  # same options: bit-identical continuation
    s2.load_state_dict(s1.state_dict())
    a = s1.step(luma, chroma)  # must not touch s2's (copied, not aliased) optimiser state
    b = s2.step(luma, chroma)
    for k in a:
        assert torch.equal(a[k], b[k])
    for p, q in zip(g1.parameters(), g2.parameters()):
        assert torch.equal(p, q)


def test_state_dict_loads_across_memory_formats():
    luma, chroma = _batch()
    g1, d1 = _nets()
    s1 = Pix2PixStep(g1, d1, device="cpu")
    s1.step(luma, chroma)
    g2, d2 = copy.deepcopy(g1), copy.deepcopy(d1)
    s2 = Pix2PixStep(g2, d2, device="cpu", perf=PerformanceOptions(channels_last=True))
    s2.load_state_dict(s1.state_dict())
    for opt in (s2.opt_g, s2.opt_d):
        for p, st in opt.state.items():
            assert st["exp_avg"].stride() == p.stride() == st["exp_avg_sq"].stride()
    assert g2.downs[1][1].weight.is_contiguous(memory_format=torch.channels_last)
    a = s1.step(luma, chroma)
    b = s2.step(luma, chroma)
    # Same maths, other convolution kernels (channels last): both losses are computed before
    # this step's updates, so only the forward passes' float32 rounding separates them (equal
    # on this CPU; a conv's ~10^3-term sums bound it by ~10^3 * 6e-8 per layer).
    torch.testing.assert_close(a["g_l1"], b["g_l1"], rtol=1e-3, atol=0)
    torch.testing.assert_close(a["d_loss"], b["d_loss"], rtol=1e-3, atol=0)


@pytest.mark.parametrize("perf", [PerformanceOptions.reference(), PerformanceOptions.fast()])
def test_cpu_ignores_cuda_only_options(perf):
    g, d = _nets()
    step = Pix2PixStep(g, d, device="cpu", perf=perf)
    assert not step.amp and not step.graphs
    assert all(
        not grp.get("fused") and not grp.get("capturable") for grp in step.opt_g.param_groups
    )
    luma, chroma = _batch()
    out = step.step(luma, chroma)
    assert torch.isfinite(torch.stack(list(out.values()))).all()
    if perf.channels_last:
        assert g.downs[1][1].weight.is_contiguous(memory_format=torch.channels_last)


def test_performance_options():
    assert PerformanceOptions() == PerformanceOptions.reference()
    assert not any(PerformanceOptions.reference().to_dict().values())
    assert all(PerformanceOptions.fast().to_dict().values())
    fast = PerformanceOptions.fast()
    assert PerformanceOptions.from_dict(fast.to_dict()) == fast
    with pytest.raises(ValueError):
        PerformanceOptions.from_dict({"turbo": True})


def _graphed_on_the_cpu(monkeypatch, capture_error: Exception | None):
    """A step that takes the CUDA-graph path on the CPU: the side stream's warm-up runs in
    place and the capture raises ``capture_error`` (what a GPU's failed capture raises)."""
    step = Pix2PixStep(*_nets(), perf=PerformanceOptions(), device="cpu", warmup_steps=2)
    step.graphs = True  # as on CUDA with perf.cuda_graph
    warmed = []

    def warmup(luma, chroma):
        warmed.append(luma)
        return step._train_step(luma, chroma)

    def capture(luma, chroma):
        raise capture_error

    monkeypatch.setattr(step, "_warmup", warmup)
    monkeypatch.setattr(step, "_capture_and_replay", capture)
    return step, warmed


def test_a_failed_cuda_graph_capture_goes_on_eagerly_with_the_same_steps(monkeypatch):
    """Seen on an H200: cuDNN failed inside the first capture and the training died. The step
    must be taken eagerly instead, said once in words, and later steps must not capture."""
    failure = torch.AcceleratorError(
        "CUDA error: operation failed due to a previous error during capture\nSearch for ..."
    )
    step, warmed = _graphed_on_the_cpu(monkeypatch, failure)
    eager = Pix2PixStep(*_nets(), perf=PerformanceOptions(), device="cpu")
    batches = [_batch(seed=s) for s in range(5)]
    with pytest.warns(RuntimeWarning, match="CUDA graph capture failed .*AcceleratorError"):
        for luma, chroma in batches:
            torch.testing.assert_close(
                step.step_tensor(luma, chroma), eager.step_tensor(luma, chroma)
            )
    assert step.graphs is False
    assert step.graph_failure.startswith("AcceleratorError: CUDA error: operation failed")
    assert "\n" not in step.graph_failure
    assert len(warmed) == 2  # the two warm-ups, then one failed capture, then eager steps
    for a, b in zip(step.generator.parameters(), eager.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_the_last_warm_up_reads_the_buffers_the_graph_will_read(monkeypatch):
    step, warmed = _graphed_on_the_cpu(monkeypatch, RuntimeError("cuDNN error"))
    (l0, c0), (l1, c1) = _batch(seed=1), _batch(seed=2)
    step.step_tensor(l0, c0)
    assert step._static_luma is None  # the first warm-up: the batch itself
    step.step_tensor(l1, c1)
    assert warmed[1] is step._static_luma  # the last: the graph's own input buffer
    torch.testing.assert_close(step._static_luma, l1)
    torch.testing.assert_close(step._static_chroma, c1)
