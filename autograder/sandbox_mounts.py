"""What the sandbox sees: the bubblewrap options of one job (no processes started here).

The file system inside is built from nothing (bubblewrap's empty root) and holds only::

    /usr (+ /bin /lib /lib64 /sbin links)   the system, read-only
    /etc/{ld.so.cache, fonts, ...}          the few files programs need, read-only;
    /etc/passwd, /etc/group                 written for the job (user "student", uid 1000)
    <python>, <venv>, <nnopt package>       the kit's environment at its own paths, read-only
    /sandbox/runner                         sandbox_exec.py + output_limits.py, read-only
    /sandbox/in                             the job folder (lab files, job.json), read-only;
                                            the notebook itself comes on stdin
    /sandbox, /tmp (two tmpfs, each of      work/ (cwd) and home/ ($HOME); the private /tmp
      Sandbox.disk_limit bytes)
    /proc, /dev                             the job's own (its PID namespace, minimal devices)

Nothing else exists: no /home, /root (except the Python installation itself when it lives
there), /srv, /run, /var; not the course (autograder/, solutions/, the gradebook,
submissions). :func:`check_secrets` refuses a mount that would contain any of those.

**Withheld files** (``autograder.withheld.mounts``, issue 16, or ``c.Sandbox.hidden_paths`` /
``c.Sandbox.replaced_paths``): a hidden path is made *absent*, not empty -- its parent folder is
replaced by an empty read-only tmpfs into which every other entry of the parent is bound
again -- and a replacement file is bound read-only over the original.

Two shapes of command, chosen by :func:`command`:

* grading as an unprivileged user: one ``bwrap`` with a new user namespace (the user is
  uid 1000 "student" inside), PID, network, IPC, UTS and cgroup namespaces, and
  ``--disable-userns`` (no nested user namespaces);
* grading as root: an outer ``bwrap`` (as root, so it may bind folders only root can read,
  e.g. a pyenv Python under ``/root``) builds the same file system and namespaces, then
  ``setpriv`` drops to the unprivileged ``Sandbox.user`` with no capabilities, and an inner
  ``bwrap --unshare-user --disable-userns`` makes the user namespace. The submission never
  runs as uid 0: ``RLIMIT_NPROC`` is not enforced for uid 0, and a kernel bug would land it
  in an account that owns nothing.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

#: Inside the sandbox.
ROOT = Path("/sandbox")
RUNNER = ROOT / "runner"
JOB_IN = ROOT / "in"
WORK, HOME = ROOT / "work", ROOT / "home"
UID = GID = 1000
#: The system folders, bound read-only (or recreated as the links they are on merged-/usr).
SYSTEM = ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin")
#: The files of /etc that programs in the kit need (dynamic linker, fonts, time zone, MIME).
ETC = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
       "/etc/fonts", "/etc/localtime", "/etc/mime.types", "/etc/nsswitch.conf", "/etc/ssl/certs")
NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
              "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "sandbox")
USERNS = ("--unshare-user", "--disable-userns", "--uid", str(UID), "--gid", str(GID))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_secrets(sources: Iterable[Path], secrets: Iterable[Path]) -> None:
    """Raise ValueError if a mount source is, contains or lies inside a secret path."""
    secrets = [Path(os.path.realpath(s)) for s in secrets]
    for source in sources:
        real = Path(os.path.realpath(source))
        for secret in secrets:
            if _within(secret, real) or _within(real, secret):
                raise ValueError(f"Invalid sandbox mount: {source} (expected no path that holds or "
                                 f"lies inside {secret}, which students must not see)")


def _parents(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def _dirs_for(dest: Path, made: set[Path]) -> list[str]:
    """``--dir`` for every missing ancestor of ``dest``, mode 0755 (bwrap would make them
    0700 when run as root, and the unprivileged user could not reach what is below)."""
    args = []
    for parent in _parents(dest):
        if parent not in made:
            made.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def system_args() -> list[str]:
    """The read-only system: /usr, its merged-/usr links, the needed files of /etc."""
    args = []
    for path in SYSTEM:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in ETC:
        args += ["--ro-bind-try", path, path]
    return args


def environment_args(paths: Sequence[Path], made: set[Path]) -> list[str]:
    """Read-only binds of the Python environment at their own paths (outside /usr)."""
    args = []
    for path in paths:
        if _within(Path(path), Path("/usr")):
            continue
        args += _dirs_for(Path(path), made) + ["--ro-bind", str(path), str(path)]
    return args


def hide_args(hidden: Iterable[Path], visible: Sequence[Path], made: set[Path]) -> list[str]:
    """Make every path in ``hidden`` absent (see the module docstring)."""
    hidden = sorted({Path(p) for p in hidden})
    by_parent: dict[Path, set[str]] = {}
    for path in hidden:
        if any(_within(path.parent, other) for other in hidden if other != path):
            continue                      # inside a hidden folder: gone already
        if not any(_within(path, v) for v in visible) or not os.path.lexists(path):
            continue                      # never mounted, or not there: absent already
        by_parent.setdefault(path.parent, set()).add(path.name)
    args = []
    for parent, names in sorted(by_parent.items()):
        args += ["--perms", "0755", "--tmpfs", str(parent)]
        for entry in sorted(os.scandir(parent), key=lambda e: e.name):
            if entry.name in names:
                continue
            target = str(parent / entry.name)
            if entry.is_symlink():
                args += ["--symlink", os.readlink(target), target]
            else:
                args += ["--ro-bind", target, target]
        args += ["--remount-ro", str(parent)]
        made.add(parent)
    return args


def replace_args(replaced: Mapping[Path, Path]) -> list[str]:
    """Bind each replacement (file or folder) read-only over its target."""
    args = []
    for target, source in sorted(replaced.items()):
        args += ["--ro-bind", str(source), str(target)]
    return args


def validate_withheld(hidden: Iterable, replaced: Mapping) -> tuple[list[Path], dict[Path, Path]]:
    """Check and normalise the withheld lists: absolute paths; each replacement is of the same
    kind as its target (a file over a file, a folder over a folder)."""
    hide, replace = [], {}
    for path in hidden:
        if not Path(path).is_absolute():
            raise ValueError(f"Invalid hidden path: {path!r} (expected an absolute path)")
        hide.append(Path(path))
    for target, source in dict(replaced).items():
        if not Path(target).is_absolute() or not os.path.exists(target):
            raise ValueError(f"Invalid replaced path: {target!r} (expected an existing absolute path)")
        kind = "folder" if os.path.isdir(target) else "file"
        if not (os.path.isdir(source) if kind == "folder" else os.path.isfile(source)):
            raise ValueError(f"Invalid replacement for {target}: {source!r} (expected an existing {kind})")
        replace[Path(target)] = Path(source)
    return hide, replace


def filesystem_args(*, environment: Sequence[Path], runner_files: Sequence[Path], job_in: Path,
                    etc_files: Mapping[str, Path], disk_bytes: int, hidden: Iterable[Path] = (),
                    replaced: Mapping[Path, Path] = {}, extra: Sequence[Path] = ()) -> list[str]:
    """Everything the job sees, in bwrap's order of operations."""
    made: set[Path] = set()
    args = system_args()
    for name, source in sorted(etc_files.items()):
        args += ["--ro-bind", str(source), f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(disk_bytes), "--tmpfs", "/tmp"]
    made.add(Path("/tmp"))
    args += environment_args([*environment, *extra], made)     # after /tmp: a Python may live there
    args += ["--perms", "1777", "--size", str(disk_bytes), "--tmpfs", str(ROOT),
             "--perms", "0755", "--dir", str(RUNNER), "--perms", "0755", "--dir", str(JOB_IN)]
    for path in runner_files:
        args += ["--ro-bind", str(path), str(RUNNER / path.name)]
    args += ["--ro-bind", str(job_in), str(JOB_IN)]
    visible = [Path(p) for p in SYSTEM if os.path.isdir(p) and not os.path.islink(p)]
    args += hide_args(hidden, [*visible, *environment, *extra], made)
    args += replace_args(replaced)
    return args


def env_args(env: Mapping[str, str]) -> list[str]:
    args = ["--clearenv"]
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    return args


def command(*, bwrap: str, filesystem: Sequence[str], env: Mapping[str, str], argv: Sequence[str],
            drop_to: tuple[int, int] | None) -> list[tuple[list[str], list[str]]]:
    """Each bwrap of a job as ``(options, command)``: bwrap reads the options from a file
    (``--args FD``, see ``Sandbox.launcher``), so that no command line in the sandbox shows
    the grader's paths. One bwrap (``drop_to=None``), or as root the outer one, whose command
    (``setpriv ... bwrap``) starts the inner one."""
    inside = [*env_args(env), "--chdir", str(ROOT)]
    if drop_to is None:
        return [([*USERNS, *NAMESPACES, *filesystem, *inside], list(argv))]
    uid, gid = drop_to
    return [([*NAMESPACES, "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", *filesystem],
             ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--inh-caps=-all",
              "--bounding-set=-all", "--", bwrap]),
            ([*USERNS, "--die-with-parent", "--dev-bind", "/", "/", *inside], list(argv))]
