"""The generators: networks (`nets`), weight files (`weights`), the table of pretrained models
(`registry`, pure data), loading and checking them (`zoo`), the device (`device`) and training
(`train`).

May import `invcomp.errors`, `invcomp.files`, `invcomp.io` and `invcomp.metrics`."""
