"""Measurements of the codec; results are returned as data and written as JSON, Markdown and PNG under results/.

- `rd`: the rate-distortion sweep against the classic codecs, with its per-series cache;
  `classic` (the Pillow codecs), `msssim` (SSIM / MS-SSIM), `analysis` (crossings, targets,
  Markdown) and `plots` (figures) serve it;
- `speed`: image-steps/s and FLOPs of inversion against the device's matmul ceiling;
- `evaluate`: one setting beside WebP q0;
- `ablate`: mask schemes x densities x losses beside more latent bits and matched-bytes WebP/JPEG;
- `data` (the test images a bench runs on) and `progress` (how a bench reports progress) are shared.

May import anything below `invcomp.cli` (it measures the codec through `invcomp.codec`)."""
