import pytest
import torch

from invcomp.inversion.quantize import dequantize, fake_quantize, quantize, step_size


@pytest.mark.parametrize("bits", [2, 3, 4, 8, 12])
def test_error_at_most_half_a_step(bits):
    z = torch.linspace(-3, 3, 10001)
    codes = quantize(z, bits, 3.0)
    assert codes.min() >= 0 and codes.max() <= 2**bits - 1
    err = (dequantize(codes, bits, 3.0) - z).abs().max().item()
    assert err <= step_size(bits, 3.0) / 2 + 1e-5


def test_out_of_range_clamps_and_endpoints_exact():
    codes = quantize(torch.tensor([-10.0, -3.0, 3.0, 10.0]), 4, 3.0)
    assert codes.tolist() == [0, 0, 15, 15]
    assert dequantize(codes, 4, 3.0).tolist() == pytest.approx([-3, -3, 3, 3])


def test_fake_quantize_straight_through():
    z = torch.tensor([0.1, 1.23, -2.2], requires_grad=True)
    out = fake_quantize(z, 3, 3.0)
    assert torch.allclose(out, dequantize(quantize(z, 3, 3.0), 3, 3.0))
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones(3))
