"""The Debian package, built from the existing build dir with
`cmake --build <build> --target package` (CPack DEB), checked the way Debian
checks packages: lintian, dpkg-deb, systemd-analyze; then unpacked into a
scratch root (`dpkg -x`) whose binary must run and serve.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from kes_harness import KesServer  # noqa: E402

BUILD = Path(os.environ["KES_BUILD_DIR"])
SOURCE = Path(os.environ.get("KES_SOURCE_DIR", Path(__file__).resolve().parents[2]))
UNIT = "/lib/systemd/system/kes.service"
MAN_PAGES = ["kes", "kes-server", "kes-ls", "kes-key", "kes-policy", "kes-identity", "kes-log",
             "kes-status", "kes-metric", "kes-migrate", "kes-update"]


def run(cmd, **kw):
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def deb():
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    version = re.search(r"project\(kes-cpp VERSION (\S+)", (SOURCE / "CMakeLists.txt").read_text())[1]
    path = BUILD / ("kes_%s_%s.deb" % (version, arch))
    if path.exists():
        path.unlink()
    r = run(["cmake", "--build", str(BUILD), "--target", "package"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert path.exists(), r.stdout
    return path


@pytest.fixture(scope="module")
def root(deb, tmp_path_factory):
    """The package unpacked into a scratch root."""
    d = tmp_path_factory.mktemp("root")
    r = run(["dpkg", "-x", str(deb), str(d)])
    assert r.returncode == 0, r.stderr
    return d


def field(deb, name):
    return run(["dpkg-deb", "--field", str(deb), name]).stdout.strip()


def test_lintian_finds_no_errors(deb):
    r = run(["lintian", "--fail-on", "error", "--display-level", ">=warning", str(deb)])
    print(r.stdout, r.stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not re.search(r"^E: ", r.stdout, re.M), r.stdout


def test_control_fields(deb):
    assert field(deb, "Package") == "kes"
    depends = field(deb, "Depends")
    # From dpkg-shlibdeps on the binary, not written by hand.
    for lib in ("libc6", "libssl3", "libcurl4", "libyaml-cpp0.7", "libstdc++6"):
        assert re.search(r"\b%s \(>= " % re.escape(lib), depends), depends
    for tool in ("adduser", "procps"):
        assert tool in depends, depends
    r = run(["dpkg-deb", "--info", str(deb), "conffiles"])
    assert r.stdout.split() == ["/etc/kes/config.yml"], r.stdout


def test_contents(root):
    for rel in ["usr/bin/kes", UNIT.lstrip("/"), "etc/kes/config.yml",
                "usr/share/bash-completion/completions/kes", "usr/share/zsh/vendor-completions/_kes",
                "usr/share/doc/kes/copyright", "usr/share/doc/kes/changelog.gz"]:
        assert (root / rel).is_file(), rel
    assert os.access(root / "usr/bin/kes", os.X_OK)
    # The shipped unit is the one in deploy/ that the README points to.
    assert (root / UNIT.lstrip("/")).read_bytes() == (SOURCE / "deploy/systemd/kes.service").read_bytes()
    # Stripped: no debug sections in the packaged binary.
    assert ".debug_info" not in run(["objdump", "-h", str(root / "usr/bin/kes")]).stdout


def man(path):
    r = run(["man", "--warnings", "-l", str(path)], env=dict(os.environ, MANWIDTH="80"))
    r.stdout = re.sub(".\x08", "", r.stdout)  # overstrike (bold) of man's tty-less output
    return r


def test_man_pages_are_the_commands_help(root):
    for page in MAN_PAGES:
        path = root / "usr/share/man/man1" / (page + ".1.gz")
        assert path.is_file(), page
        r = man(path)
        assert r.returncode == 0 and r.stderr == "", r.stderr  # groff warnings included
        assert "NAME" in r.stdout and page in r.stdout
    server = man(root / "usr/share/man/man1/kes-server.1.gz").stdout
    help_text = run([str(root / "usr/bin/kes"), "server", "--help"]).stderr
    for flag in re.findall(r"^\s+(--[a-z-]+)", help_text, re.M):
        assert flag in server, flag


def systemd_root(root):
    """`systemd-analyze --root` resolves the unit's commands and dependencies
    inside the root: give it what a Debian system has (systemd's targets,
    procps' kill) next to the package's files."""
    units = root / "lib/systemd/system"
    for target in Path("/lib/systemd/system").glob("*.target"):
        if not (units / target.name).exists():
            shutil.copy(target, units / target.name)
    (root / "bin").mkdir(exist_ok=True)
    if not (root / "bin/kill").exists():
        shutil.copy("/bin/kill", root / "bin/kill")
    return root


def test_systemd_analyze_verify(root):
    r = run(["systemd-analyze", "verify", "--man=no", "--root=%s" % systemd_root(root), UNIT])
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_unit_is_hardened(root):
    unit = (root / UNIT.lstrip("/")).read_text()
    for line in ["User=kes", "ExecStart=/usr/bin/kes server --config /etc/kes/config.yml",
                 "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "ReadWritePaths=/var/lib/kes", "ProtectHome=yes",
                 "PrivateTmp=yes", "CapabilityBoundingSet=CAP_IPC_LOCK",
                 "AmbientCapabilities=CAP_IPC_LOCK", "LimitMEMLOCK=infinity"]:
        assert re.search("^%s$" % re.escape(line), unit, re.M), line
    # systemd's own exposure score (0 = locked down, 10 = unprotected) stays
    # in its "OK" band.
    r = run(["systemd-analyze", "security", "--offline=true", "--threshold=25",
             "--root=%s" % systemd_root(root), "kes.service"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"Overall exposure level for kes.service: \d\.\d OK", r.stdout), r.stdout


def test_example_config_serves_probes_without_certificate(root, tmp_path):
    """The shipped config, with its paths moved into tmp_path and the TLS
    files postinst would make, starts a server whose /v1/ready and
    /v1/status answer clients without a certificate (probes, HAProxy)."""
    kes = str(root / "usr/bin/kes")
    text = (root / "etc/kes/config.yml").read_text()
    assert "/etc/kes/private.key" in text and "/var/lib/kes/keys" in text
    text = text.replace("/etc/kes/", "%s/" % tmp_path).replace("/var/lib/kes/", "%s/" % tmp_path)
    r = run([kes, "identity", "new", "--key", str(tmp_path / "private.key"), "--cert",
             str(tmp_path / "public.crt"), "--ip", "127.0.0.1", "localhost"])
    assert r.returncode == 0, r.stderr
    os.environ["KES_BIN"] = kes
    srv = KesServer(tmp_path / "srv", text, None, {}).start()
    try:
        for path in ("/v1/ready", "/v1/status"):
            r = requests.get(srv.base_url + path, verify=False, timeout=30)
            assert r.status_code == 200, (path, r.text)
        r = requests.get(srv.base_url + "/v1/key/list/*", verify=False, timeout=30)
        assert r.status_code == 400  # every other route still needs a certificate
    finally:
        srv.stop()


def test_installed_kes_version_and_dev_server(root, tmp_path):
    kes = str(root / "usr/bin/kes")
    r = run([kes, "--version"])
    assert r.returncode == 0 and r.stdout.startswith("Version"), r.stdout + r.stderr
    os.environ["KES_BIN"] = kes
    srv = KesServer(tmp_path, None, None, {}, dev=True).start()
    try:
        env = dict(os.environ, KES_SERVER="https://127.0.0.1:%d" % srv.port, KES_API_KEY=srv.api_key)
        env.pop("SSL_CERT_FILE", None)
        r = run([kes, "status", "-k", "--json"], env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        assert '"version"' in r.stdout, r.stdout
    finally:
        srv.stop()


def test_bash_completion(root):
    script = root / "usr/share/bash-completion/completions/kes"
    r = run(["bash", "-c", "source '%s' && complete -p kes" % script])
    assert shlex.split(r.stdout) == ["complete", "-o", "default", "-C", "/usr/bin/kes", "kes"], \
        r.stdout + r.stderr
    r = run([str(root / "usr/bin/kes")], env=dict(os.environ, COMP_LINE="kes ke", SHELL="/bin/bash"))
    assert r.stdout.split() == ["key"]


def test_zsh_completion(root):
    """The zsh function run as zsh's completion system would: `words` and
    CURRENT set, compadd receiving the candidates kes prints."""
    script = root / "usr/share/zsh/vendor-completions/_kes"
    assert script.read_text().startswith("#compdef kes\n")
    env = dict(os.environ, PATH="%s:%s" % (root / "usr/bin", os.environ["PATH"]))

    def complete(*words):
        prog = ('compadd() { [[ $1 == -a ]] && print -l -- ${(P)2} }; words=(%s); CURRENT=%d; '
                'source %s' % (" ".join(shlex.quote(w) for w in words), len(words), shlex.quote(str(script))))
        r = run(["zsh", "-f", "-c", prog], env=env)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert complete("kes", "ke") == ["key"]
    assert complete("kes", "key", "") == ["create", "import", "info", "ls", "rm", "encrypt", "decrypt",
                                          "dek"]
    assert complete("kes", "identity", "new", "--k") == ["--key"]
