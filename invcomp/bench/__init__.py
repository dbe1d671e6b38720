"""Measurements: the rate-distortion sweep against classic codecs (`rd`), the speed bench
(`speed`), one setting beside WebP (`evaluate`) and the mask ablation (`ablate`). Results are
returned as data and written as JSON, Markdown and PNG under results/.

May import anything below `invcomp.cli` (it measures the codec through `invcomp.codec`)."""
