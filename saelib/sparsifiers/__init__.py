"""The sparsifiers, one file per family. Importing this package registers every one of them, so
``SAE.load`` and ``make_sparsifier`` find each by the name stored in ``cfg.json``:

=================  ======================  ==========================================
name               class                   file
=================  ======================  ==========================================
relu               ReLU                    relu.py
topk               TopK                    topk.py
topk_abs           TopKAbs                 topk.py
jumprelu           JumpReLU                jumprelu.py
batchtopk          BatchTopK               batchtopk.py
mutual_choice      MutualChoice            feature_choice.py
feature_choice     FeatureChoice           feature_choice.py
gradient_topk      GradientTopK            gradient_topk.py
atm                ATM                     atm.py
=================  ======================  ==========================================

The interface every sparsifier shares is in ``base.py``.
"""
from .base import SPARSIFIERS, BatchRule, Sparsifier, make_sparsifier, register
from .relu import ReLU
from .topk import TopK, TopKAbs
from .jumprelu import JumpReLU
from .batchtopk import BatchTopK, flat_topk_indices
from .feature_choice import FeatureChoice, MutualChoice
from .gradient_topk import GradientTopK, with_gradients
from .atm import ATM

__all__ = ["SPARSIFIERS", "BatchRule", "Sparsifier", "make_sparsifier", "register", "ReLU", "TopK", "TopKAbs",
           "JumpReLU", "BatchTopK", "flat_topk_indices", "FeatureChoice", "MutualChoice", "GradientTopK",
           "with_gradients", "ATM"]
