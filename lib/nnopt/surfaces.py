r"""2-D test surfaces: each with its value, gradient, Hessian and known minima.

They are the lecture's "challenges" in miniature:

================  ==========================================================  ===============
surface           :math:`f(x, y)`                                             shows
================  ==========================================================  ===============
``Quadratic``     :math:`\tfrac12 p^\top H p`, eigenvalues :math:`1, \kappa`  ill-conditioning
``Rosenbrock``    :math:`(a-x)^2 + b(y-x^2)^2`                                a curved valley
``Beale``         :math:`\sum_i (c_i - x + x y^i)^2`, c = 1.5, 2.25, 2.625     flat regions
``Saddle``        :math:`\tfrac12 x^2 - \tfrac12 y^2 + \tfrac14 y^4`           a saddle at 0
``Himmelblau``    :math:`(x^2+y-11)^2 + (x+y^2-7)^2`                          4 minima
``Cliff``         :math:`0.1(x-3)^2 + \tfrac12 y^2 + h\,\sigma(-s x)`          a cliff at x=0
``Plateau``       :math:`1 - \exp(-\|p\|^2 / 2w^2)`                           vanishing slope
================  ==========================================================  ===============

``value`` accepts a point of shape ``(2,)`` or a grid of shape ``(2, ...)`` (for contour
plots); ``grad`` returns shape ``(2,)`` and ``hessian`` ``(2, 2)`` for a point.
:func:`run` drives any :mod:`nnopt.optimizers` optimizer over a surface and returns the
:class:`Path` (stopping, not crashing, when it diverges).
"""
from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

from .clipping import ClipSpec, clipper
from .optimizer_base import NonFiniteGradient, Optimizer
from .trajectory import Trajectory, diverged
from .validation import check_choice, check_int, check_nonneg, check_number, check_positive, invalid

__all__ = ["Surface", "Quadratic", "Rosenbrock", "Beale", "Saddle", "Himmelblau", "Cliff",
           "Plateau", "SURFACES", "get", "Path", "run"]

Domain = tuple[tuple[float, float], tuple[float, float]]


def _point(p: Any, name: str = "x") -> np.ndarray:
    arr = np.asarray(p, dtype=float)
    if arr.ndim == 0 or arr.shape[0] != 2:
        raise invalid(f"{name} shape", arr.shape, "(2,) or (2, ...)")
    return arr


class Surface:
    """A 2-D function with derivatives. Subclasses implement ``_f``, ``_df``, ``_d2f``."""

    name: str = ""
    domain: Domain = ((-2.0, 2.0), (-2.0, 2.0))
    start: np.ndarray = np.array([-1.5, 1.5])
    minima: list[np.ndarray] = []
    saddles: list[np.ndarray] = []

    def value(self, p: Any) -> Union[float, np.ndarray]:
        x, y = _point(p)
        out = self._f(x, y)
        return float(out) if np.ndim(out) == 0 else out

    __call__ = value

    def grad(self, p: Any) -> np.ndarray:
        x, y = _point(p)
        return np.array(self._df(x, y), dtype=float)

    def hessian(self, p: Any) -> np.ndarray:
        x, y = _point(p)
        (fxx, fxy), (_, fyy) = self._d2f(x, y)
        return np.array([[fxx, fxy], [fxy, fyy]], dtype=float)

    def _f(self, x, y):
        raise NotImplementedError

    def _df(self, x, y):
        raise NotImplementedError

    def _d2f(self, x, y):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Quadratic(Surface):
    r""":math:`f(p) = \tfrac12 p^\top H p`, :math:`H = R_\varphi\, \mathrm{diag}(1, \kappa)\, R_\varphi^\top`.

    ``condition`` is :math:`\kappa = \lambda_{max}/\lambda_{min}`; ``angle`` (degrees)
    rotates the axes, so diagonal preconditioners (AdaGrad, RMSProp, Adam) lose their
    axis-aligned advantage. Gradient descent is stable iff ``lr < 2/kappa``.
    """

    name = "quadratic"
    domain = ((-2.0, 2.0), (-2.0, 2.0))

    def __init__(self, condition: float = 10.0, angle: float = 0.0):
        self.condition = check_number("condition", condition, 1.0)
        self.angle = check_number("angle (degrees)", angle)
        c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        rot = np.array([[c, -s], [s, c]])
        self.eigenvalues = np.array([1.0, self.condition])
        self.H = rot @ np.diag(self.eigenvalues) @ rot.T
        self.start = np.array([-1.8, 1.2])
        self.minima = [np.zeros(2)]

    def _f(self, x, y):
        H = self.H
        return 0.5 * (H[0, 0] * x * x + 2 * H[0, 1] * x * y + H[1, 1] * y * y)

    def _df(self, x, y):
        H = self.H
        return H[0, 0] * x + H[0, 1] * y, H[0, 1] * x + H[1, 1] * y

    def _d2f(self, x, y):
        H = self.H
        return (H[0, 0], H[0, 1]), (H[1, 0], H[1, 1])

    def __repr__(self):
        return f"Quadratic(condition={self.condition:g}, angle={self.angle:g})"


class Rosenbrock(Surface):
    r""":math:`f = (a - x)^2 + b (y - x^2)^2`; minimum :math:`(a, a^2)` in a curved valley."""

    name = "rosenbrock"
    domain = ((-2.0, 2.0), (-1.0, 3.0))

    def __init__(self, a: float = 1.0, b: float = 100.0):
        self.a, self.b = check_number("a", a), check_positive("b", b)
        self.start = np.array([-1.5, 2.0])
        self.minima = [np.array([self.a, self.a ** 2])]

    def _f(self, x, y):
        return (self.a - x) ** 2 + self.b * (y - x * x) ** 2

    def _df(self, x, y):
        return -2 * (self.a - x) - 4 * self.b * x * (y - x * x), 2 * self.b * (y - x * x)

    def _d2f(self, x, y):
        fxy = -4 * self.b * x
        return (2 - 4 * self.b * (y - 3 * x * x), fxy), (fxy, 2 * self.b)

    def __repr__(self):
        return f"Rosenbrock(a={self.a:g}, b={self.b:g})"


class Beale(Surface):
    r""":math:`f = \sum_{i=1}^3 (c_i - x + x y^i)^2`, :math:`c = (1.5, 2.25, 2.625)`;
    minimum :math:`(3, 0.5)`, flat ridges and steep corners."""

    name = "beale"
    domain = ((-4.5, 4.5), (-4.5, 4.5))
    start = np.array([1.0, 1.5])
    minima = [np.array([3.0, 0.5])]
    _c = (1.5, 2.25, 2.625)

    def _f(self, x, y):
        return sum((c - x + x * y ** i) ** 2 for i, c in enumerate(self._c, 1))

    def _df(self, x, y):
        terms = [(c - x + x * y ** i, i) for i, c in enumerate(self._c, 1)]
        fx = sum(2 * r * (y ** i - 1) for r, i in terms)
        fy = sum(2 * r * i * x * y ** (i - 1) for r, i in terms)
        return fx, fy

    def _d2f(self, x, y):
        fxx = fxy = fyy = 0.0
        for i, c in enumerate(self._c, 1):
            r = c - x + x * y ** i
            rx, ry = y ** i - 1, i * x * y ** (i - 1)
            rxy = i * y ** (i - 1)
            ryy = i * (i - 1) * x * y ** (i - 2) if i > 1 else 0.0
            fxx = fxx + 2 * rx * rx
            fxy = fxy + 2 * (rx * ry + r * rxy)
            fyy = fyy + 2 * (ry * ry + r * ryy)
        return (fxx, fxy), (fxy, fyy)


class Saddle(Surface):
    r""":math:`f = \tfrac12 x^2 - \tfrac12 y^2 + \tfrac14 y^4`.

    A saddle at the origin (Hessian eigenvalues 1 and -1) between two minima
    :math:`(0, \pm 1)` with :math:`f = -1/4`. Newton's method is attracted to the saddle;
    gradient descent started near :math:`y = 0` lingers there.
    """

    name = "saddle"
    domain = ((-2.0, 2.0), (-2.0, 2.0))
    start = np.array([-1.5, 0.01])
    minima = [np.array([0.0, 1.0]), np.array([0.0, -1.0])]
    saddles = [np.zeros(2)]

    def _f(self, x, y):
        return 0.5 * x * x - 0.5 * y * y + 0.25 * y ** 4

    def _df(self, x, y):
        return x, -y + y ** 3

    def _d2f(self, x, y):
        zero = 0.0 * x
        return (1.0 + zero, zero), (zero, -1.0 + 3 * y * y)


class Himmelblau(Surface):
    r""":math:`f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2`: four minima with :math:`f = 0` and
    a local maximum near :math:`(-0.27, -0.92)`; where you start decides where you end."""

    name = "himmelblau"
    domain = ((-5.0, 5.0), (-5.0, 5.0))
    start = np.array([-0.5, 0.5])
    minima = [np.array([3.0, 2.0]),
              np.array([-2.805118086952745, 3.131312518250573]),
              np.array([-3.779310253377747, -3.283185991286170]),
              np.array([3.584428340330492, -1.848126526964404])]

    def _f(self, x, y):
        return (x * x + y - 11) ** 2 + (x + y * y - 7) ** 2

    def _df(self, x, y):
        a, b = x * x + y - 11, x + y * y - 7
        return 4 * x * a + 2 * b, 2 * a + 4 * y * b

    def _d2f(self, x, y):
        a, b = x * x + y - 11, x + y * y - 7
        fxy = 4 * x + 4 * y
        return (12 * x * x + 4 * y - 42, fxy), (fxy, 4 * x + 12 * y * y - 26)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))   # overflow-free logistic function


class Cliff(Surface):
    r""":math:`f = 0.1 (x-3)^2 + \tfrac12 y^2 + h\, \sigma(-s x)`: the region :math:`x < 0`
    is raised by ``height`` :math:`h` and drops at :math:`x = 0` over a width :math:`\sim 1/s`.

    At the edge the gradient is about :math:`h s / 4` (50 with the defaults), so one
    plain gradient step flings the point far past the minimum near :math:`(3, 0)` --
    the lecture's cliff. Clipping the gradient (by norm) keeps the step bounded.
    """

    name = "cliff"
    domain = ((-4.0, 8.0), (-3.0, 3.0))

    def __init__(self, height: float = 10.0, sharpness: float = 20.0):
        self.height, self.sharpness = check_nonneg("height", height), check_positive("sharpness", sharpness)
        self.start = np.array([-3.0, 1.5])
        self.minima = [self._refine(np.array([3.0, 0.0]))]

    def _refine(self, p: np.ndarray) -> np.ndarray:
        """Newton iterations from a good guess: the exact minimum near (3, 0)."""
        for _ in range(20):
            p = p - np.linalg.solve(self.hessian(p), self.grad(p))
        return p

    def _f(self, x, y):
        return 0.1 * (x - 3) ** 2 + 0.5 * y * y + self.height * _sigmoid(-self.sharpness * x)

    def _df(self, x, y):
        s = _sigmoid(-self.sharpness * x)
        return 0.2 * (x - 3) - self.height * self.sharpness * s * (1 - s), y

    def _d2f(self, x, y):
        s = _sigmoid(-self.sharpness * x)
        fxx = 0.2 + self.height * self.sharpness ** 2 * s * (1 - s) * (1 - 2 * s)
        zero = 0.0 * x
        return (fxx, zero), (zero, 1.0 + zero)

    def __repr__(self):
        return f"Cliff(height={self.height:g}, sharpness={self.sharpness:g})"


class Plateau(Surface):
    r""":math:`f = 1 - \exp(-\|p\|^2 / 2 w^2)`: a narrow well in a vast flat plateau.

    Far from the well the gradient is exponentially small: plain SGD barely moves, while
    methods that normalise the step (RMSProp, Adam) cross the plateau.
    """

    name = "plateau"
    domain = ((-3.0, 3.0), (-3.0, 3.0))
    start = np.array([2.2, 1.6])
    minima = [np.zeros(2)]

    def __init__(self, width: float = 0.7):
        self.width = check_positive("width", width)

    def _f(self, x, y):
        return 1.0 - np.exp(-(x * x + y * y) / (2 * self.width ** 2))

    def _df(self, x, y):
        e = np.exp(-(x * x + y * y) / (2 * self.width ** 2)) / self.width ** 2
        return x * e, y * e

    def _d2f(self, x, y):
        w2 = self.width ** 2
        e = np.exp(-(x * x + y * y) / (2 * w2)) / w2
        fxy = -x * y * e / w2
        return (e * (1 - x * x / w2), fxy), (fxy, e * (1 - y * y / w2))

    def __repr__(self):
        return f"Plateau(width={self.width:g})"


SURFACES: dict[str, type[Surface]] = {
    cls.name: cls for cls in (Quadratic, Rosenbrock, Beale, Saddle, Himmelblau, Cliff, Plateau)
}


def get(name: str, **kwargs: Any) -> Surface:
    """A surface by name, e.g. ``get("quadratic", condition=50)``."""
    return SURFACES[check_choice("surface", name, sorted(SURFACES))](**kwargs)


# --------------------------------------------------------------------------- running
#: An optimizer's trajectory on a surface (the same class as the second-order methods' results).
Path = Trajectory


def run(surface: Surface, optimizer: Optimizer, x0: Any = None, steps: int = 100,
        clip: ClipSpec = None) -> Trajectory:
    """Run ``optimizer`` for ``steps`` steps on ``surface`` from ``x0`` (default: its start).

    Returns the :class:`~nnopt.trajectory.Trajectory` (``xy``, ``values``, ``grad_norms`` of
    the unclipped gradient, ``method`` = the optimizer's name). A run that diverges (the rule of
    :func:`nnopt.trajectory.diverged`, or a non-finite gradient) stops there. The optimizer is
    used as given (not reset), so pass a fresh one for a fresh run. For Nesterov-type
    optimizers the stored point is the look-ahead point (see :class:`nnopt.optimizers.Nesterov`).
    """
    check_int("steps", steps)
    p = _point(surface.start if x0 is None else x0, "x0").astype(float).copy()
    if p.shape != (2,):
        raise invalid("x0 shape", p.shape, "(2,)")
    clip_step = clipper(clip)
    xy, values = [p.copy()], [surface.value(p)]
    diverged_at = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for k in range(1, steps + 1):
            grads = [surface.grad(p)]
            try:
                optimizer.step([p], clip_step(grads)[0] if clip_step else grads)
            except NonFiniteGradient:
                diverged_at = k
                break
            value = surface.value(p)
            if diverged(p, value):
                diverged_at = k
                break
            xy.append(p.copy())
            values.append(value)
        norms = [float(np.hypot(*surface.grad(q))) for q in xy]
    return Trajectory(np.array(xy), np.array(values), np.array(norms), diverged_at, optimizer.name,
                      n_evals=len(xy) + (diverged_at is not None))
