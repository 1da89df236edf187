"""Static checks of infra/terraform that need no provider (terraform validate needs one): every
variable and output says what it is for, no variable that holds a secret has a default, no
password or key is written into the code, every module a configuration calls exists, and the data
services take no client without authentication and TLS (Redis, Kafka).

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


def attribute(body, name):
    """The value of `name = value` in a block's body (the first one), or None."""
    m = re.search(rf"^\s*{name}\s*=\s*(.+?)\s*$", body, re.M)
    return m.group(1) if m else None


class DataServicesAuthenticateEveryClient(unittest.TestCase):
    """Whoever reaches Redis or Kafka in the network must not be able to read or write them:
    Redis decides access (cached API keys, rate limits), Kafka carries clicks and "report ready"
    events."""

    def test_redis_requires_tls_and_an_auth_token(self):
        groups = list(blocks('resource "aws_elasticache_replication_group"'))
        self.assertTrue(groups)
        for path, name, body in groups:
            with self.subTest(replication_group=name, file=str(path)):
                self.assertEqual(attribute(body, "transit_encryption_enabled"), "true")
                # "preferred" would still take plaintext clients.
                self.assertEqual(attribute(body, "transit_encryption_mode"), '"required"')
                token = attribute(body, "auth_token")
                self.assertRegex(token or "", r"^random_password\.([a-z_]+)\.result$",
                                 "the AUTH token is generated (random_password), not written down")
                self.assertNotRegex(body, r"checkov:skip=CKV_AWS_3[01]\b")
                module = (ROOT / path).parent
                password = re.match(r"random_password\.([a-z_]+)", token).group(1)
                # ...and kept in Secrets Manager under the customer-managed key, whence the pods'
                # Secret comes.
                stored = [b for _, _, b in blocks('resource "aws_secretsmanager_secret_version"')
                          if f"random_password.{password}.result" in b]
                self.assertEqual(len(stored), 1, "the token is stored in one Secrets Manager secret")
                secrets = {n: b for p, n, b in blocks('resource "aws_secretsmanager_secret"')
                           if (ROOT / p).parent == module}
                secret = re.search(r"aws_secretsmanager_secret\.([a-z_]+)\.id", stored[0]).group(1)
                self.assertEqual(attribute(secrets[secret], "kms_key_id"), "var.kms_key_arn")

    def test_kafka_takes_only_sasl_scram_over_tls(self):
        clusters = list(blocks('resource "aws_msk_cluster"'))
        self.assertTrue(clusters)
        for path, name, body in clusters:
            module = (ROOT / path).parent
            with self.subTest(cluster=name, file=str(path)):
                self.assertEqual(attribute(body, "client_broker"), '"TLS"',
                                 "no plaintext listener (TLS_PLAINTEXT, PLAINTEXT)")
                self.assertEqual(attribute(body, "unauthenticated"), "false")
                auth = body[body.index("client_authentication"):]
                self.assertRegex(auth, r"sasl\s*\{[^}]*\bscram\s*=\s*true")
                self.assertNotRegex(body, r"checkov:skip=CKV_AWS_81\b")
                # Only the SASL/SCRAM TLS port is open to clients.
                for p, rule, rbody in blocks('resource "aws_vpc_security_group_ingress_rule"'):
                    if (ROOT / p).parent == module:
                        self.assertEqual((attribute(rbody, "from_port"),
                                          attribute(rbody, "to_port")), ("9096", "9096"), rule)
                # The users: secrets MSK can read (AmazonMSK_ prefix, a customer-managed key),
                # associated with this cluster.
                secrets = [(n, b) for p, n, b in blocks('resource "aws_secretsmanager_secret"')
                           if (ROOT / p).parent == module]
                self.assertTrue(secrets, "no SCRAM secrets")
                for secret, sbody in secrets:
                    self.assertRegex(attribute(sbody, "name") or "", r'^"AmazonMSK_', secret)
                    self.assertEqual(attribute(sbody, "kms_key_id"), "var.kms_key_arn", secret)
                associations = [b for p, _, b in blocks('resource "aws_msk_scram_secret_association"')
                                if (ROOT / p).parent == module]
                self.assertEqual(len(associations), 1)
                self.assertEqual(attribute(associations[0], "cluster_arn"),
                                 f"aws_msk_cluster.{name}.arn")
                # Nothing hands out the plaintext or unauthenticated TLS bootstrap servers.
                outputs = (module / "outputs.tf").read_text()
                self.assertNotRegex(outputs, r"\.bootstrap_brokers(_tls)?\b")
                # SCRAM with the services' librdkafka (Debian 12: 2.0.2) needs Kafka 3.x: 4.x
                # brokers reject its proof (fixed in librdkafka 2.6.1). The default is 3.x and
                # the variable refuses 4.x.
                variables = (module / "variables.tf").read_text()
                version = variables[variables.index('variable "kafka_version"'):]
                self.assertRegex(version, r'default\s*=\s*"3\.')
                self.assertRegex(version, r'condition\s*=\s*!startswith\(var\.kafka_version, "4\."\)')

    def test_the_environment_gives_a_customer_managed_key(self):
        """MSK refuses SCRAM secrets under Secrets Manager's default key."""
        modules = {n: b for _, n, b in blocks("module")}
        for name in ("redis", "kafka"):
            with self.subTest(module=name):
                self.assertRegex(attribute(modules[name], "kms_key_arn") or "",
                                 r"^aws_kms_key\.[a-z_0-9]+\.arn$")


if __name__ == "__main__":
    unittest.main()
