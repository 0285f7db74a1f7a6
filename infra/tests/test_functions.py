"""Tests of infra/lib/functions.py on small templates written here, and on template.yaml
against the function crates on disk."""

import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import functions  # noqa: E402

TEMPLATE = """\
Parameters:
  Architecture:
    Type: String
Resources:
  AlphaFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
    Properties:
      FunctionName: !Sub '${AWS::StackName}-alpha'
      CodeUri: functions/alpha
  AlphaRole:
    Type: AWS::IAM::Role
    Properties:
      CodeUri: functions/not-a-function
  Layerish:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layers/x
  SchemaMigratorFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: "functions/schema-migrator"
  InlineFunction:
    Type: AWS::Serverless::Function
    Properties:
      InlineCode: "exit 0"
Outputs:
  BetaFunction:
    Type: AWS::Serverless::Function
    Value: x
"""


class SmallTemplate(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "template.yaml"
        self.path.write_text(TEMPLATE)

    def tearDown(self):
        self.dir.cleanup()

    def test_only_serverless_functions_with_a_functions_code_uri(self):
        self.assertEqual(functions.functions(self.path),
                         {"AlphaFunction": "alpha", "SchemaMigratorFunction": "schema-migrator"})

    def test_local_leaves_out_the_deploy_only_function(self):
        self.assertEqual(functions.local_functions(self.path), ["alpha"])


class RepositoryTemplate(unittest.TestCase):
    def test_every_function_has_its_crate(self):
        names = list(functions.functions().values())
        self.assertIn("stream-processor", names)
        self.assertIn("schema-migrator", names)
        for name in names:
            self.assertTrue((functions.ROOT / "functions" / name / "Cargo.toml").is_file(), name)


if __name__ == "__main__":
    unittest.main()
