"""The CLI starts fast: every `--help` and the data commands never import torch or transformers."""

import subprocess
import sys

from latentcot.cli import COMMANDS, build_parser


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_importing_the_cli_imports_no_torch():
    loaded = _modules_after("import latentcot.cli")
    assert "torch" not in loaded and "transformers" not in loaded


def test_help_and_data_commands_import_no_torch(tmp_path):
    data = tmp_path / "a.txt"
    data.write_text("q||<<1+1=2>> #### 2\n")
    helps = [[command, "--help"] for command in COMMANDS] + [["visual", "train", "--help"], ["data", "convert", "--help"]]
    for argv in (["--help"], ["data", "validate", str(data)], ["data", "stats", str(data)], *helps):
        code = f"from latentcot.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
        loaded = _modules_after(code)
        assert "torch" not in loaded and "transformers" not in loaded, argv


def test_lazy_listing_matches_the_registered_commands():
    """`latentcot --help` lists each command with the help its group registers."""
    full = build_parser()
    lazy = build_parser(["--help"])
    (full_sub,) = [a for a in full._actions if a.dest == "command"]
    (lazy_sub,) = [a for a in lazy._actions if a.dest == "command"]
    helps = {a.dest: a.help for a in full_sub._choices_actions}
    listed = {name: help for name, (_, help) in COMMANDS.items()}
    assert helps == listed, "update COMMANDS in src/latentcot/cli/__init__.py to the registered commands and helps"
    assert set(lazy_sub.choices) == set(COMMANDS)


def test_diffusion_targets_match_the_formulation():
    from latentcot.cli.diffusion import TARGETS
    from latentcot.diffusion.formulation import TARGETS as REAL

    assert tuple(TARGETS) == tuple(REAL)


def test_train_help_lists_every_config_key_without_torch():
    code = "from latentcot.cli import main\ntry:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass"
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    assert "model.name_or_path (default 'tiny')" in out and "shallow-768" in out and "train.lr (default" in out
    assert out.rstrip().endswith("False")  # torch was never imported
