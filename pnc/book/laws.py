"""The closed forms the book derives and asserts, each written once as a sympy expression.

A chapter checks its own derivation against the expression here (``sp.simplify(derived - KAPPA.expr) == 0``); the
numerical functions of :mod:`pnc.theory` are tested against :meth:`Formula.numpy`; and the continuous explorers of the
site (:mod:`pnc.book.live`) run JavaScript generated from the same expression by sympy's code printer
(:meth:`Formula.javascript`), never written by hand. So the formula a reader moves a slider over is the formula the
book proves.

The symbols carry the assumptions of chapter 4 (``positive=True``), so an expression derived there with
``sp.symbols("K n L l alpha varepsilon", positive=True)`` is the same object as the one here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

__all__ = ["COMPRESSION", "DISCRIMINATION", "FORMULAS", "IMBALANCE", "KAPPA", "MIXTURE_COMPRESSION", "PERTURBATION",
           "SAXE", "Formula", "mutate_constant", "symbols"]

_JS_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

# The symbols of chapter 4 (names as the chapter spells them: the same name and assumptions give the same symbol).
K, n, L, l, alpha, eps = sp.symbols("K n L l alpha varepsilon", positive=True)
max_E = sp.Symbol("max_E", real=True)
# chapter 2 (Gaussian mixture): dimension, class separation, within-class spread
m, zeta, omega = sp.symbols("m zeta omega", positive=True)
# chapter 9 (Saxe's two-layer dynamics): time, target singular value, initial strength, time constant
t, sigma, u_0, vartheta = sp.symbols("t sigma u_0 vartheta", positive=True)
# chapter 5 (the law under perturbation): Tr(J E) of the class Gram deviation, the leak beta_0, the tilt of the layer
# scales (xi_j from xi (1 - tilt) at the first layer to xi (1 + tilt) at the classifier)
tau = sp.Symbol("tau", real=True)
beta_0 = sp.Symbol("beta_0", nonnegative=True)
tilt = sp.Symbol("tilt", real=True)
kappa_symbol = sp.Symbol("kappa", positive=True)
KAPPA_EXPR = eps**2 * (alpha**2 / n) ** (1 / L)


def symbols() -> dict[str, sp.Symbol]:
    """The symbols of the laws, by name (``"varepsilon"``, ``"alpha"``, ``"n"``, ``"L"``, ``"K"``, ``"l"``,
    ``"max_E"``)."""
    return {str(s): s for s in (K, n, L, l, alpha, eps, max_E, m, zeta, omega, t, sigma, u_0, vartheta, tau, beta_0,
                                tilt)}


@dataclass(frozen=True)
class Formula:
    """One closed form: a name (a JavaScript identifier), the sympy expression and the order of its arguments.

    ``tex_names`` overrides how a symbol is typeset (e.g. ``max_E`` as ``\\max E``); ``lhs`` is the TeX of the
    quantity it gives (``\\kappa``).
    """

    name: str
    expr: sp.Expr
    args: tuple[sp.Symbol, ...]
    lhs: str
    tex_names: Mapping[sp.Symbol, str] = field(default_factory=dict)
    shown: sp.Expr | None = None
    """What the page typesets, when not ``expr`` itself (``C_l`` in terms of ``kappa``); must equal ``expr`` once
    ``kappa`` is substituted (checked)."""
    where: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    """Symbols of the typeset form that stand for an expression (``f_l``), typeset after it and substituted in the
    check of ``shown``."""
    order: str | None = None
    """sympy's term order for the typeset form (``"none"``: the order the expression was written in, as the chapter
    writes it, rather than sympy's canonical order)."""

    def __post_init__(self) -> None:
        if not _JS_IDENTIFIER.match(self.name):
            raise ValueError(f"formula name {self.name!r} is not a JavaScript identifier")
        free = self.expr.free_symbols
        if not free <= set(self.args):
            raise ValueError(f"{self.name}: symbols {sorted(map(str, free - set(self.args)))} are not arguments")
        for s in self.args:
            if not _JS_IDENTIFIER.match(str(s)):
                raise ValueError(f"{self.name}: argument {s} is not a JavaScript identifier")
        if self.shown is not None and sp.simplify(
                self.shown.subs(dict(self.where)).subs(kappa_symbol, KAPPA_EXPR) - self.expr) != 0:
            raise ValueError(f"{self.name}: the typeset form {self.shown} is not the expression {self.expr}")

    @property
    def arg_names(self) -> tuple[str, ...]:
        """The argument names, in order (the parameters of the generated JavaScript function)."""
        return tuple(str(s) for s in self.args)

    def javascript(self) -> str:
        """The expression as a JavaScript function expression, printed by sympy's ``jscode`` (``Math.*`` calls)."""
        try:
            body = sp.jscode(self.expr, strict=True)
        except NotImplementedError as err:  # sympy's PrintMethodNotImplementedError
            raise ValueError(f"{self.name}: sympy cannot print {self.expr} as JavaScript: {err}") from err
        return f"function ({', '.join(self.arg_names)}) {{ return {body}; }}"

    def numpy(self) -> Callable[..., np.ndarray]:
        """The expression as a float64 numpy function of :attr:`args` (``sympy.lambdify``)."""
        return sp.lambdify(self.args, self.expr, "numpy")

    def latex_lines(self) -> list[str]:
        """``lhs = expression`` in TeX, then one ``symbol = expression`` per :attr:`where` entry (the page shows each
        on its own line, so that none is wider than a phone)."""
        names = {s: str(sp.latex(s)) for s in self.args} | dict(self.tex_names)
        body = sp.latex(self.shown if self.shown is not None else self.expr, symbol_names=names, order=self.order)
        return [f"{self.lhs} = {body}"] + [f"{sp.latex(s, symbol_names=names)} = "
                                           f"{sp.latex(e, symbol_names=names, order=self.order)}"
                                           for s, e in self.where.items()]

    def latex(self) -> str:
        """:meth:`latex_lines` on one line."""
        return r",\quad ".join(self.latex_lines())

    def with_expr(self, expr: sp.Expr) -> Formula:
        """The same formula (name, arguments) with another expression (tests: a mutated constant)."""
        return Formula(self.name, expr, self.args, self.lhs, self.tex_names)  # shown: the expression itself


KAPPA = Formula("kappa", KAPPA_EXPR, (eps, alpha, n, L), r"\kappa")
"""Per-layer compression ``kappa = eps^2 (alpha^2/n)^(1/L)`` (chapter 4, theorem "Geometric compression")."""

COMPRESSION = Formula("compression", K * (n - 1) / (K - 1) * KAPPA.expr**l, (eps, alpha, n, L, K, l), "C_l",
                      shown=K * (n - 1) / (K - 1) * kappa_symbol**l)
"""``C_l = K (n - 1)/(K - 1) kappa^l``, the idealised compression of layer ``l`` (chapter 4)."""

DISCRIMINATION = Formula("discrimination", 1 - (1 - l / L) * max_E, (l, L, max_E), "D_l",
                         tex_names={max_E: r"\max E"}, order="none",
                         shown=sp.Add(1, sp.Mul(-1, sp.Add(1, -l / L, evaluate=False), max_E, evaluate=False),
                                      evaluate=False))
"""First-order ``D_l = 1 - (1 - l/L) max E`` (chapter 4, proposition on discrimination)."""

MIXTURE_COMPRESSION = Formula("mixture_compression",
                              K * (n - 1) * omega**2 * m / ((K - 1) * (n * zeta**2 + omega**2 * m)),
                              (omega, zeta, n, K, m), r"\bar C")
"""``E Tr Sigma_W / E Tr Sigma_B = K (n - 1) omega^2 m / ((K - 1)(n zeta^2 + omega^2 m))`` of an isotropic Gaussian
mixture (chapter 2)."""

_growth = sp.exp(2 * sigma * t / vartheta)
SAXE = Formula("saxe_mode", sigma * _growth / (_growth - 1 + sigma / u_0), (t, sigma, u_0, vartheta), "u(t)")
"""Saxe's mode strength ``u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u_0)``, solving ``tau u' = 2u(s - u)``
(chapter 9)."""


def _written(*terms: sp.Expr) -> sp.Expr:
    """A sum kept in the order the chapter writes it (typeset with ``order="none"``)."""
    return sp.Add(*terms, evaluate=False)


def _product(*factors: sp.Expr) -> sp.Expr:
    """A product kept as written."""
    return sp.Mul(*factors, evaluate=False)


def _power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    return sp.Pow(base, exponent, evaluate=False)


PERTURBATION = Formula(
    "perturbation_ratio",
    KAPPA_EXPR * (1 + tau / ((K - 1) * L) + (1 - KAPPA_EXPR) * KAPPA_EXPR ** (l - 1) * beta_0),
    (eps, alpha, n, L, K, tau, beta_0, l), r"\frac{C_l}{C_{l-1}}", tex_names={tau: r"\operatorname{Tr}(JE)"},
    order="none",
    shown=_product(kappa_symbol, _written(1, _product(tau, _power(_product(_written(K, -1), L), -1)),
                                          _product(_written(1, -kappa_symbol), _power(kappa_symbol, _written(l, -1)),
                                                   beta_0))))
"""First-order ratio on perturbed data, ``C_l/C_{l-1} = kappa (1 + Tr(JE)/((K-1)L) + (1 - kappa) kappa^(l-1)
beta_0)`` for ``1 <= l <= L-1`` (chapter 5, proposition "First-order law", which indexes the same ratio
``C_{l+1}/C_l`` by ``l``)."""

_f_l, _mean_f2 = sp.Symbol("f_l", positive=True), sp.Symbol(r"\overline{f^2}", positive=True)
IMBALANCE = Formula(
    "imbalance_ratio",
    KAPPA_EXPR * (1 + tilt * (2 * (l - 1) / (L - 1) - 1)) ** 2
    * (1 - KAPPA_EXPR * ((1 + tilt * (2 * (l - 1) / (L - 1) - 1)) ** 2 - (1 + tilt**2 * (L + 1) / (3 * (L - 1))))),
    (eps, alpha, n, L, tilt, l), r"\frac{C_l}{C_{l-1}}", tex_names={tilt: "t"}, order="none",
    shown=_product(kappa_symbol, _f_l**2, _written(1, _product(-1, kappa_symbol, _written(_f_l**2, -_mean_f2)))),
    where={_f_l: _written(1, _product(tilt, _written(_product(2, _written(l, -1), _power(_written(L, -1), -1)), -1))),
           _mean_f2: _written(1, _product(tilt**2, _written(L, 1), _power(_product(3, _written(L, -1)), -1)))})
"""First-order ratio of imbalanced layers whose initial scales ``xi_j = xi (1 + tilt (2 (j-1)/(L-1) - 1))`` are
tilted (chapter 5, proposition "Imbalanced layers" with ``g_j = xi_{j+1}^2 - xi_j^2`` and ``eps_l = xi_l``): the
proposition's sum is ``sum_j g_j (1[j<l] - (L-j)/L) = xi_l^2 - mean_j xi_j^2``, so
``C_l/C_{l-1} = kappa f_l^2 (1 - kappa (f_l^2 - mean f^2))`` with ``f_l = xi_l / xi`` and
``mean f^2 = 1 + tilt^2 (L+1)/(3(L-1))``, for ``1 <= l <= L-1``, ``L >= 2``."""

FORMULAS: dict[str, Formula] = {f.name: f for f in (KAPPA, COMPRESSION, DISCRIMINATION, MIXTURE_COMPRESSION, SAXE,
                                                    PERTURBATION, IMBALANCE)}
"""Every formula the site computes, by name."""


def mutate_constant(expr: sp.Expr) -> sp.Expr:
    """``expr`` with its first numeric constant (sympy's traversal order; every occurrence of that number) changed
    by 1, for tests: a comparison that cannot tell the two apart checks nothing."""
    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.Number) and node not in (sp.S.NegativeOne,):
            changed = expr.xreplace({node: node + 1})
            if changed != expr:
                return changed
    raise ValueError(f"{expr} has no constant to change")
