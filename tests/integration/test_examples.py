"""Every config in examples/ passes `corral -t` (a new example is covered by the glob),
from a copy of the directory and from another working directory: paths in the examples
resolve against the config file, so they hold on a fresh machine. The README's main
configuration example is examples/kupo-ogmios.yaml, byte for byte."""
import glob
import os
import shutil
import subprocess
import tempfile

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
EXAMPLES = os.path.join(ROOT, "examples")
README_EXAMPLE = "kupo-ogmios.yaml"


def example_files(d):
    return sorted(glob.glob(os.path.join(d, "*.yaml")) + glob.glob(os.path.join(d, "*.yml")))


def check(path, cwd):
    return subprocess.run([harness.CORRAL, "-t", path], capture_output=True, text=True,
                          timeout=20, cwd=cwd)


class Examples(harness.unittest.TestCase):
    def test_the_examples_that_must_exist(self):
        names = {os.path.basename(p) for p in example_files(EXAMPLES)}
        for n in ("kupo-fleet.yaml", "kupo-ogmios.yaml", "blockfrost.yaml", "large-fleet.yaml",
                  "shared-pins.yaml"):
            self.assertIn(n, names)

    def test_every_example_passes_check(self):
        files = example_files(EXAMPLES)
        self.assertGreaterEqual(len(files), 5)
        with tempfile.TemporaryDirectory() as elsewhere:
            for f in files:
                with self.subTest(example=os.path.basename(f)):
                    p = check(f, elsewhere)  # not the examples' directory
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertIn("ok", p.stdout)

    def test_a_copy_of_the_directory_passes_too(self):
        # What an operator does: copy examples/ somewhere and check it there (git keeps
        # no file modes but the executable bit: the secret file comes out 0644).
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "examples")
            shutil.copytree(EXAMPLES, copy)
            for root, _, names in os.walk(copy):
                for n in names:
                    os.chmod(os.path.join(root, n), 0o644)
            for f in example_files(copy):
                with self.subTest(example=os.path.basename(f)):
                    p = check(os.path.basename(f), copy)
                    self.assertEqual(p.returncode, 0, p.stderr)

    def test_a_missing_secret_file_fails_the_blockfrost_example(self):
        # The check above proves something: without the secret file the example fails.
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "examples")
            shutil.copytree(EXAMPLES, copy)
            os.unlink(os.path.join(copy, "secrets", "blockfrost-project-id"))
            p = check(os.path.join(copy, "blockfrost.yaml"), tmp)
            self.assertEqual(p.returncode, 1)
            self.assertIn("blockfrost-project-id", p.stderr)

    def test_readme_configuration_is_an_example(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("\n## Configuration\n"):]
        start = section.index("```yaml\n") + len("```yaml\n")
        block = section[start:section.index("```", start)]
        with open(os.path.join(EXAMPLES, README_EXAMPLE)) as f:
            self.assertEqual(block, f.read(),
                             "README's configuration example differs from examples/"
                             + README_EXAMPLE)


if __name__ == "__main__":
    harness.main()
