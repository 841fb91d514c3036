"""The simulated agencies: a deterministic, seeded generator of the justice agencies' source systems.

``generate(out_dir, scale=1, seed=7)`` writes the police database, the
procuratorate's CSV exports, the courts' JSON Lines dumps and the custody
workbooks described in docs/sources.md, with defects injected at known rates
and the ground truth in ``_truth/``.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lawlake.demo.generator import generate

__all__ = ["generate"]


def __getattr__(name: str):
    """``generate`` on first use: the demo API (lawlake.demo.api) is served without loading the generator's openpyxl."""
    if name == "generate":
        from lawlake.demo.generator import generate

        return generate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
