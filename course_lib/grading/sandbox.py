"""Run a submission's kernel in a bubblewrap sandbox (Debian package ``bubblewrap``).

The kernel sees a read-only system (``/usr``, ``/etc``, the Python installation and
``course_lib``), an empty ``/dev`` and ``/proc``, and two writable folders, both tmpfs of
a fixed size counted in the memory budget (:class:`Limits`): a private ``/tmp`` and the
work folder, which holds the assignment's released data files read-only (never the
submitted extra files, so a submitted ``numpy.py`` cannot shadow numpy). It does not see the course
folder, the gradebook, ``solutions/`` or other submissions; it has no network (every
namespace is unshared; the kernel talks to the grader over Unix sockets in a private
folder); it runs as an unprivileged user (a uid of its own when the grader is root) with limits
on address space, CPU time, processes and file size (:func:`guard.apply_limits`), and it
dies with the grader.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Dict, Unicode

import course_lib


def sandbox_uid() -> int:
    """A user id of its own for each grading process's sandbox (when run as root).

    Process limits (RLIMIT_NPROC) count per user: with one shared user, one student's
    fork bomb would stop a neighbour's kernel from starting threads. A worker grades one
    submission at a time, so its pid makes the uid unique among running sandboxes.
    """
    return 200_000 + os.getpid()


FIX = (
    "Install bubblewrap (`apt-get install -y bubblewrap`, done by `make test`) and allow "
    "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or pass "
    "--unsafe-no-sandbox to grade trusted submissions without isolation."
)


@dataclass(frozen=True)
class Limits:
    """Per-submission limits (the kernel and everything it starts)."""

    memory_bytes: int = 4 << 30  # all memory: address space plus the two folders below
    cpu_seconds: int = 300
    processes: int = 64
    file_bytes: int = 64 << 20
    folder_bytes: int = 128 << 20  # each of /tmp and the work folder (tmpfs, i.e. memory)

    def address_space(self) -> int:
        """RLIMIT_AS: what is left of the memory budget after the two tmpfs folders.

        A tmpfs lives in memory the address-space limit does not see, so its size is
        counted here; torch's CPU import needs ~1.5 GiB of address space.
        """
        return self.memory_bytes - 2 * self.folder_bytes


class SandboxError(RuntimeError):
    """The sandbox cannot start on this machine (the message says why and what to do)."""


def _readonly_paths() -> list[str]:
    """What the kernel must read: the system, Python, installed packages, course_lib."""
    paths = ["/usr", "/etc", sys.prefix, sys.base_prefix, sys.exec_prefix]
    paths += [p for p in sys.path if p and Path(p).is_dir() and "site-packages" in p]
    paths.append(str(Path(course_lib.__file__).resolve().parent))
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if Path(link).is_dir() and not Path(link).is_symlink():
            paths.append(link)
    resolved = sorted({str(Path(p).resolve()) for p in paths if Path(p).exists()})
    # a path inside another bound path needs no bind of its own
    return [p for p in resolved if not any(p.startswith(q + "/") for q in resolved)]


def _parents(paths: list[str]) -> list[str]:
    """Every folder above the bound paths, shallowest first (made traversable)."""
    found = {str(a) for p in paths for a in Path(p).parents if str(a) not in ("/", "/tmp")}
    return sorted(found - set(paths), key=lambda a: (a.count("/"), a))


def bwrap_command(
    workdir: Path,
    sockets: Path,
    command: list[str],
    env: dict[str, str] | None = None,
    folder_bytes: int = Limits.folder_bytes,
) -> list[str]:
    """The command line that runs ``command`` in the sandbox, in ``workdir``, with ``env``.

    ``/tmp`` and ``workdir`` are tmpfs folders of ``folder_bytes`` each (the files staged
    in ``workdir`` on the host are bound into it read-only).
    """
    env = os.environ if env is None else env
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError("bubblewrap (`bwrap`) is not installed. " + FIX)
    root = os.geteuid() == 0
    # As root: no user namespace (root's files, e.g. a Python under /root, stay readable
    # while mounting) and the command drops to a uid of its own inside, so the process
    # limits (RLIMIT_NPROC is not enforced for root) apply. Otherwise: an unprivileged user
    # namespace, as the invoking user.
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    namespaces += ["--unshare-cgroup-try"] if root else ["--unshare-user"]
    cmd = [bwrap, *namespaces, "--die-with-parent", "--new-session", "--clearenv"]
    # A private /tmp first: what is bound below stays visible even when it lives in /tmp.
    size = ["--size", str(folder_bytes)]
    cmd += ["--perms", "1777", *size, "--tmpfs", "/tmp"]
    readonly = _readonly_paths()
    for folder in _parents([*readonly, str(workdir), str(sockets)]):
        cmd += ["--perms", "0755", "--dir", folder]  # bwrap copies e.g. /root's 0700
    for path in readonly:
        cmd += ["--ro-bind", path, path]
    for link in ("/bin", "/lib", "/lib64", "/sbin"):
        if Path(link).is_symlink():
            cmd += ["--symlink", os.readlink(link), link]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--perms", "1777", *size, "--tmpfs", str(workdir)]
    for path in sorted(p for p in workdir.rglob("*") if p.is_file()):
        cmd += ["--ro-bind", str(path), str(path)]
    cmd += ["--bind", str(sockets), str(sockets)]
    cmd += ["--chdir", str(workdir), "--setenv", "HOME", "/tmp", "--setenv", "PATH", "/usr/bin"]
    # Large allocations come from mmap and go back when freed, so a peak shows in RSS
    # (course_lib.grading.checks.peak_memory).
    cmd += ["--setenv", "MALLOC_MMAP_THRESHOLD_", "65536"]
    # the kernel imports the grader's own course_lib (only that folder is bound there), not
    # whatever an editable install points to (a git worktree grades with its own code)
    cmd += ["--setenv", "PYTHONPATH", str(Path(course_lib.__file__).resolve().parent.parent)]
    for name in ("LANG", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "COURSE_GRADE_LIMITS"):
        if name in env:
            cmd += ["--setenv", name, env[name]]
    if root:
        uid = sandbox_uid()
        cmd += ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        cmd += ["--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
    return cmd + ["--", *command]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, sandbox_uid(), sandbox_uid())


def check_sandbox() -> None:
    """Start a trivial sandbox once; raise SandboxError saying why it cannot work."""
    with tempfile.TemporaryDirectory(prefix="course-grade-check-") as tmp:
        work, socks = Path(tmp, "work"), Path(tmp, "sockets")
        for folder in (work, socks):
            folder.mkdir()
            _own(folder)
        probe = f"import course_lib, pathlib; pathlib.Path({str(socks / 'ok')!r}).write_text('ok')"
        cmd = bwrap_command(work, socks, [sys.executable, "-c", probe])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or not (socks / "ok").exists():
            raise SandboxError(f"the sandbox did not start: {done.stderr.strip()[-500:]}. " + FIX)


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs ``course_lib.grading.guard`` in the sandbox."""

    data_dir = Unicode("", help="folder whose non-notebook files are copied in").tag(config=True)
    limits = Dict({}, help="Limits as a dict (see Limits)").tag(config=True)
    sandbox = Bool(True, help="False: no isolation (trusted submissions only)").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._tmp = Path(tempfile.mkdtemp(prefix="course-grade-"))
        self.workdir, self.sockets = self._tmp / "work", self._tmp / "sockets"
        for folder in (self.workdir, self.sockets):
            folder.mkdir()
            _own(folder)
        self._copy_data()
        self.transport = "ipc"
        self.ip = str(self.sockets / "kernel")
        self.connection_file = str(self.sockets / "connection.json")

    def _copy_data(self) -> None:
        if not self.data_dir:
            return
        for path in Path(self.data_dir).rglob("*"):
            rel = path.relative_to(self.data_dir)
            if path.is_file() and path.suffix != ".ipynb" and not rel.parts[0].startswith("."):
                (self.workdir / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, self.workdir / rel)
        for path in self.workdir.rglob("*"):
            _own(path)

    def write_connection_file(self, **kwargs):
        super().write_connection_file(**kwargs)
        _own(Path(self.connection_file))

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw):
        command = [sys.executable, "-m", "course_lib.grading.guard", "-f", self.connection_file]
        env = dict(kw.get("env") or os.environ)
        limits = Limits(**{**asdict(Limits()), **self.limits})
        env["COURSE_GRADE_LIMITS"] = json.dumps(
            {**asdict(limits), "memory_bytes": limits.address_space()}
        )
        if self.sandbox:
            command = bwrap_command(self.workdir, self.sockets, command, env, limits.folder_bytes)
            kw["cwd"] = str(self._tmp)
        else:
            env["MALLOC_MMAP_THRESHOLD_"] = "65536"
            kw["cwd"] = str(self.workdir)
        kw["env"] = env
        self.kernel_spec.interrupt_mode = "message"  # a signal would reach bwrap, not the kernel
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL  # the kernel's banner and logs
        return await super()._async_launch_kernel(command, **kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            shutil.rmtree(self._tmp, ignore_errors=True)
