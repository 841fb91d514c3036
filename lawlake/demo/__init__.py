"""The simulated agencies: a deterministic, seeded generator of the justice agencies' source systems.

``generate(out_dir, scale=1, seed=7)`` writes the police database, the
procuratorate's CSV exports, the courts' JSON Lines dumps and the custody
workbooks described in docs/sources.md, with defects injected at known rates
and the ground truth in ``_truth/``.
"""

from lawlake.demo.generator import generate

__all__ = ["generate"]
