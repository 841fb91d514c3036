"""lawlake: a rule-of-law data lake — gather, normalize, integrate, share, open."""

__version__ = "0.1.0"
