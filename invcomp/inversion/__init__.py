"""The search for z: quantization of latents (`quantize`), inversion by gradient descent
(`invert`), codes back to pixels (`render`) and the operating points and per-image targets of
rate control (`rate`).

May import `invcomp.models`, `invcomp.metrics`, `invcomp.formats` (the format's bit limits)
and `invcomp.errors`."""
