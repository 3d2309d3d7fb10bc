"""CLV stage: buy-till-you-die models of purchase counts and spend, and CLV from them."""

from tierlab.clv.bgnbd import BetaGeoModel
from tierlab.clv.gammagamma import GammaGammaModel
from tierlab.clv.paretonbd import ParetoNBDModel
from tierlab.clv.value import customer_lifetime_value

__all__ = ["BetaGeoModel", "GammaGammaModel", "ParetoNBDModel", "customer_lifetime_value"]
