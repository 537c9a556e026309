"""ArviZ, imported in this one place without the notice ArviZ 0.23 prints at import.

ArviZ 0.23 announces its 1.x refactor with a ``FutureWarning`` at import, once a day, to every user of
bayesvae; it says nothing about their run. The notice starts with a newline, so the filter's pattern
allows leading whitespace (a pattern matches from the message's start). Both modules that call ArviZ
take it from here: :mod:`bayesvae.analysis.arviz_io` (every ArviZ call of the analysis) and
:mod:`.psis` (the evidence's k̂, in the layer below analysis). tests/test_suite_setup.py imports them on a
fresh cache with the warning turned into an error.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
    import arviz as az

__all__ = ["az"]
