"""CLV stage: buy-till-you-die models of purchase counts and spend."""

from tierlab.clv.btyd import BetaGeoModel, GammaGammaModel

__all__ = ["BetaGeoModel", "GammaGammaModel"]
