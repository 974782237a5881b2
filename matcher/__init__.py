"""Pure buyer-seller matching: `from matcher import Matcher, Rules, Match, RulesError`.

No I/O and no event loop here; scikit-learn conventions (parameters stored unchanged, fitted
state in attributes ending in `_`).
"""

from .core import Match, Matcher
from .rules import SIGNALS, Rules, RulesError

__all__ = ["SIGNALS", "Match", "Matcher", "Rules", "RulesError"]
