"""What the notebooks use around the science: set-up (seed, style, the shared harvest, timers),
presets, the claims table, the README scoreboard, the house plot style and top-activating examples.

One import line for a notebook's set-up cell::

    from saelib.companion import ClaimsTable, colors, log_axis, save_figure, setup, shared_activations, timer
"""
from .claims import ClaimsTable
from .notebook import setup, shared_activations, timer
from .plots import colors, log_axis, save_figure

__all__ = ["ClaimsTable", "colors", "log_axis", "save_figure", "setup", "shared_activations", "timer"]
