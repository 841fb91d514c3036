"""Open data as a statistics office publishes it: linked tables, disclosure control, DCAT-AP 3 metadata, a portal.

- :mod:`lawlake.opendata.linked` — the cells of all open count tables as one system of
  linear relations (margins, totals, nested charges, the funnel's order);
- :mod:`lawlake.opendata.suppress` — primary and LP-based complementary suppression over
  that system (HiGHS through ``highspy``);
- :mod:`lawlake.opendata.attack` — an independent disclosure attack: a linear program
  (scipy's HiGHS) that bounds every suppressed cell from what was published; the gate check;
- :mod:`lawlake.opendata.dcat` — DCAT-AP 3 JSON-LD (rdflib) and its SHACL validation (pyshacl);
- :mod:`lawlake.opendata.portal` — the self-contained portal folder (``lawlake open publish``).
"""
