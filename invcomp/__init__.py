"""invcomp: generative image compression by GAN latent inversion."""
from .codec import Codec, compress, compress_batch, decompress, decompress_batch
from .errors import InvcompError
from .invert import InversionConfig, invert
from .registry import REGISTRY, Model, load_model

__all__ = ["Codec", "compress", "compress_batch", "decompress", "decompress_batch", "InvcompError",
           "InversionConfig", "invert", "REGISTRY", "Model", "load_model"]
__version__ = "0.1.0"
