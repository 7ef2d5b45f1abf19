"""Pictures for people: contact sheets and loss curves."""

from semia.viz.plots import plot_losses
from semia.viz.sheet import make_sheet

__all__ = ["make_sheet", "plot_losses"]
