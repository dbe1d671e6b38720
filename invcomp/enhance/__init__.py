"""Enhancement parts: what a file adds after its latent so that quality keeps rising with bytes
(docs/FORMAT.md, "Enhancement parts"). `residual` is the transform (colour, DCT, quantizer),
`parts` codes a part and searches its step for a byte budget or a quality target."""
