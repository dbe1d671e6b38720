"""Kept pixels: which pixels a file keeps (`schemes`), how their values are quantized, packed
and blended into G(z) (`assistant`), the .icz extension block that carries them (`extension`),
the masked losses (`losses`) and masked fits (`inpaint`).

May import `invcomp.inversion`, `invcomp.models`, `invcomp.metrics`, `invcomp.formats`,
`invcomp.io` and `invcomp.errors`."""
