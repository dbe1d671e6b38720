"""The bytes on disk: the .icz file (`icz`), the .icza archive (`icza`), and what they share:
the arithmetic coder and its integer frequency tables (`arith`), LEB128 numbers (`varint`) and
fixed-width bit packing (`bitpack`).

Pure functions from values to bytes and back; no torch, no model, no image. Imports only
`invcomp.errors` and `invcomp.files` (the archive writer's atomic writes)."""
