"""Lab 3, Part B2: the returned ``W, b`` must be what the compiled Theano step trained.

Numbers cannot tell a softmax trained by Theano from one trained by an inline numpy Adam, and
a ``theano.function(..., updates=adam_updates(...))`` that is compiled but never called, or
whose shared variables are overwritten afterwards, proves nothing. So the grader follows the
data through ``train_softmax_theano``'s source (:mod:`ast`, outside the kernel, never run) and
accepts only this shape (names free, statements at the function's top level):

* ``W = theano.shared(np.zeros(...), name=...)`` -- each parameter created once, from zeros;
* ``step = theano.function(inputs, outputs, updates=adam_updates(cost, [W, b], lr=lr))`` --
  the one ``adam_updates`` call gets the cost, the list of those shared variables and the
  function's own ``lr``, nothing else; every ``theano.function`` in the function is of this
  kind (no ``givens``, ``mode``...) and ``step`` is only ever called;
* ``step(...)`` called inside a ``for``/``while`` loop;
* ``return W.get_value(), b.get_value()`` as the last statement and the only ``return``
  (or names bound once to those calls and used nowhere else).

What flows *into* the step is pinned too (else a cost ``T.sum(W * G)``, ``G`` an extra input fed
from numpy, steers even an honest Theano Adam onto numpy's values): the step's inputs are exactly
``[X, y]``, made once by ``T.dmatrix(...)``-like constructors, its output at most the cost; it is
only called as ``step(X_b, y_b)`` (``.astype`` allowed) inside ``for X_b, y_b in minibatches(
data.train.X, data.train.y, batch_size, seed=rng)``, ``rng = np.random.default_rng(seed)`` (as
the grader's reference draws them); ``X_b, y_b`` are used nowhere else, ``data`` only there and
for sizes; the cost is computed, through names bound once, from ``X, y, W, b``, ``T.*`` and
numbers only. That is enough without pinning the formula: the function never sees a value of
the data (only the step does), so no numpy result reaches the step, whose updates are Adam on a
cost of ``(X, y, W, b)`` alone over the true minibatches. Matching the grader's Adam on the
softmax cross-entropy to 1e-6 then needs the same gradients at every visited point: that cost,
computed by Theano. ``adam_updates`` cannot read the data while the step is built (no file
readers, :mod:`.sourcecheck`; it gets only symbols and zeros).
"""
from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator

#: Attributes that read or write a shared variable's storage, or compile without the rules above.
STORAGE_ATTRIBUTES = frozenset({
    "set_value", "container", "storage", "value", "zero", "default_update", "tag", "get_test_value",
    "construction_observers", "append_construction_observer", "In", "Out", "Param", "FunctionMaker",
    "function_dump", "pfunc", "orig_function", "sharedvar"})
#: Keywords that share memory or swap variables, refused in any call.
FORBIDDEN_KEYWORDS = frozenset({"borrow", "return_internal_type", "givens", "like"})
#: Keywords ``theano.function`` may get (``updates`` is required).
FUNCTION_KEYWORDS = frozenset({"inputs", "outputs", "updates", "allow_input_downcast", "on_unused_input", "name"})
#: Names the function must leave alone (``lr`` is its parameter).
FIXED = ("np", "numpy", "T", "theano", "adam_updates", "minibatches")
RETURN = "train_softmax_theano must return W.get_value(), b.get_value() of the shared variables trained by " \
         "the compiled function"
NAME = "train_softmax_theano"
#: Constructors the step's inputs are made with: ``X`` a matrix, ``y`` a vector (``T.<name>(...)``).
MATRICES = frozenset({"matrix", "dmatrix", "fmatrix"})
VECTORS = frozenset({"vector", "dvector", "fvector", "ivector", "lvector", "bvector", "wvector"})
MINIBATCHES = "minibatches(data.train.X, data.train.y, batch_size, seed=rng)"
FEED = f"{NAME} must call the compiled step as step(X_b, y_b) inside for X_b, y_b in {MINIBATCHES}"
COST = f"the cost {NAME} gives adam_updates may only be computed from X, y, W, b, T.* and numbers"


def _bindings(fn: ast.FunctionDef) -> Counter[str]:
    """How many times each name is bound in ``fn``: parameters, assignments, loop targets, ``del``."""
    count: Counter[str] = Counter(a.arg for a in fn.args.args + fn.args.kwonlyargs + fn.args.posonlyargs)
    count.update(a.arg for a in (fn.args.vararg, fn.args.kwarg) if a is not None)
    count.update(n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)))
    return count


def _top_assignments(fn: ast.FunctionDef) -> dict[str, ast.expr]:
    """``name -> value`` for the top-level ``name = value`` and ``a, b = x, y`` statements of ``fn``."""
    found: dict[str, ast.expr] = {}
    for stmt in fn.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target, value = stmt.targets[0], stmt.value
        if isinstance(target, ast.Name):
            found[target.id] = value
        elif (isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts)
              and all(isinstance(t, ast.Name) for t in target.elts)):
            found.update((t.id, v) for t, v in zip(target.elts, value.elts))
    return found


def _loads(fn: ast.FunctionDef, name: str) -> list[ast.Name]:
    return [n for n in ast.walk(fn) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def _parents(fn: ast.FunctionDef) -> dict[int, ast.AST]:
    return {id(child): node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}


def _is_call(node: ast.AST, root: str | tuple[str, ...], attr: str) -> bool:
    """``root.attr(...)`` (``root`` a name or one of several)."""
    roots = (root,) if isinstance(root, str) else root
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == attr
            and isinstance(node.func.value, ast.Name) and node.func.value.id in roots)


def _is_zeros(node: ast.AST) -> bool:
    """``np.zeros(...)``, ``np.zeros_like(...)``, optionally ``.astype(...)``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "astype":
        node = node.func.value
    return _is_call(node, ("np", "numpy"), "zeros") or _is_call(node, ("np", "numpy"), "zeros_like")


def _forbidden(fn: ast.FunctionDef) -> Iterator[str]:
    """Constructs through which something else than the compiled step could write ``W, b``."""
    for node in ast.walk(fn):
        line = getattr(node, "lineno", "?")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) and node is not fn:
            yield f"{NAME} defines a function inside itself (line {line}): write the training in its own body"
        elif isinstance(node, (ast.Try, ast.Match, ast.Yield, ast.YieldFrom, ast.Await)):
            yield f"{NAME} contains a {type(node).__name__.lower()} (line {line}): not allowed in this answer"
        elif isinstance(node, ast.Attribute):
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                yield f"{NAME} assigns the attribute .{node.attr} (line {line}): not allowed in this answer"
            if node.attr in STORAGE_ATTRIBUTES or node.attr.startswith("_"):
                yield (f"{NAME} uses .{node.attr} (line {line}): only the compiled function may change "
                       f"the shared variables")
        elif isinstance(node, ast.keyword) and node.arg in FORBIDDEN_KEYWORDS:
            yield f"{NAME} passes {node.arg}= (line {node.value.lineno}): not allowed in this answer"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get_value" \
                and (node.args or node.keywords):
            yield f"{NAME} calls get_value with arguments (line {line}): use get_value() alone"


class _Flow:
    """The facts the rule is checked on: bindings, top-level assignments, parents."""

    def __init__(self, fn: ast.FunctionDef) -> None:
        self.fn, self.bound, self.assigned, self.parent = fn, _bindings(fn), _top_assignments(fn), _parents(fn)
        self.data = fn.args.args[0].arg if fn.args.args else "data"

    def once(self, name: str) -> ast.expr | None:
        """The value of ``name`` if it is bound exactly once, by a top-level assignment."""
        return self.assigned.get(name) if self.bound[name] == 1 else None

    def only_as(self, name: str, allowed: ast.AST) -> bool:
        """Every load of ``name`` is the node ``allowed`` (or inside it)."""
        inside = {id(n) for n in ast.walk(allowed)}
        return all(id(n) in inside for n in _loads(self.fn, name))

    def owner(self, node: ast.AST) -> ast.AST | None:
        """The function or lambda ``node`` belongs to."""
        while (node := self.parent.get(id(node))) is not None:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return node
        return None

    def in_loop(self, node: ast.AST, minibatches: bool = False) -> ast.For | ast.While | None:
        """The innermost loop (``for ... in minibatches(...)`` only, if ``minibatches``) whose body,
        not header or ``else``, holds ``node``."""
        child = node
        while (parent := self.parent.get(id(child))) is not None:
            if isinstance(parent, (ast.For, ast.While)) and any(child is s for s in parent.body) and (
                    not minibatches or isinstance(parent, ast.For) and isinstance(parent.iter, ast.Call)
                    and _is_name(parent.iter.func, "minibatches")):
                return parent
            child = parent
        return None


def _params(flow: _Flow, call: ast.Call) -> tuple[list[str], list[str]]:
    """The shared variables ``adam_updates(...)`` trains, and what is wrong with the call."""
    line, found = call.lineno, []
    args = dict(zip(("cost", "params", "lr"), call.args))
    for kw in call.keywords:
        args[kw.arg or "**"] = kw.value
    if set(args) - {"cost", "params", "lr"} or len(call.args) > 3 or any(isinstance(a, ast.Starred) for a in call.args):
        found.append(f"{NAME} must call adam_updates(cost, [W, b], lr=lr) with nothing else (line {line}): "
                     f"the other hyperparameters keep their defaults")
    lr = args.get("lr")
    if not (isinstance(lr, ast.Name) and lr.id == "lr") or flow.bound["lr"] != 1:
        found.append(f"{NAME} must pass its own parameter lr, unchanged, to adam_updates (line {line})")
    params = args.get("params")
    if isinstance(params, ast.Name) and (value := flow.once(params.id)) is not None \
            and flow.only_as(params.id, call):
        params = value
    if not isinstance(params, (ast.List, ast.Tuple)) or not all(isinstance(e, ast.Name) for e in params.elts):
        found.append(f"{NAME} must pass the list of its shared variables, [W, b], to adam_updates (line {line})")
        return [], found
    names = [e.id for e in params.elts]
    for name in names:
        value = flow.once(name)
        if not (_is_call(value, "theano", "shared") and len(value.args) <= 2
                and all(kw.arg in ("value", "name") for kw in value.keywords)
                and _is_zeros(value.args[0] if value.args else next(
                    (kw.value for kw in value.keywords if kw.arg == "value"), ast.Constant(None)))
                and all(isinstance(a, ast.Constant) for a in value.args[1:])):
            found.append(f"{NAME} must create {name} once, as theano.shared(np.zeros(...), name=...), at the top "
                         f"of the function and never rebind it ({name} is bound {flow.bound[name]} time(s))")
    if len(set(names)) != len(names):
        found.append(f"{NAME} passes the same shared variable twice to adam_updates (line {line})")
    return names, found


def _compiled(flow: _Flow, adam: ast.Call) -> Iterator[str]:
    """Every ``theano.function`` takes ``updates`` from the one ``adam_updates`` call, is bound
    to a name only ever called, and one of them is called inside a loop."""
    fn = flow.fn
    updates = {id(adam)}
    holder = flow.parent.get(id(adam))
    if isinstance(holder, ast.Assign) and isinstance(holder.targets[0], ast.Name) \
            and flow.once(name := holder.targets[0].id) is adam:
        loads = _loads(fn, name)
        updates |= {id(n) for n in loads}
        if not all(isinstance(k := flow.parent.get(id(n)), ast.keyword) and k.arg == "updates" for n in loads):
            yield f"{NAME} may only pass the result of adam_updates(...) as updates= (line {adam.lineno})"
    compiled = [n for n in ast.walk(fn) if isinstance(n, ast.Attribute) and n.attr == "function"]
    if not compiled:
        yield f"{NAME} must train with theano.function(..., updates=adam_updates(...))"
        return
    called_in_loop = False
    for attr in compiled:
        call, line = flow.parent.get(id(attr)), attr.lineno
        if not (isinstance(call, ast.Call) and call.func is attr and isinstance(attr.value, ast.Name)
                and attr.value.id == "theano"):
            yield f"{NAME} uses .function other than as theano.function(...) (line {line})"
            continue
        kws = {kw.arg: kw.value for kw in call.keywords}
        if set(kws) - FUNCTION_KEYWORDS or len(call.args) > 2 or any(isinstance(a, ast.Starred) for a in call.args):
            yield (f"{NAME} may pass theano.function only inputs, outputs, updates, allow_input_downcast, "
                   f"on_unused_input and name (line {line})")
        if id(kws.get("updates")) not in updates:
            yield (f"every theano.function in {NAME} must take its updates from the one adam_updates(...) call "
                   f"(line {line})")
        stmt = flow.parent.get(id(call))
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        if not (isinstance(target, ast.Name) and flow.once(target.id) is call):
            yield f"{NAME} must bind the compiled function to a name once, at its top level (line {line})"
            continue
        uses = _loads(fn, target.id)
        if not all(isinstance(c := flow.parent.get(id(u)), ast.Call) and c.func is u for u in uses):
            yield f"{NAME} may only call the compiled function {target.id} (line {line})"
        called_in_loop |= any(flow.in_loop(flow.parent[id(u)]) is not None for u in uses)
    if not called_in_loop:
        yield (f"{NAME} must call the function compiled with updates=adam_updates(...) inside its training "
               f"loop (for/while over the epochs and minibatches)")


def _returned(flow: _Flow, params: list[str]) -> Iterator[str]:
    """One ``return``, last, of ``P.get_value()`` for two distinct trained ``P`` (or names bound
    once to those calls and used only there)."""
    fn = flow.fn
    returns = [n for n in ast.walk(fn) if isinstance(n, ast.Return) and flow.owner(n) is fn]
    last = fn.body[-1]
    if len(returns) != 1 or returns[0] is not last:
        line = returns[0].lineno if returns else fn.lineno
        yield f"{RETURN}, in one return statement at the end of the function (line {line})"
        return
    value = last.value
    if not isinstance(value, (ast.Tuple, ast.List)) or len(value.elts) != 2:
        yield f"{RETURN} (line {last.lineno})"
        return
    sources = []
    for elt in value.elts:
        if isinstance(elt, ast.Name) and (bound := flow.once(elt.id)) is not None and flow.only_as(elt.id, last):
            elt = bound
        if (isinstance(elt, ast.Call) and isinstance(elt.func, ast.Attribute) and elt.func.attr == "get_value"
                and isinstance(elt.func.value, ast.Name) and elt.func.value.id in params):
            sources.append(elt.func.value.id)
    if len(set(sources)) != 2:
        yield f"{RETURN} (line {last.lineno})"


def _root(node: ast.AST, attrs: tuple[str, ...] = ()) -> tuple[ast.AST, list[str]]:
    """``a.b.c`` -> (``a``, ["b", "c"])."""
    return _root(node.value, (node.attr,) + attrs) if isinstance(node, ast.Attribute) else (node, list(attrs))


def _is_name(node: ast.AST | None, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_dtype(node: ast.AST) -> bool:
    """A dtype: ``"float64"`` or ``np.float64``."""
    root, attrs = _root(node)
    return isinstance(node, ast.Constant) or (len(attrs) == 1 and isinstance(root, ast.Name)
                                              and root.id in ("np", "numpy"))


def _batch_name(node: ast.AST) -> str | None:
    """``X_b`` or ``X_b.astype(dtype)`` -> ``"X_b"``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "astype" \
            and all(_is_dtype(a) for a in node.args + [k.value for k in node.keywords]):
        node = node.func.value
    return node.id if isinstance(node, ast.Name) else None


def _inputs(flow: _Flow, call: ast.Call, cost: ast.expr | None) -> tuple[list[str], list[str]]:
    """The compiled step's input names ``[X, y]`` and what is wrong with its inputs and outputs."""
    kws = {kw.arg: kw.value for kw in call.keywords}
    inputs = call.args[0] if call.args else kws.get("inputs")
    outputs = call.args[1] if len(call.args) > 1 else kws.get("outputs")
    found, line = [], call.lineno
    elts = inputs.elts if isinstance(inputs, (ast.List, ast.Tuple)) else []
    names = [e.id for e in elts if isinstance(e, ast.Name)]
    made = [flow.once(n) for n in names]
    if len(names) != 2 or len(elts) != 2 or names[0] == names[1] or not all(
            isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and _is_name(v.func.value, "T")
            and v.func.attr in kind and all(isinstance(a, ast.Constant) for a in v.args + [k.value for k in v.keywords])
            for v, kind in zip(made, (MATRICES, VECTORS))):
        found.append(f"{NAME} must compile the step with inputs [X, y] and nothing else, X = T.dmatrix(\"X\") and "
                     f"y = T.ivector(\"y\") (or another matrix and vector of T) created once (line {line})")
    if isinstance(outputs, (ast.List, ast.Tuple)) and len(outputs.elts) <= 1:
        outputs = outputs.elts[0] if outputs.elts else None
    if outputs is not None and not (isinstance(outputs, ast.Name) and _is_name(cost, outputs.id)):
        found.append(f"{NAME} may only output the cost from the compiled step (line {line})")
    return names, found


def _loops(flow: _Flow, data: str) -> Iterator[str]:
    """Every ``minibatches`` call is the header of ``for X_b, y_b in minibatches(data.train.X,
    data.train.y, batch_size, seed=rng)``, ``rng = np.random.default_rng(seed)``."""
    fn = flow.fn
    wanted = [_dump(f"{data}.train.X"), _dump(f"{data}.train.y"), _dump("batch_size")]
    for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call) and _is_name(n.func, "minibatches")):
        loop, line = flow.parent.get(id(call)), call.lineno
        args = call.args + [k.value for k in call.keywords if k.arg == "seed"]
        target = loop.target if isinstance(loop, ast.For) and loop.iter is call else None
        if not (isinstance(target, ast.Tuple) and len(target.elts) == 2
                and all(isinstance(t, ast.Name) for t in target.elts) and len(args) == 4
                and all(k.arg == "seed" for k in call.keywords) and [ast.dump(a) for a in args[:3]] == wanted
                and isinstance(args[3], ast.Name) and ast.dump(flow.once(args[3].id) or ast.Pass()) in RNGS
                and all(_minibatch_seed(flow, u) for u in _loads(fn, args[3].id))):
            yield f"{NAME} must loop for X_b, y_b in {MINIBATCHES} with rng = np.random.default_rng(seed) (line {line})"
    for name in (data, "batch_size", "seed"):
        if name not in {a.arg for a in fn.args.args} or flow.bound[name] != 1:
            yield f"{NAME} must keep its parameters data, batch_size and seed and never rebind them"


def _minibatch_seed(flow: _Flow, use: ast.Name) -> bool:
    """``use`` is the seed given to a ``minibatches`` call."""
    holder = flow.parent.get(id(use))
    call = flow.parent.get(id(holder)) if isinstance(holder, ast.keyword) else holder
    return isinstance(call, ast.Call) and _is_name(call.func, "minibatches") and (
        (isinstance(holder, ast.keyword) and holder.arg == "seed") or call.args[3:4] == [use])


def _fed(flow: _Flow, steps: list[str], data: str) -> Iterator[str]:
    """The compiled ``steps`` are only called with the targets of their minibatch loop; these
    and ``data`` are used nowhere else (``data`` for sizes)."""
    fn, allowed = flow.fn, set()
    for use in (u for step in steps for u in _loads(fn, step)):
        if not isinstance(call := flow.parent[id(use)], ast.Call):
            continue                                     # refused by _compiled
        loop = flow.in_loop(call, minibatches=True)
        names = [_batch_name(a) for a in call.args]
        if loop is None or call.keywords or not isinstance(loop.target, ast.Tuple) \
                or names != [getattr(t, "id", None) for t in loop.target.elts]:
            yield f"{FEED} (line {call.lineno})"
        allowed |= {id(n) for a in call.args for n in ast.walk(a)}
    for loop in (n for n in ast.walk(fn) if isinstance(n, ast.For) and isinstance(n.iter, ast.Call)
                 and _is_name(n.iter.func, "minibatches")):
        for t in (t for t in ast.walk(loop.target) if isinstance(t, ast.Name)):
            recast = [s for s in ast.walk(loop) if isinstance(s, ast.Assign) and len(s.targets) == 1
                      and _is_name(s.targets[0], t.id) and _batch_name(s.value) == t.id]
            extra = [u for u in _loads(fn, t.id) if id(u) not in allowed
                     and not any(id(u) in {id(n) for n in ast.walk(s.value)} for s in recast)]
            if extra or flow.bound[t.id] != 1 + len(recast):
                yield (f"{NAME} may only pass the minibatch {t.id} to the compiled step (line "
                       f"{(extra[0] if extra else loop).lineno}): its values must reach W, b only through Theano")
    for use in _loads(fn, data):
        node, attrs = use, [data]
        while isinstance(up := flow.parent.get(id(node)), ast.Attribute) and not _is_size(attrs):
            node, attrs = up, attrs + [up.attr]
        call = flow.parent.get(id(node))
        if not _is_size(attrs) and not (isinstance(call, ast.Call) and _is_name(call.func, "minibatches")):
            yield (f"{NAME} may only use {data} in {MINIBATCHES} and for sizes ({data}.n_classes, "
                   f"{data}.train.X.shape) (line {use.lineno})")


def _dump(source: str) -> str:
    return ast.dump(ast.parse(source, mode="eval").body)


RNGS = frozenset({_dump("np.random.default_rng(seed)"), _dump("numpy.random.default_rng(seed)")})


def _is_size(attrs: list[str]) -> bool:
    """``data.n_classes`` or ``data.<split>.<X|y>.shape`` (``attrs`` starts with the parameter)."""
    return attrs[1:] == ["n_classes"] or (len(attrs) == 4 and attrs[1] in ("train", "val", "test")
                                         and attrs[2] in ("X", "y") and attrs[3] == "shape")


def _cost(flow: _Flow, node: ast.AST, leaves: set[str], seen: set[str]) -> Iterator[str]:
    """What in ``node`` (the cost, followed through names bound once) is not ``X, y, W, b``
    (``leaves``), ``T.*``, a size of the data or a number."""
    line = getattr(node, "lineno", "?")
    if isinstance(node, ast.Name):
        if node.id in leaves or node.id in seen:
            return
        value = flow.once(node.id)
        if value is None or node.id in FIXED:
            yield f"{COST}, not {node.id} (line {line})"
            return
        seen.add(node.id)
        yield from _cost(flow, value, leaves, seen)
    elif isinstance(node, ast.Attribute):
        root, attrs = _root(node)
        if isinstance(root, ast.Name) and root.id == flow.data and _is_size([root.id] + attrs):
            return
        if isinstance(root, ast.Name) and root.id in FIXED:
            if not (root.id == "T" or (root.id == "theano" and attrs[:1] == ["tensor"])):
                yield f"{COST}, not {root.id}.{'.'.join(attrs)} (line {line})"
        else:
            yield from _cost(flow, root, leaves, seen)
    elif isinstance(node, (ast.Call, ast.BinOp, ast.UnaryOp, ast.Subscript, ast.Slice, ast.Tuple, ast.List,
                           ast.keyword)) or (isinstance(node, ast.Constant) and not isinstance(node.value, bytes)):
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.operator, ast.unaryop, ast.expr_context)):
                yield from _cost(flow, child, leaves, seen)
    elif node is not None:
        yield f"{COST}, not a {type(node).__name__} (line {line})"


def problems(fn: ast.FunctionDef) -> list[str]:
    """Why ``fn`` (a ``train_softmax_theano``) may return something else than what its compiled
    Adam step trained; [] if the data flow is the one described in the module docstring."""
    flow = _Flow(fn)
    found = list(_forbidden(fn))
    found += [f"{NAME} rebinds {name} (bound {flow.bound[name]} time(s)): leave it alone"
              for name in FIXED if flow.bound[name]]
    adams = [n for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id == "adam_updates"]
    if len(adams) != 1:
        found.append(f"{NAME} must train with theano.function(..., updates=adam_updates(...)), calling "
                     f"adam_updates once ({len(adams)} calls)")
        return found
    params, wrong = _params(flow, adams[0])
    found += wrong
    found += _compiled(flow, adams[0])
    found += _returned(flow, params)
    adam = adams[0]
    cost = next((k.value for k in adam.keywords if k.arg == "cost"), adam.args[0] if adam.args else None)
    inputs, steps = [], []
    for call in (flow.parent[id(a)] for a in ast.walk(fn) if isinstance(a, ast.Attribute) and a.attr == "function"
                 and _is_call(flow.parent.get(id(a)), "theano", "function")):
        names, wrong = _inputs(flow, call, cost)
        found += wrong
        inputs = inputs or names
        stmt = flow.parent.get(id(call))
        if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name) and flow.once(stmt.targets[0].id):
            steps.append(stmt.targets[0].id)
    found += _loops(flow, flow.data)
    found += _fed(flow, steps, flow.data)
    if cost is not None and (wrong := next(_cost(flow, cost, set(inputs) | set(params), set()), None)):
        found.append(wrong)
    return list(dict.fromkeys(found))
