"""Static checks of infra/terraform that need no provider (terraform validate needs one): every
variable and output says what it is for, no variable that holds a secret has a default, no
password or key is written into the code, and every module a configuration calls exists.

    python3 -m unittest discover -s tests/deploy
"""
import pathlib
import re
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"


def blocks(kind):
    """(file, name, body) of each top-level `kind "name" { … }` block, by brace matching."""
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        text = path.read_text()
        for m in re.finditer(rf'^{kind} "([^"]+)" \{{', text, re.M):
            depth, i = 0, m.end() - 1
            while True:
                if text[i] == "{":
                    depth += 1
                elif text[i] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
            yield path.relative_to(ROOT), m.group(1), text[m.end():i]


class TerraformIsDocumentedAndHoldsNoSecrets(unittest.TestCase):
    def test_there_is_terraform(self):
        self.assertTrue(list(blocks("variable")))
        self.assertTrue((TERRAFORM / "envs" / "prod" / "main.tf").exists())
        self.assertTrue((TERRAFORM / "README.md").exists())

    def test_every_variable_and_output_has_a_description(self):
        for kind in ("variable", "output"):
            for path, name, body in blocks(kind):
                with self.subTest(kind=kind, name=name, file=str(path)):
                    m = re.search(r'^\s*description\s*=\s*"(.+)"\s*$', body, re.M)
                    self.assertTrue(m and len(m.group(1)) > 10, "needs a description")

    def test_sensitive_variables_have_no_default(self):
        for path, name, body in blocks("variable"):
            secretish = re.search(r"password|secret|token|private_key", name)
            if re.search(r"^\s*sensitive\s*=\s*true", body, re.M) or secretish:
                with self.subTest(name=name, file=str(path)):
                    self.assertNotRegex(body, r"^\s*default\s*=", "a secret must not have a default")
                    self.assertRegex(body, r"^\s*sensitive\s*=\s*true", "mark it sensitive")

    def test_no_literal_secrets(self):
        pattern = re.compile(
            r'^\s*(password|master_password|auth_token|secret_key|access_key|token)\s*=\s*"',
            re.M)
        for path in TERRAFORM.rglob("*.tf"):
            with self.subTest(file=str(path.relative_to(ROOT))):
                self.assertIsNone(pattern.search(path.read_text()))
        for path in TERRAFORM.rglob("*.tfvars"):
            self.fail(f"{path.relative_to(ROOT)}: real tfvars files stay out of the repository")

    def test_module_sources_exist(self):
        for path, name, body in blocks("module"):
            m = re.search(r'^\s*source\s*=\s*"(\.[^"]+)"', body, re.M)
            with self.subTest(module=name, file=str(path)):
                self.assertTrue(m, "local module source expected")
                self.assertTrue((ROOT / path.parent / m.group(1) / "main.tf").exists())

    def test_module_arguments_are_declared_variables(self):
        declared = {}
        for path, name, _ in blocks("variable"):
            declared.setdefault(path.parent, set()).add(name)
        meta = {"source", "providers", "count", "for_each", "depends_on", "version"}
        for path, name, body in blocks("module"):
            source = re.search(r'^\s*source\s*=\s*"([^"]+)"', body, re.M).group(1)
            module_dir = (ROOT / path.parent / source).resolve().relative_to(ROOT)
            variables = declared.get(module_dir, set())
            args = set(re.findall(r"^  ([a-z_0-9]+)\s*=", body, re.M)) - meta
            with self.subTest(module=name):
                self.assertEqual(args - variables, set(), f"unknown arguments to {module_dir}")
                required = {
                    v for p, v, b in blocks("variable")
                    if p.parent == module_dir and not re.search(r"^\s*default\s*=", b, re.M)
                }
                self.assertEqual(required - args, set(), f"missing arguments to {module_dir}")


if __name__ == "__main__":
    unittest.main()
