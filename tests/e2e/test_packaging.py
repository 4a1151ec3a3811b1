"""What `meson install` gives a packager or an administrator, checked in a
staged install (`meson install --destdir`) of the build tree:

- every file in place: streamserver and streamctl in bindir, streamworker in
  libexecdir, the systemd unit, the sample environment file, the README, the
  man pages, streamctl's bash completion; each path the unit and the man
  pages name exists in the staged tree (the unit's ExecStart first);
- the staged streamserver finds its streamworker in libexecdir by itself
  and runs a job with it, against the real PostgreSQL and Kafka; the build
  tree's and STREAMSERVER_WORKER's ways still work, and with no worker
  anywhere the controller says where it looked;
- `man -l` renders each page without a warning, and the pages name every
  option the programs' --help lists;
- the completion script loads in bash and completes commands, actions,
  options and files;
- `--version` of the three programs: the meson project version (and the
  commit);
- journald priorities: with JOURNAL_STREAM naming its standard error, each
  log line starts with "<N>", so that `journalctl -p err` selects errors.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, CONTROLLER, WORKER, Server, _serve
from helpers import (REPO, create_service, create_source, delimited_messages, job_yaml,
                     professional_job, run_job, unique, wait_rows, TABLE5, COLUMNS5, cols)

CTL = BUILD / "cli" / "streamctl"
PAGES = ("man8/streamserver.8", "man8/streamworker.8", "man1/streamctl.1")


def meson_dirs():
    """{option: value} of the build's install folders, absolute."""
    out = subprocess.run(["meson", "introspect", "--buildoptions", str(BUILD)],
                         capture_output=True, text=True, check=True).stdout
    opts = {o["name"]: o["value"] for o in json.loads(out)}
    prefix = opts["prefix"]
    dirs = {"prefix": prefix}
    for k in ("bindir", "libexecdir", "sysconfdir", "datadir", "mandir", "libdir"):
        v = opts[k]
        dirs[k] = v if v.startswith("/") else f"{prefix}/{v}"
    dirs["systemdunitdir"] = opts.get("systemdunitdir") or f"{prefix}/lib/systemd/system"
    return dirs


class Staged:
    def __init__(self, root, dirs):
        self.root, self.dirs = root, dirs

    def path(self, p):
        return self.root / str(p).lstrip("/")

    def d(self, key, *rest):
        return self.path(Path(self.dirs[key], *rest))


@pytest.fixture(scope="module")
def staged():
    root = Path(tempfile.mkdtemp(prefix="streamserver-destdir-"))
    root.chmod(0o755)
    try:
        p = subprocess.run(["meson", "install", "-C", str(BUILD), "--destdir", str(root),
                            "--no-rebuild", "--quiet"], capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, f"meson install --destdir: {p.stdout}{p.stderr}"
        yield Staged(root, meson_dirs())
    finally:
        if not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


def unit_service(text):
    svc = {}
    section = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            k, _, v = line.partition("=")
            svc.setdefault(k, []).append(v)
        elif section == "[Unit]" and line.startswith("Documentation="):
            svc.setdefault("Documentation", []).extend(line.partition("=")[2].split())
    return svc


def test_install_puts_every_file_in_place(staged):
    for f in (staged.d("bindir", "streamserver"), staged.d("bindir", "streamctl"),
              staged.d("libexecdir", "streamworker")):
        assert os.access(f, os.X_OK), f"{f} not installed as an executable"
    assert not staged.d("bindir", "streamworker").exists(), "the worker is not a user command"
    for f in (staged.d("systemdunitdir", "streamserver.service"),
              staged.d("sysconfdir", "streamserver", "streamserver.env"),
              staged.d("datadir", "doc", "streamserver", "README.md"),
              staged.d("datadir", "bash-completion", "completions", "streamctl"),
              *(staged.d("mandir", p) for p in PAGES)):
        assert f.is_file(), f"{f.relative_to(staged.root)} not installed"
    assert staged.d("sysconfdir", "streamserver", "streamserver.env").read_text() == \
        (REPO / "deploy" / "streamserver.env").read_text()


def test_unit_paths_exist_in_the_install(staged):
    """ExecStart, EnvironmentFile and the documentation the unit names are
    the installed files; the credential's folder is the one the env file
    was installed in (the token itself is the administrator's)."""
    unit = staged.d("systemdunitdir", "streamserver.service").read_text()
    assert "@" not in re.sub(r"@system-service\b", "", unit), "an unconfigured @name@ in the unit"
    svc = unit_service(unit)
    exe = shlex.split(svc["ExecStart"][0])[0]
    assert exe == f"{staged.dirs['bindir']}/streamserver", exe
    assert os.access(staged.path(exe), os.X_OK), f"ExecStart {exe} is not in the install"
    env_file = svc["EnvironmentFile"][0].lstrip("-")
    assert staged.path(env_file).is_file(), f"EnvironmentFile {env_file} is not in the install"
    cred = svc["LoadCredential"][0].partition(":")[2]
    assert staged.path(cred).parent.is_dir() and Path(cred).parent == Path(env_file).parent, cred
    docs = svc["Documentation"]
    assert "man:streamserver(8)" in docs, docs
    for d in docs:
        if d.startswith("file://"):
            assert staged.path(d[len("file://"):]).is_file(), d


def man_render(page):
    """The page as man renders it, and what man and groff said on stderr
    (warnings included)."""
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(page)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, f"man -l {page}: {p.returncode}\n{p.stderr}"
    return p.stdout, p.stderr


def section(text, name):
    m = re.search(rf"^{name}\n(.*?)(?=^\S|\Z)", text, re.M | re.S)
    assert m, f"no {name} section"
    return m.group(1)


def test_man_pages_render_without_warnings(staged):
    assert shutil.which("man"), "man is missing: scripts/install-deps.sh installs man-db"
    for page in PAGES:
        text, err = man_render(staged.d("mandir", page))
        assert not err.strip(), f"{page}: {err}"
        name = Path(page).stem
        for sect in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "FILES", "SEE ALSO"):
            assert re.search(rf"^{sect}$", text, re.M), f"{page}: no {sect}"
        assert re.search(rf"^\s+{name} \\?- ", section(text, "NAME"), re.M), page
        assert "@" not in text.replace("@HOST", ""), f"{page}: an unconfigured @name@"
        # Every path the FILES section names is in the install.
        files = re.findall(r"^\s{7}(/\S+)$", section(text, "FILES"), re.M)
        assert files, f"{page}: FILES names no path"
        for f in files:
            assert staged.path(f).exists(), f"{page} names {f}, which is not in the install"


def help_options(argv):
    out = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=30).stdout
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", out))


def test_man_pages_name_every_option(staged):
    for prog, page in ((CONTROLLER, "man8/streamserver.8"), (WORKER, "man8/streamworker.8"),
                       (CTL, "man1/streamctl.1")):
        text, _ = man_render(staged.d("mandir", page))
        text = text.replace("\u2010", "-")  # groff's hyphen at a line break
        named = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text))
        missing = sorted(help_options([str(prog)]) - named)
        assert not missing, f"{page} does not describe {missing} (from {prog.name} --help)"


def complete(script, words, cwd):
    """COMPREPLY of streamctl's completion for the command line words (the
    last one is the word being completed), in a bash without
    bash-completion."""
    line = " ".join(shlex.quote(w) for w in words)
    prog = (f"source {shlex.quote(str(script))} || exit 9\n"
            f"complete -p streamctl >/dev/null || exit 8\n"
            f"COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n"
            "_streamctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], capture_output=True,
                       text=True, timeout=30, cwd=cwd)
    assert p.returncode == 0 and not p.stderr, f"bash: {p.returncode} {p.stderr}"
    return sorted(w for w in p.stdout.splitlines() if w)


def test_bash_completion(staged, tmp_path):
    script = staged.d("datadir", "bash-completion", "completions", "streamctl")
    (tmp_path / "orders.yaml").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "conf").mkdir()
    assert complete(script, ["streamctl", ""], tmp_path) == \
        ["health", "jobs", "services", "sources"]
    assert complete(script, ["streamctl", "jo"], tmp_path) == ["jobs"]
    assert complete(script, ["streamctl", "jobs", "st"], tmp_path) == ["start", "status", "stop"]
    assert complete(script, ["streamctl", "services", ""], tmp_path) == \
        ["create", "delete", "get", "list", "update"]
    # global options anywhere, and their values skipped
    assert complete(script, ["streamctl", "--url", "http://h:1", "jobs", "lo"], tmp_path) == \
        ["load"]
    assert "--quit-at-eof" in complete(script, ["streamctl", "jobs", "load", "--"], tmp_path)
    assert "--wait" in complete(script, ["streamctl", "jobs", "start", "x", "--w"], tmp_path)
    assert complete(script, ["streamctl", "jobs", "create", "-f", "or"], tmp_path) == \
        ["orders.yaml"]
    assert complete(script, ["streamctl", "jobs", "load", ""], tmp_path) == \
        ["conf", "orders.yaml"]
    # every command and action the completion offers, streamctl knows
    usage = subprocess.run([str(CTL), "--help"], capture_output=True, text=True).stdout
    for words in (["streamctl", ""], ["streamctl", "jobs", ""]):
        for w in complete(script, words, tmp_path):
            assert re.search(rf"\b{w}\b", usage), f"completion offers {w!r}, --help has none"
    for opt in complete(script, ["streamctl", "--"], tmp_path):
        assert opt in usage, f"completion offers {opt}, streamctl --help has none"


def project_version():
    out = subprocess.run(["meson", "introspect", "--projectinfo", str(BUILD)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["version"]


def test_version_of_every_program(staged):
    version = project_version()
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--tags"],
                         capture_output=True, text=True)
    for exe in (staged.d("bindir", "streamserver"), staged.d("libexecdir", "streamworker"),
                staged.d("bindir", "streamctl")):
        p = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (exe, p.stderr)
        m = re.fullmatch(rf"{exe.name} (\S+)(?: \(git (\S+)\))?\n", p.stdout)
        assert m and m.group(1) == version, f"{exe.name} --version: {p.stdout!r}"
        if git.returncode == 0:
            # git describe of the build: a commit of this repository (HEAD
            # may have moved on since the build)
            assert m.group(2), f"{exe.name} --version names no commit: {p.stdout!r}"
            name = re.sub(r"-dirty$", "", m.group(2))  # TAG-N-gHASH, TAG or HASH
            known = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "-q",
                                    name + "^{commit}"], capture_output=True)
            assert known.returncode == 0, f"{p.stdout!r}: not a commit of {REPO}"


def test_staged_server_runs_a_job_with_its_libexec_worker(request, staged, tmp_path, pg, kafka):
    """No --worker, no STREAMSERVER_WORKER: the staged streamserver finds the
    staged streamworker in libexecdir, and a job loads rows with it."""
    srv = Server(tmp_path, env={"STREAMSERVER_WORKER": ""})
    srv.controller = staged.d("bindir", "streamserver")
    srv.worker_args = []
    gen = _serve(request, srv)
    next(gen)
    try:
        topic = kafka.create_topic(unique("pkg"))
        table = pg.create_table(unique("t_pkg"), TABLE5)
        svc = create_service(srv, pg)
        src = create_source(srv, svc["id"], kafka, topic)
        kafka.produce(topic, delimited_messages(0, 50))
        config = job_yaml(pg, kafka, topic, table,
                          value={"COLUMNS": cols(*COLUMNS5), "FORMAT": "delimited",
                                 "DELIMITED_OPTION": {"DELIMITER": "|"}})
        job_id = run_job(srv, professional_job(src["id"], config))
        wait_rows(pg, table, 50, srv, job_id)
        pid = srv.call("GET", f"/jobs/{job_id}/status")["pid"]
        exe = os.readlink(f"/proc/{pid}/exe")
        assert exe == str(staged.d("libexecdir", "streamworker")), exe
    finally:
        for _ in gen:
            pass


def journal_run(argv, tmp_path, stdin, journal=True):
    """Runs argv with standard error to a file and, when journal,
    JOURNAL_STREAM naming that file as systemd names its journal stream;
    returns the lines written there."""
    err = tmp_path / unique("stderr")
    with open(err, "wb") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, STREAMSERVER_LOG_FORMAT="text")
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}" if journal else f"{st.st_dev}:1"
        subprocess.run(argv, input=stdin, stderr=f, stdout=subprocess.DEVNULL, env=env,
                       timeout=60, pass_fds=())
    return err.read_text().splitlines()


def test_journal_priorities(staged, tmp_path):
    """A worker with a configuration that cannot work: its error lines carry
    <3> when its standard error is the journal's stream, and no prefix when
    JOURNAL_STREAM names another stream (a redirected stderr)."""
    job = json.dumps({"job_id": 7, "job_name": "j", "config": "bad: ["}).encode()
    worker = [str(staged.d("libexecdir", "streamworker"))]
    lines = journal_run(worker, tmp_path, job)
    assert lines and all(re.match(r"<[3467]>\d{4}-", l) for l in lines), lines
    assert any(l.startswith("<3>") and " ERROR [" in l and "invalid job configuration" in l
               for l in lines), lines
    plain = journal_run(worker, tmp_path, job, journal=False)
    assert plain and all(re.match(r"\d{4}-", l) for l in plain), plain


def started_worker_path(srv):
    """The worker path the controller's start line names."""
    m = re.search(r"listening on \S+ \(data in .*, worker (\S+); API", srv.log_text())
    assert m, srv.log_tail()
    return m.group(1)


def test_worker_found_in_the_build_tree_and_through_the_environment(request, tmp_path):
    """The other ways the controller finds its worker still work: the build
    tree's worker/ next to controller/, and STREAMSERVER_WORKER."""
    srv = Server(tmp_path / "a", env={"STREAMSERVER_WORKER": ""})
    (tmp_path / "a").mkdir()
    srv.worker_args = []
    gen = _serve(request, srv)
    next(gen)
    try:
        assert os.path.realpath(started_worker_path(srv)) == str(WORKER.resolve())
    finally:
        for _ in gen:
            pass
    copy = tmp_path / "elsewhere" / "streamworker"
    copy.parent.mkdir()
    shutil.copy2(WORKER, copy)
    srv = Server(tmp_path / "b", env={"STREAMSERVER_WORKER": str(copy)})
    (tmp_path / "b").mkdir()
    srv.worker_args = []
    gen = _serve(request, srv)
    next(gen)
    try:
        assert started_worker_path(srv) == str(copy)
    finally:
        for _ in gen:
            pass


def test_no_worker_anywhere_says_where_it_looked(tmp_path):
    """A streamserver with no streamworker in libexecdir, beside it or in a
    build tree stops at once with exit 2, naming where it looked and how to
    say where the worker is."""
    lone = tmp_path / "bin" / "streamserver"
    lone.parent.mkdir()
    shutil.copy2(CONTROLLER, lone)
    env = dict(os.environ, STREAMSERVER_WORKER="")
    p = subprocess.run([str(lone), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "cannot find streamworker in " in p.stderr and "libexec" in p.stderr \
        and "--worker" in p.stderr \
        and "STREAMSERVER_WORKER" in p.stderr, p.stderr
