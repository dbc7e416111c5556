"""The book's studies, experiments and figures, built on the core library's public API.

One module per chapter study; the core (:mod:`pnc.data`, :mod:`pnc.models`, :mod:`pnc.train`, :mod:`pnc.features`,
:mod:`pnc.metrics`, :mod:`pnc.report`, :mod:`pnc.theory`, :mod:`pnc.fits`, ...) imports nothing from here.

- :mod:`pnc.book.measuring` (chapter 2): structured mixtures, metric summaries, separation fuzziness;
- :mod:`pnc.book.dln` (chapter 3): deep-linear-network training trajectories;
- :mod:`pnc.book.recipes` (chapter 4): the authors' recipe and its variations;
- :mod:`pnc.book.assumptions` (chapter 5): checks of the theory's assumptions and their failure modes;
- :mod:`pnc.book.experiments`, :mod:`pnc.book.runner` (chapters 1, 6, 7): the named real-data experiments, run
  with ``python -m pnc.book run NAME`` (needs the ``cli`` extra); :mod:`pnc.book.heldout` (chapter 6): the same
  layerwise table on training and held-out samples;
- :mod:`pnc.book.connections`, :mod:`pnc.book.dynamics` (chapter 8): neural collapse, separation fuzziness and
  gradient-flow dynamics; :mod:`pnc.book.ufm` (chapter 8): the unconstrained-features model and a deep linear
  version of it, trained by gradient descent;
- :mod:`pnc.book.widgets`: the kernel-free explorers; :mod:`pnc.book.figures`: every chapter's figures.
"""
