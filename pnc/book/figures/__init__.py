"""Figure builders for the book's chapters and their explorers, one module per topic.

Each function returns a matplotlib ``Figure`` in the house style (:func:`pnc.plotting.use_style`), so a notebook
calls one function per figure and :func:`pnc.book.widgets.explorer` can render it once per slider setting.
"""
