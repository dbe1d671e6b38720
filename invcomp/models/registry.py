"""The table of pretrained generators: names, versions, weight files, sha256s, geometry, domains.

Pure data (no torch), so that commands that only read headers (`info`, `ls`, `models`) stay fast;
loading and checking the weights is `invcomp.models.zoo`.

Versions: a file names its generator by the weights' sha256 (.icz: its first 3 bytes, the
fingerprint; .icza: all 32), never by name or version. A retrained generator is a new entry in
MODELS with the same name and the next version (new weight files, e.g. `flowers64.v2.pt`); the
old entry stays, so every file written with it still decodes. A plain name (`--model flowers64`)
means its newest version, `flowers64@1` a given one (see docs/FORMAT.md, "Models and versions")."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    file: str  # generator weights, in the package folder invcomp/pretrained
    resolution: int
    latent_dim: int
    sha256: str  # of the generator file; its first 3 bytes are the .icz fingerprint
    encoder_file: str | None = None
    encoder_sha256: str | None = None
    default_bits: int = 4
    # the inversion's default latent prior weight (higher: smaller files, a little lower quality) and
    # its schedule per bit depth for the quantization-aware tail (InversionConfig.prior_weights),
    # chosen per version on held-out training images (its model card says how)
    default_prior_weight: float = 0.02
    prior_weights: tuple[tuple[int, float], ...] = ()
    domain: str = ""
    test_data: str = ""  # the held-out test file of its domain (in the data folder)
    version: int = 1  # 1, 2, ... per name: a retrained generator is the next version

    @property
    def fingerprint(self) -> bytes:
        return bytes.fromhex(self.sha256)[:3]

    @property
    def key(self) -> str:
        """`name@version`: names exactly this version (for --model and `load_model`)."""
        return f"{self.name}@{self.version}"


# Every version ever published, oldest first within a name. Never remove an entry: files name it.
MODELS: tuple[ModelInfo, ...] = tuple(
    [
        ModelInfo("airplanes32", "airplanes32.pt", 32, 96, "d7a577045bad3f3b21a52d2964d51234899734036c77bae702a38898e79fc11b",
                  "airplanes32.encoder.pt", "455af44a27fdd7e22e54373e11757d1a2306a521faa949568b4a37131232f183",
                  default_bits=3, domain="CIFAR-10 airplanes (pretrained/airplanes32.md)",
                  test_data="cifar10_airplane_test.npz"),
        ModelInfo("airplanes32", "airplanes32.v2.pt", 32, 96, "be38cbc8e02eb87ba055df0e65d080c22b42a91726fac80d7e9c4debbbc0e8e0",
                  "airplanes32.v2.encoder.pt", "6a2dc97f22444cf58522e244d48fa0d347b73277af4a5dec35595ea12d43842e",
                  default_bits=3, default_prior_weight=0.035, prior_weights=((4, 0.01), (5, 0.0), (6, 0.0)),
                  domain="CIFAR-10 airplanes (pretrained/airplanes32.md, version 2)",
                  test_data="cifar10_airplane_test.npz", version=2),
        ModelInfo("automobiles32", "automobiles32.pt", 32, 96, "09b0978e4a431ae5b7335daec612636dca6505da8f577471ae331856b0b17681",
                  "automobiles32.encoder.pt", "7604a107ba9f17d2ae173247f8b5093114a9a42a26eceda29227d63a2846d604",
                  default_bits=3, domain="CIFAR-10 automobiles (pretrained/automobiles32.md)",
                  test_data="cifar10_automobile_test.npz"),
        ModelInfo("automobiles32", "automobiles32.v2.pt", 32, 96, "a509b415cbf7f157347791bc73bb20c50f313b455d72d1c7325f85dcf8144cf9",
                  "automobiles32.v2.encoder.pt", "f128eeee5808d6570397639edec5af10ed3ac033daa5018fffda01cf8ab7c153",
                  default_bits=3, default_prior_weight=0.035, prior_weights=((4, 0.01), (5, 0.0), (6, 0.0)),
                  domain="CIFAR-10 automobiles (pretrained/automobiles32.md, version 2)",
                  test_data="cifar10_automobile_test.npz", version=2),
        ModelInfo("automobiles32", "automobiles32.v3.pt", 32, 96, "732d18078e21d2bba7531e89b68bd0ec40d7796031403b26c9b3e2cc60a534a6",
                  "automobiles32.v3.encoder.pt", "902727de69454ca34f5d0c554873fc3c9b1f6af278240f3a6e55704bd9b0fe6f",
                  default_bits=3, default_prior_weight=0.055, prior_weights=((4, 0.01), (5, 0.0), (6, 0.0)),
                  domain="CIFAR-10 automobiles (pretrained/automobiles32.md, version 3)",
                  test_data="cifar10_automobile_test.npz", version=3),
        ModelInfo("flowers32", "flowers32.pt", 32, 128, "16c41f1444a1035b7501444cac14b2fce7ff8c0a2421f2c2a584cc8b591808d6",
                  "flowers32.encoder.pt", "b952c5b07ba42e4d3e30f2894480c96b7b251f9d8c64e3aa730d935e6008a90c",
                  default_bits=3, domain="Oxford flowers, 32x32 (pretrained/flowers32.md)",
                  test_data="flowers_32_test.npz"),
        ModelInfo("flowers32", "flowers32.v2.pt", 32, 128, "eb733cec1d70dc2e1773694fbbc4bf7e496096ed04e2504b0bda7017a48ac2da",
                  "flowers32.v2.encoder.pt", "bf3d8de81eb2d3ffd9c86623ead88f76eb87ad96a615a7217a1f55f47172db0d",
                  default_bits=3, prior_weights=((4, 0.0), (5, 0.0), (6, 0.0)),
                  domain="Oxford flowers, 32x32 (pretrained/flowers32.md, version 2)",
                  test_data="flowers_32_test.npz", version=2),
        ModelInfo("flowers32", "flowers32.v3.pt", 32, 128, "ef5f6b1384408e39f911f57b4a9f8d70677a192e7be609a9bd2f1b1e2bc05e37",
                  "flowers32.v3.encoder.pt", "e737ea5fa9d755011624045a18befc103beacc3f9aa1054f34cd39299a6e6260",
                  default_bits=3, default_prior_weight=0.03, prior_weights=((4, 0.0), (5, 0.0), (6, 0.0)),
                  domain="Oxford flowers, 32x32 (pretrained/flowers32.md, version 3)",
                  test_data="flowers_32_test.npz", version=3),
        ModelInfo("flowers64", "flowers64.pt", 64, 256, "b489e5127b79761c6da6de638290ed9bd435df1ea2b19733bceacc6e0e5899e6",
                  "flowers64.encoder.pt", "1d180ad3b381926836531b99e28cadb57497803a88f01f64d99f93eec154bc59",
                  default_bits=3, domain="Oxford flowers, 64x64 (pretrained/flowers64.md)",
                  test_data="flowers_64_test.npz"),
        ModelInfo("flowers64", "flowers64.v2.pt", 64, 256, "18ee47ca9b09abded98542eb9b0a4ba4d468a4e423fd9dca6ecb8b88d0db6dd7",
                  "flowers64.v2.encoder.pt", "7a0abaa4922338cac12e24a1a9fa569abf22eba024a718b5e2dee308518058ae",
                  default_bits=3, domain="Oxford flowers, 64x64 (pretrained/flowers64.md, version 2)",
                  test_data="flowers_64_test.npz", version=2),
        ModelInfo("flowers64", "flowers64.v3.pt", 64, 256, "4d719a26da2250f3d55ff7818c9a5b530590c996381b7e0d52d43a1b9f2945b4",
                  "flowers64.v3.encoder.pt", "2261bc2dc90f169a1d3f4bdff03ae35767ce35ae91d0af7d685d6690b6e435ad",
                  default_bits=3, default_prior_weight=0.035, prior_weights=((4, 0.01), (5, 0.0), (6, 0.0)),
                  domain="Oxford flowers, 64x64 (pretrained/flowers64.md, version 3)",
                  test_data="flowers_64_test.npz", version=3),
    ]
)


def _newest(models: tuple[ModelInfo, ...]) -> dict[str, ModelInfo]:
    out: dict[str, ModelInfo] = {}
    for m in models:
        if m.name not in out or m.version > out[m.name].version:
            out[m.name] = m
    return out


# The newest version of each name: what a plain name means (`--model flowers64`), what `fit` and
# `pack` write with. Older versions (OLDER) are kept for decoding the files written with them.
REGISTRY: dict[str, ModelInfo] = _newest(MODELS)
OLDER: tuple[ModelInfo, ...] = tuple(m for m in MODELS if REGISTRY[m.name] is not m)


def all_versions() -> list[ModelInfo]:
    """Every installed version: the newest of each name, then the older ones."""
    return [*REGISTRY.values(), *OLDER]


def find(name: str) -> ModelInfo | None:
    """A plain name (its newest version) or `name@version`; None if not installed."""
    base, at, version = name.partition("@")
    if not at:
        return REGISTRY.get(name)
    return next((m for m in all_versions() if m.name == base and str(m.version) == version), None)


def not_installed(what: str) -> str:
    """`what` (a generator named by fingerprint or sha256 prefix) + the one-line advice for a file
    whose generator is not installed: a later release may have it, or the user may hold its weights."""
    return (f"{what}, which this invcomp does not have (`invcomp models` lists those it has): it may be a "
            "model or version published with a later invcomp release (upgrade invcomp), or pass that "
            "generator's weights with --model PATH.pt")


def model_for_fingerprint(fingerprint: bytes) -> ModelInfo | None:
    """The installed version (any, not only the newest) whose weights' sha256 starts so."""
    for info in all_versions():
        if info.fingerprint == fingerprint:
            return info
    return None


def model_for_sha256(sha256: str) -> ModelInfo | None:
    for info in all_versions():
        if info.sha256 == sha256:
            return info
    return None
