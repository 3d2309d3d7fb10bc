"""Features stage: value indicators as of the cut-off and holdout targets, on an Ibis engine."""

from tierlab.features.btyd import rfm_summary
from tierlab.features.context import Context
from tierlab.features.dictionary import Indicator, dictionary_frame
from tierlab.features.indicators import build_indicators

__all__ = ["Context", "Indicator", "build_indicators", "dictionary_frame", "rfm_summary"]
