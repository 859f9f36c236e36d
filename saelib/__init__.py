"""saelib: the small library behind the SAE paper companion."""
from .sae import SAE, CheckpointError
from .sparsity import SPARSIFIERS, Sparsifier, make_sparsifier, register
from .train import TrainConfig, TrainResult, train_sae
from .utils import cache_dir, seed_everything

# Modules that register extra sparsifiers on import, so SAE.load finds them by name.
from . import pam  # noqa: E402,F401  (topk_abs)
from . import atm  # noqa: E402,F401  (atm)
from . import gradient_sae  # noqa: E402,F401  (gradient_topk)
from . import feature_choice  # noqa: E402,F401  (feature_choice)

__all__ = ["SAE", "CheckpointError", "SPARSIFIERS", "Sparsifier", "make_sparsifier", "register",
           "TrainConfig", "TrainResult", "train_sae", "cache_dir", "seed_everything"]
__version__ = "0.1.0"
