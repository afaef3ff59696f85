"""Attack cells against the trusted verdicts, the withheld references (issue 16) and the
typeset feedback, for :mod:`autograder.make_attacks`: ``reach-withheld`` tries to reach a lab's
reference implementation from the grading kernel by a path other than ``import nnopt`` and
prints ``LEAKED:`` if it got one; the TeX attacks put their payload in the written answer
(:data:`WRITTEN`), which the feedback page typesets with MathJax when it is generated."""
from __future__ import annotations

CODE = {
    "reach-withheld": '''
import pickle, importlib.metadata
# 1. the reference classes through pickle's GLOBAL opcode (imports without an import statement)
for mod, name in [("nnopt.optimizers", "Momentum"), ("nnopt", "Adam"), ("nnopt.optimizer_base", "make_optimizer")]:
    try:
        obj = pickle.loads(f"c{mod}\\n{name}\\n.".encode())
        opt = obj("momentum", lr=0.1) if name == "make_optimizer" else obj(lr=0.1)
        leak(f"pickle reached a working {mod}.{name}: {opt!r}")
    except Exception:
        pass
# 2. the original source or bytecode anywhere the kernel can read: site-packages, the kit's
#    checkout beside lib/, __pycache__, the egg-info, the distribution's files, /tmp
import nnopt
pkg = os.path.dirname(nnopt.__file__)
roots = {sys.prefix, os.path.dirname(pkg), os.path.dirname(os.path.dirname(pkg)), "/tmp", os.getcwd()}
try:
    for f in importlib.metadata.files("nnopt") or []:
        roots.add(os.path.dirname(str(f.locate())))
    text = importlib.metadata.distribution("nnopt").read_text("direct_url.json") or ""
    roots.add(json.loads(text).get("url", "").replace("file://", "")) if text else None
except Exception:
    pass
for top in sorted(r for r in roots if r and os.path.isdir(r)):
    for folder, dirs, files in os.walk(top, onerror=lambda e: None):
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "node_modules")]
        for f in files:
            if not (f.endswith((".py", ".pyc", ".ipynb", ".pack", ".orig")) or "optimizers" in f):
                continue
            path = os.path.join(folder, f)
            try:
                data = open(path, "rb").read(4_000_000)
            except OSError:
                continue
            if b"class Momentum" in data and b"def _update" in data:
                leak("the original optimizers are readable at " + path)
# 3. the bind mounts' sources (where the originals live outside) are readable, not their content
for probe in ["/proc/self/root" + pkg + "/optimizers.py", "/proc/1/root" + pkg + "/optimizers.py"]:
    try:
        if b"def _update" in open(probe, "rb").read():
            leak("original through " + probe)
    except OSError:
        pass
''',
}

#: Written answers (markdown) of the attacks on the feedback's typesetting.
WRITTEN = {
    # MathJax links, styles, classes, ids, HTML data attributes: nothing may become live
    "tex-in-feedback": (r"Answer $\href{javascript:document.title='PWNED-href'}{click}$ "
                        r"$\href{data:text/html,<script>document.title='PWNED-data'</script>}{d}$ "
                        r"$\style{background-image:url(http://127.0.0.1:9/PWNED-css)}{x}$ $\class{jp-Dialog}{y}$ "
                        r"$\cssId{main}{z}$ $\unicode[some-font]{x1F600}$ $\require{html}\data{onclick=alert(1)}{q}$"),
    # 3000-deep superscripts and roots: typesetting must end (or fail for this student only)
    "tex-bomb": "My answer: $" + "x^{" * 3000 + "y" + "}" * 3000 + "$ and $$" + "\\sqrt{" * 3000 + "1" + "}" * 3000 + "$$",
    # 50,000 small formulas (~600 KB): typesetting them all would hold the grader ~2 minutes per page
    "math-flood": "My answer: " + " ".join(f"$x_{{{i}}}^2$" for i in range(50_000)),
}
CODE.update({name: "pass  # the attack is the written answer\n" for name in WRITTEN})
