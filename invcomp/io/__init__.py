"""Pixels in and out: image files through Pillow (`images`), data collections (.npz files and
folders: `datasets`, `collection`) and pictures listed for packing (`sources`).

No torch. May import `invcomp.errors`, `invcomp.files` and `invcomp.formats` (archive name rules)."""
