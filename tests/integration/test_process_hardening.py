"""Process-level protections of the running server (docs/architecture.md,
"Process hardening"): no core dumps, and no process of the same user may
read the server's memory or environment."""
import os
import subprocess


def _without_ptrace_capability(cmd):
    # Root passes the check through CAP_SYS_PTRACE whatever the dumpable
    # flag; without the capability it is an ordinary process of the same
    # user as the server.
    if os.geteuid() == 0:
        return ["setpriv", "--bounding-set", "-sys_ptrace", "--"] + cmd
    return cmd


def test_server_is_not_dumpable(kes_server):
    srv = kes_server()
    pid = srv.proc.pid
    # A non-dumpable process's memory may not be opened by another process
    # of its user (the kernel's ptrace attach check, as for PTRACE_ATTACH);
    # a dumpable one's may (the read at offset 0 then fails with EIO, not
    # EACCES: the check fails on a server without PR_SET_DUMPABLE 0).
    r = subprocess.run(_without_ptrace_capability(
        ["dd", "if=/proc/%d/mem" % pid, "of=/dev/null", "count=1", "status=none"]),
        capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "failed to open" in r.stderr and "Permission denied" in r.stderr, r.stderr
    # The kernel also hands the process's /proc entries to root.
    assert os.stat("/proc/%d/environ" % pid).st_uid == 0
    with open("/proc/%d/limits" % pid) as f:
        core = next(l for l in f if l.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"], core
    assert srv.get("/version").status_code == 200
