"""The book's studies, experiments and figures, built on the core library's public API.

One module per chapter study; the core (:mod:`pnc.data`, :mod:`pnc.models`, :mod:`pnc.train`, :mod:`pnc.features`,
:mod:`pnc.metrics`, :mod:`pnc.report`, :mod:`pnc.theory`, :mod:`pnc.fits`, ...) imports nothing from here.

- :mod:`pnc.book.measuring` (chapter 2): structured mixtures, metric summaries, separation fuzziness;
- :mod:`pnc.book.dln` (chapter 3): deep-linear-network training trajectories;
- :mod:`pnc.book.recipes` (chapter 4): the authors' recipe and its variations;
- :mod:`pnc.book.perturbation` (chapter 5): the perturbation and imbalance laws and their sweeps;
- :mod:`pnc.book.assumptions` (chapter 6): checks of the theory's assumptions and their failure modes;
- :mod:`pnc.book.experiments`, :mod:`pnc.book.runner`, :mod:`pnc.book.context` (chapters 1, 7, 8): the named
  real-data experiments, run with ``python -m pnc.book run NAME`` (:mod:`pnc.book.cli`; needs the ``cli`` extra);
  :mod:`pnc.book.heldout` (chapter 7): the same layerwise table on training and held-out samples;
- :mod:`pnc.book.connections`, :mod:`pnc.book.dynamics`, :mod:`pnc.book.ufm` (chapter 9): neural collapse,
  separation fuzziness, gradient-flow dynamics and the unconstrained-features model;
- :mod:`pnc.book.ledger` (chapter 11): the reproduction ledger, every row computed;
- :mod:`pnc.book.laws` and :mod:`pnc.book.live`: each closed form once as a sympy expression, and the continuous
  explorers whose page code is generated from it; :mod:`pnc.book.widgets`: the explorers of trained networks;
  :mod:`pnc.book.figures`: every chapter's figures; :mod:`pnc.book.tables`: the chapters' tables;
- :mod:`pnc.book.grading`: the autograder of the coding exercises (``python -m pnc.book grade``);
- build tools: :mod:`pnc.book.export` (chapters to notebooks for plain Jupyter and Colab) and :mod:`pnc.book.publish`
  (the ``notebooks`` branch that Colab and Binder open).
"""
