"""The npm client scripts of tests/node (real client libraries: @cardano-ogmios/client,
@blockfrost/blockfrost-js), run from the integration tests: a test module skips when they
are not installed, except under CI, where it fails."""
import json
import os
import shutil
import subprocess
import unittest

import harness

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node")
NODE = shutil.which("node")


def require(what, modules, more_missing=()):
    """For setUpModule: skip (or under CI fail) unless node and `modules` are installed."""
    missing = list(more_missing)
    if not NODE:
        missing.append("node is not on PATH")
    for mod in modules:
        if not os.path.exists(os.path.join(NODE_DIR, "node_modules", mod, "package.json")):
            missing.append("tests/node/node_modules/%s is not installed" % mod)
    if missing:
        why = "; ".join(missing) + " (scripts/install-deps.sh runs npm ci in tests/node)"
        if os.environ.get("CI"):
            raise RuntimeError("CI is set, so the %s tests may not skip: %s" % (what, why))
        raise unittest.SkipTest(why)


def start(script, mode, url, *extra):
    """tests/node/`script` as a child that dies with the test process."""
    return subprocess.Popen([NODE, os.path.join(NODE_DIR, script), mode, "--url", url, *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=NODE_DIR, preexec_fn=harness._die_with_parent)


def run(script, mode, url, *extra, timeout=30):
    """Runs the script to its end: (exit status, its last JSON line, stderr and output)."""
    p = start(script, mode, url, *extra)
    try:
        out, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return p.returncode, (json.loads(lines[-1]) if lines else None), err + out[-2000:]
